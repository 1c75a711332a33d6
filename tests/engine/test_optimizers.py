"""Optimizer steps against scalar re-implementations of the algorithms documented for
``torch.optim.SGD``, ``torch.optim.Adagrad`` and ``torch.optim.Adam`` (PyTorch 2.x)."""

import math

import numpy as np
import pytest

from src.engine.optimizers import build_optimizer

N_PARAMS, N_STEPS = 6, 6


def _gradient_sequence(seed=0):
    rng = np.random.default_rng(seed)
    return [rng.normal(size=N_PARAMS) * 10.0 ** rng.integers(-3, 2) for _ in range(N_STEPS)]


def reference_sgd(p, grads, lr, momentum=0.0, dampening=0.0, nesterov=False, weight_decay=0.0):
    p, buf, out = list(p), [None] * len(p), []
    for t, grad in enumerate(grads, start=1):
        for j, g in enumerate(grad):
            g = g + weight_decay * p[j]
            if momentum != 0:
                buf[j] = g if t == 1 else momentum * buf[j] + (1 - dampening) * g
                g = g + momentum * buf[j] if nesterov else buf[j]
            p[j] = p[j] - lr * g
        out.append(list(p))
    return out


def reference_adagrad(p, grads, lr, lr_decay=0.0, weight_decay=0.0, initial_accumulator_value=0.0, eps=1e-10):
    p, s, out = list(p), [initial_accumulator_value] * len(p), []
    for t, grad in enumerate(grads, start=1):
        clr = lr / (1 + (t - 1) * lr_decay)
        for j, g in enumerate(grad):
            g = g + weight_decay * p[j]
            s[j] = s[j] + g * g
            p[j] = p[j] + (-clr * g) / (math.sqrt(s[j]) + eps)
        out.append(list(p))
    return out


def reference_adam(p, grads, lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False):
    beta1, beta2 = betas
    p, m, v, v_max, out = list(p), [0.0] * len(p), [0.0] * len(p), [0.0] * len(p), []
    for t, grad in enumerate(grads, start=1):
        for j, g in enumerate(grad):
            g = g + weight_decay * p[j]
            m[j] = m[j] + (1 - beta1) * (g - m[j])
            v[j] = v[j] * beta2 + (1 - beta2) * g * g
            v_max[j] = max(v_max[j], v[j])
            second = v_max[j] if amsgrad else v[j]
            denom = math.sqrt(second) / math.sqrt(1 - beta2**t) + eps
            p[j] = p[j] + (-(lr / (1 - beta1**t)) * m[j]) / denom
        out.append(list(p))
    return out


CASES = [
    ("sgd", dict(lr=0.1), reference_sgd),
    ("sgd", dict(lr=0.1, weight_decay=0.01), reference_sgd),
    ("sgd", dict(lr=0.05, momentum=0.9), reference_sgd),
    ("sgd", dict(lr=0.05, momentum=0.9, dampening=0.5, weight_decay=1e-3), reference_sgd),
    ("sgd", dict(lr=0.05, momentum=0.8, nesterov=True), reference_sgd),
    ("adagrad", dict(lr=0.1), reference_adagrad),
    ("adagrad", dict(lr=0.1, lr_decay=0.05, weight_decay=0.01, initial_accumulator_value=0.1), reference_adagrad),
    ("adam", dict(lr=1e-3), reference_adam),
    ("adam", dict(lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.01), reference_adam),
    ("adam", dict(lr=0.01, amsgrad=True), reference_adam),
]


@pytest.mark.parametrize("kind, hyper, reference", CASES, ids=[f"{k}-{h}" for k, h, _ in CASES])
def test_steps_match_pytorch_update_rules(kind, hyper, reference, optimizer_preset):
    start = np.random.default_rng(42).normal(size=N_PARAMS)
    grads_seq = _gradient_sequence()
    params, grads = start.copy(), np.zeros(N_PARAMS)
    opt = build_optimizer(kind, params, grads, **optimizer_preset(kind, **hyper))
    expected = reference(start, grads_seq, **hyper)
    for t, g in enumerate(grads_seq):
        grads[...] = g
        opt.step()
        np.testing.assert_allclose(params, expected[t], rtol=1e-14, atol=0, err_msg=f"step {t + 1}")


