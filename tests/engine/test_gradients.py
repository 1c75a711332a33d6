"""Backpropagation against central finite differences, in float64."""

import itertools
import warnings

import numpy as np
import pytest

from src.engine.activations import HIDDEN_ACTIVATIONS, get_activation
from src.engine.gradcheck import check_gradients
from src.engine.losses import get_loss
from src.engine.objective import Objective

# (loss, output activation, number of outputs)
LOSS_SETUPS = [
    ("mse", "sigmoid", 1),
    ("mse", "tanh", 1),
    ("mse", "identity", 1),
    ("mse", "relu", 1),
    ("mse", "leaky_relu", 1),
    ("mse", "softmax", 3),
    ("mse", "sigmoid", 3),
    ("bce", "sigmoid", 1),
    ("cross_entropy", "softmax", 3),
]


@pytest.fixture
def network(make_network):
    """``network(hidden, output, n_out, bias=True)``: a 2-5-4-n_out network, N(0, 1) init."""
    return lambda hidden, output, n_out, bias=True: make_network(
        [2, 5, 4, n_out], hidden, output, init="normal", bias=bias, leaky_slope=0.1
    )


@pytest.mark.parametrize(
    "hidden, setup", list(itertools.product(HIDDEN_ACTIVATIONS, LOSS_SETUPS)), ids=lambda v: str(v)
)
def test_backprop_matches_finite_differences(hidden, setup, random_batch, network):
    loss_name, output, n_out = setup
    net = network(hidden, output, n_out)
    x, y = random_batch(n_out, n=7, seed=1)
    assert check_gradients(net, Objective(get_loss(loss_name)), x, y) < 1e-6


@pytest.mark.parametrize("hidden", HIDDEN_ACTIVATIONS)
def test_backprop_without_bias(hidden, random_batch, network):
    net = network(hidden, "sigmoid", 1, bias=False)
    x, y = random_batch(1, n=7, seed=1)
    assert check_gradients(net, Objective(get_loss("bce")), x, y) < 1e-6


@pytest.mark.parametrize("first, second", list(itertools.permutations(HIDDEN_ACTIVATIONS, 2)))
def test_backprop_with_one_activation_per_hidden_layer(first, second, random_batch, make_network):
    """Lab 004's network has a linear first hidden layer and a ReLU second one."""
    net = make_network([2, 5, 4, 1], [first, second], "sigmoid", init="normal", leaky_slope=0.1)
    assert [a.name for a in net.activations] == [first, second, "sigmoid"]
    x, y = random_batch(1, n=7, seed=1)
    assert check_gradients(net, Objective(get_loss("bce")), x, y) < 1e-6
    with pytest.raises(ValueError, match="1 hidden activations for 2 hidden layers"):
        make_network([2, 5, 4, 1], [first], "sigmoid")


def test_gradient_covers_every_weight_and_bias(random_batch, network):
    """Each W_i and b_i has its own slot in the flat gradient, and each is non-zero."""
    net = network("tanh", "sigmoid", 1)
    x, y = random_batch(1, n=7, seed=1)
    net.loss_and_gradient(x, y, get_loss("mse"))
    assert net.grads.size == 2 * 5 + 5 + 5 * 4 + 4 + 4 * 1 + 1
    for g in net.weight_grads + net.bias_grads:
        assert np.all(g != 0)


def test_gradient_is_a_mean_over_the_batch(random_batch, network):
    """Duplicating every sample leaves loss and gradient unchanged (mean reduction)."""
    net = network("relu", "softmax", 3)
    x, y = random_batch(3, n=7, seed=1)
    loss = get_loss("cross_entropy")
    value, _ = net.loss_and_gradient(x, y, loss)
    grads = net.grads.copy()
    value2, _ = net.loss_and_gradient(np.vstack([x, x]), np.vstack([y, y]), loss)
    assert value2 == pytest.approx(value, rel=1e-14)
    np.testing.assert_allclose(net.grads, grads, rtol=1e-13, atol=1e-16)


