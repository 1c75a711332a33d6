"""L1/L2 penalties: in the objective's value and in its gradient, on weights only."""

import numpy as np
import pytest

from src.engine.gradcheck import check_gradients
from src.engine.losses import get_loss
from src.engine.objective import Objective


@pytest.mark.parametrize("l1, l2", [(0.01, 0.0), (0.0, 0.1), (0.02, 0.05)])
def test_penalties_are_in_the_loss_and_the_gradient(l1, l2, make_network, random_batch):
    net = make_network([2, 4, 3, 1], "tanh", "sigmoid", init="normal")
    x, y = random_batch(1)
    plain, penalised = Objective(get_loss("bce")), Objective(get_loss("bce"), l1=l1, l2=l2)
    expected_penalty = sum(l1 * np.abs(w).sum() + 0.5 * l2 * (w**2).sum() for w in net.weights)
    assert penalised.value(net, x, y)[0] == pytest.approx(plain.value(net, x, y)[0] + expected_penalty, rel=1e-14)
    assert check_gradients(net, penalised, x, y) < 1e-6
    plain.value_and_gradient(net, x, y)
    bias_grads = [b.copy() for b in net.bias_grads]
    penalised.value_and_gradient(net, x, y)
    for before, after in zip(bias_grads, net.bias_grads, strict=True):
        np.testing.assert_array_equal(before, after)  # biases are not penalised
