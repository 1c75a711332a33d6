"""Finite-difference check of the analytic gradients of an ``MLP``.

For every parameter ``p_j`` the central difference
``(L(p + eps e_j) - L(p - eps e_j)) / (2 eps)`` approximates ``dL/dp_j``; the check
reports the largest relative error ``|g - g_num| / max(|g| + |g_num|, tiny)`` over all
parameters (weights and biases). Run in float64: in float32 the differences drown in
round-off.
"""

from __future__ import annotations

import numpy as np

from src.losses import Loss
from src.network import MLP


def numerical_gradient(net: MLP, x: np.ndarray, y: np.ndarray, loss: Loss, eps: float = 1e-5) -> np.ndarray:
    """Central-difference gradient of the loss with respect to ``net.params`` (flat)."""
    numeric = np.empty_like(net.params)
    for j in range(net.params.size):
        original = net.params[j]
        net.params[j] = original + eps
        zs, activations = net.forward(x)
        plus = loss.value(zs[-1], activations[-1], y)
        net.params[j] = original - eps
        zs, activations = net.forward(x)
        minus = loss.value(zs[-1], activations[-1], y)
        net.params[j] = original
        numeric[j] = (plus - minus) / (2 * eps)
    return numeric


def max_relative_error(analytic: np.ndarray, numeric: np.ndarray, tiny: float = 1e-12) -> float:
    """Largest elementwise ``|a - n| / max(|a| + |n|, tiny)``."""
    scale = np.maximum(np.abs(analytic) + np.abs(numeric), tiny)
    return float(np.max(np.abs(analytic - numeric) / scale))


def check_gradients(net: MLP, x: np.ndarray, y: np.ndarray, loss: Loss, eps: float = 1e-5) -> float:
    """Max relative error between the backpropagated and the numerical gradient."""
    net.loss_and_gradient(x, y, loss)
    analytic = net.grads.copy()
    return max_relative_error(analytic, numerical_gradient(net, x, y, loss, eps))
