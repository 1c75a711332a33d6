"""The gradient check itself: float64 for float32 networks, and a property-based check
over random architectures, activations, losses and penalties."""

import numpy as np
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from src.engine.activations import HIDDEN_ACTIVATIONS
from src.engine.gradcheck import check_gradients
from src.engine.losses import get_loss
from src.engine.objective import Objective

OUTPUT_SETUPS = [
    ("mse", "sigmoid", 1),
    ("mse", "identity", 1),
    ("mse", "tanh", 2),
    ("mse", "softmax", 3),
    ("bce", "sigmoid", 1),
    ("cross_entropy", "softmax", 2),
    ("cross_entropy", "softmax", 4),
]


def test_gradcheck_runs_in_float64_for_float32_models(make_network, random_batch):
    net = make_network([2, 5, 1], "sigmoid", "sigmoid", seed=1, dtype=np.float32)
    x, y = random_batch(1)
    assert check_gradients(net, Objective(get_loss("mse")), x, y) < 1e-6


@settings(max_examples=60, deadline=None, derandomize=True)
@given(
    widths=st.lists(st.integers(1, 6), min_size=0, max_size=3),
    hidden=st.sampled_from(HIDDEN_ACTIVATIONS),
    setup=st.sampled_from(OUTPUT_SETUPS),
    bias=st.booleans(),
    l2=st.sampled_from([0.0, 0.1]),
    seed=st.integers(0, 2**16),
)
def test_random_networks_pass_the_gradient_check(make_network, random_batch, widths, hidden, setup, bias, l2, seed):
    loss_name, output, n_out = setup
    net = make_network([2, *widths, n_out], hidden, output, seed=seed, bias=bias, leaky_slope=0.2)
    x, y = random_batch(n_out, seed=seed + 1)
    # Finite differences are meaningless at a kink of (leaky) ReLU, e.g. the exact zeros
    # a dead unit passes on: stay at least 1e-3 away from them.
    zs, _ = net.forward(x)
    assume(hidden not in ("relu", "leaky_relu") or all(np.abs(z).min() > 1e-3 for z in zs[:-1]))
    assert check_gradients(net, Objective(get_loss(loss_name), l2=l2), x, y) < 1e-6
