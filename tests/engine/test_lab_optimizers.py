"""The reference labs' mistaken Adams, kept as named variants, follow the labs' code."""

import numpy as np
import pytest

from src.engine.optimizers import build_optimizer


def _lab000_adam(w, grads, lr, beta1, beta2, epsilon):
    """Lab 000's update, as its report prints it."""
    m, v = np.zeros_like(w), np.zeros_like(w)
    for dw in grads:
        m = beta1 * m + (1 - beta1) * dw
        v = beta2 * v + (1 - beta2) * (dw**2)
        m_hat = m / (1 - beta1)
        v_hat = v / (1 - beta2)
        w = w - lr * m_hat / np.sqrt(v_hat + epsilon)
    return w


def _lab001_adam(weight, grads, lr, b1, b2, eps):
    """Lab 001's update, as its report prints it (its step count starts at 1)."""
    mt, vt, t = np.zeros_like(weight), np.zeros_like(weight), 1
    for gradient in grads:
        mt = b1 * mt + (1 - b1) * gradient
        vt = b1 * vt + (1 - b2) * np.square(gradient)
        mt_hat = np.divide(mt, 1 - b1**t)
        vt_hat = np.divide(vt, 1 - b2**t)
        t += 1
        weight = weight - lr * np.divide(mt_hat, np.sqrt(vt_hat) + eps)
    return weight


@pytest.mark.parametrize("rule, lab", [("adam_lab000", _lab000_adam), ("adam_lab001", _lab001_adam)])
def test_the_lab_variants_follow_the_labs_code(rule, lab, optimizer_preset):
    rng = np.random.default_rng(3)
    p0 = rng.normal(size=50)
    grads = rng.normal(size=(40, 50))
    hyper = optimizer_preset(rule, lr=0.01)
    optimizer = build_optimizer(rule, p0.copy(), np.zeros_like(p0), **hyper)
    for g in grads:
        optimizer.grads[...] = g
        optimizer.step()
    expected = lab(p0.copy(), grads, 0.01, *hyper["betas"], hyper["eps"])
    np.testing.assert_allclose(optimizer.params, expected, rtol=1e-12, atol=1e-15)


def test_the_lab_variants_have_no_amsgrad(optimizer_preset):
    with pytest.raises(ValueError, match="no AMSGrad"):
        build_optimizer("adam_lab000", np.zeros(3), np.zeros(3), **optimizer_preset("adam_lab000", amsgrad=True))