def test_adam_bias_correction_uses_the_step_count(optimizer_preset):
    """With bias correction by 1 - beta**t, Adam's first step moves every parameter by
    ~lr whatever the gradient's scale; without t it would move by lr * 0.1/sqrt(0.001) ~ 3.2 lr."""
    params, grads = np.zeros(4), np.array([1e-3, -2.0, 50.0, -0.3])
    opt = build_optimizer("adam", params, grads, **optimizer_preset("adam", lr=0.01))
    opt.step()
    np.testing.assert_allclose(params, -0.01 * np.sign(grads), rtol=1e-5)


def test_momentum_buffer_starts_at_the_first_gradient(optimizer_preset):
    params, grads = np.zeros(2), np.array([1.0, -1.0])
    opt = build_optimizer("sgd", params, grads, **optimizer_preset("sgd", lr=1.0, momentum=0.9, dampening=0.5))
    opt.step()
    np.testing.assert_array_equal(params, [-1.0, 1.0])  # no dampening on the first step
    opt.step()
    np.testing.assert_array_equal(params, [-1.0 - 1.4, 1.0 + 1.4])  # 0.9 * 1 + 0.5 * 1


def test_optimizer_updates_the_network_buffer_in_place(optimizer_preset):
    params, grads = np.ones(3), np.ones(3)
    view = params[1:]
    build_optimizer("adagrad", params, grads, **optimizer_preset("adagrad", lr=0.5)).step()
    np.testing.assert_allclose(view, [0.5, 0.5])


def test_nesterov_needs_momentum(optimizer_preset):
    with pytest.raises(ValueError, match="Nesterov"):
        build_optimizer("sgd", np.zeros(1), np.zeros(1), **optimizer_preset("sgd", lr=0.1, nesterov=True))


def _per_network(*values):
    return np.array(values, dtype=np.float64).reshape(-1, 1)


STACK_CASES = [
    ("sgd", dict(lr=_per_network(0.1, 0.2, 0.3, 0.4, 0.5))),
    ("sgd", dict(lr=_per_network(0.1, 0.2, 0.3, 0.4, 0.5), momentum=_per_network(0.9, 0.8, 0.7, 0.6, 0.5))),
    ("nesterov", dict(lr=0.05, weight_decay=_per_network(0.0, 0.01, 0.02, 0.03, 0.04))),
    ("adagrad", dict(lr=_per_network(0.1, 0.2, 0.3, 0.4, 0.5), lr_decay=_per_network(0.0, 0.01, 0.02, 0.03, 0.04))),
    ("rmsprop", dict(lr=_per_network(0.01, 0.02, 0.03, 0.04, 0.05), momentum=0.9, centered=True)),
    ("adam", dict(lr=_per_network(0.001, 0.01, 0.1, 0.2, 0.3), amsgrad=True)),
    ("adamw", dict(lr=_per_network(0.001, 0.01, 0.1, 0.2, 0.3), weight_decay=0.01)),
    ("adam_lab001", dict(lr=_per_network(0.001, 0.01, 0.1, 0.2, 0.3))),
]


@pytest.mark.parametrize("preset, hyper", STACK_CASES, ids=[f"{p}-{sorted(h)}" for p, h in STACK_CASES])
def test_a_stacks_optimizer_goes_on_for_some_of_its_networks_exactly(preset, hyper, optimizer_preset):
    """``select``: the optimizer of some rows of a stack (m, P) goes on exactly as those
    rows would have in the whole stack: state buffers, per-network hyperparameters, step count."""
    rng = np.random.default_rng(7)
    values = optimizer_preset(preset, **hyper)
    rule = {"momentum": "sgd", "nesterov": "sgd"}.get(preset, preset)
    params, grads = rng.normal(size=(5, N_PARAMS)), np.zeros((5, N_PARAMS))
    whole = build_optimizer(rule, params, grads, **values)
    for _ in range(3):
        grads[...] = rng.normal(size=grads.shape)
        whole.step()
    rows = np.array([0, 2, 4])
    some_params, some_grads = params[rows], grads[rows]
    some = whole.select(rows, some_params, some_grads)
    for _ in range(4):
        grads[...] = rng.normal(size=grads.shape)
        some_grads[...] = grads[rows]
        whole.step()
        some.step()
        np.testing.assert_array_equal(some_params, params[rows])
    assert some.t == whole.t == 7