def test_sigmoid_and_bce_are_finite_for_huge_logits():
    z = np.array([[-1000.0], [-40.0], [0.0], [40.0], [1000.0]])
    y = np.array([[1.0], [0.0], [1.0], [1.0], [0.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(over="ignore"):  # as the passes that run it ignore exp's overflow
            a = get_activation("sigmoid", 0.01).forward(z)
        bce = get_loss("bce")
        value = bce.value(z, a, y)
        grad = bce.grad_z(z, a, y, get_activation("sigmoid", 0.01))
    np.testing.assert_array_equal(a[[0, 4]], [[0.0], [1.0]])
    # The two confidently wrong points cost 1000 each; the others log(2) and ~0.
    assert value == pytest.approx((1000 + 1000 + np.log(2) + 2 * np.log1p(np.exp(-40.0))) / 5)
    assert np.all(np.isfinite(grad))


def test_a_network_with_huge_logits_predicts_and_trains_without_warnings(make_network):
    """The sigmoid's overflow is ignored once per pass: by ``forward`` itself, and by the
    training loop around ``loss_and_gradient``."""
    net = make_network([2, 3, 1], "relu", "sigmoid")
    net.params[:] = 300.0
    net.weights[-1][:], net.biases[-1][:] = -300.0, -300.0  # the first row's logit: about -2.4e6
    x = np.array([[4.0, 4.0], [-4.0, -4.0], [1.0, -1.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        output = net.predict(x)
        with np.errstate(over="ignore"):
            value, trained = net.loss_and_gradient(x, np.ones((3, 1)), get_loss("bce"))
    assert output[0, 0] == 0.0 and np.array_equal(trained, output)
    assert np.isfinite(value) and np.all(np.isfinite(net.grads))


def test_softmax_cross_entropy_is_finite_for_huge_logits():
    z = np.array([[1000.0, -1000.0, 0.0], [-800.0, 800.0, 799.0]])
    y = np.array([[0.0, 1.0, 0.0], [0.0, 1.0, 0.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        a = get_activation("softmax", 0.01).forward(z)
        value = get_loss("cross_entropy").value(z, a, y)
    assert value == pytest.approx((2000 + np.log1p(np.exp(-1.0))) / 2)


@pytest.mark.parametrize("name, expected", [("relu", 0.0), ("leaky_relu", 0.1)])
def test_derivative_at_zero_follows_pytorch(name, expected):
    act = get_activation(name, leaky_slope=0.1)
    z = np.zeros((1, 1))
    assert act.backward(np.ones((1, 1)), z, act.forward(z))[0, 0] == expected


def test_the_gradient_check_of_a_saturated_network_warns_of_nothing(make_network, random_batch):
    net = make_network([2, 3, 1], "tanh", "sigmoid")
    net.weights[-1][:], net.biases[-1][:] = -400.0, -400.0  # logits below -709: exp overflows
    x, y = random_batch(1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert check_gradients(net, Objective(get_loss("bce")), x, y) < 1e-6


def _backprop_with_fresh_arrays(net, x, y, loss):
    """The textbook pass: ``forward``'s fresh arrays and ``Activation.backward``."""
    zs, acts = net.forward(x)
    delta = loss.grad_z(zs[-1], acts[-1], y, net.activations[-1])
    grads = {}
    for i in range(net.n_layers - 1, -1, -1):
        grads[f"W{i}"], grads[f"b{i}"] = acts[i].T @ delta, np.ones(len(x)) @ delta
        if i:
            delta = net.activations[i - 1].backward(delta @ net.weights[i].T, zs[i - 1], acts[i])
    return grads


@pytest.mark.parametrize("hidden", HIDDEN_ACTIVATIONS)
def test_in_place_hidden_layers_give_the_very_gradient_of_fresh_arrays(hidden, random_batch, network):
    """Sigmoid, tanh, ReLU and identity layers compute a over z and delta over the upstream
    gradient; the result is that of the pass written with new arrays, bit for bit, also
    where z is exactly 0."""
    net = network(hidden, "sigmoid", 1)
    x, y = random_batch(1, n=9, seed=3)
    x[0] = 0.0  # z = b at this row
    net.biases[0][1] = 0.0  # so z == 0 exactly in one unit
    loss = get_loss("bce")
    expected = _backprop_with_fresh_arrays(net, x, y, loss)
    for _ in range(2):  # a second pass reuses the buffers the first one overwrote
        net.loss_and_gradient(x, y, loss)
        got = net.views(net.grads)
        for name, value in expected.items():
            np.testing.assert_array_equal(got[name], value, err_msg=name, strict=True)
    assert get_activation(hidden, 0.1).in_place == (hidden != "leaky_relu")


@pytest.mark.parametrize("hidden", [name for name in HIDDEN_ACTIVATIONS if get_activation(name, 0.1).in_place])
def test_backward_in_place_is_backward(hidden):
    act = get_activation(hidden, 0.1)
    z = np.array([[0.0, -0.0, np.nan, np.inf, -np.inf, 1e-300, -3.5, 2.25, 800.0, -800.0]])
    grad = np.linspace(-2.0, 3.0, z.size).reshape(z.shape)
    over_z = z.copy()
    with np.errstate(over="ignore"):  # sigmoid's exp(800)
        a = act.forward(z)
        np.testing.assert_array_equal(act.forward(over_z, out=over_z), a, strict=True)
    expected = act.backward(grad, z, a)
    got = act.backward_in_place(grad.copy(), over_z)
    np.testing.assert_array_equal(np.signbit(got), np.signbit(expected))
    np.testing.assert_array_equal(got, expected, strict=True)
