"""Finite-difference check of the analytic gradients of an ``MLP``.

For every parameter ``p_j`` the central difference
``(J(p + h e_j) - J(p - h e_j)) / (2h)`` approximates ``dJ/dp_j``. The error reported
for each parameter tensor (``W0``, ``b0``, ...) is the norm-wise relative error

    ||g - g_num||_2 / (||g||_2 + ||g_num||_2)        (0 when both are 0)

and the check returns the largest over the tensors. Norm-wise errors are immune to the
finite-difference round-off that swamps element-wise ratios of near-zero gradients
(dead ReLU units, a converged network) while any wrong term in a tensor's backward
pass still shows up as an error of order 1. The check always runs in float64, on a
copy of the network.
"""

from __future__ import annotations

import numpy as np

from src.engine.network import MLP
from src.engine.objective import Objective


def numerical_gradient(net: MLP, objective: Objective, x: np.ndarray, y: np.ndarray, h: float = 1e-5) -> np.ndarray:
    """Central-difference gradient of the objective with respect to ``net.params`` (flat)."""
    numeric = np.empty_like(net.params)
    for j in range(net.params.size):
        original = net.params[j]
        net.params[j] = original + h
        plus, _ = objective.value(net, x, y)
        net.params[j] = original - h
        minus, _ = objective.value(net, x, y)
        net.params[j] = original
        numeric[j] = (plus - minus) / (2 * h)
    return numeric


def relative_errors(net: MLP, analytic: np.ndarray, numeric: np.ndarray) -> dict[str, float]:
    """Norm-wise relative error per parameter tensor, keyed ``W0``, ``b0``, ..."""
    errors = {}
    for name, where, _ in net.layout:
        a, n = analytic[where], numeric[where]
        scale = np.linalg.norm(a) + np.linalg.norm(n)
        errors[name] = float(np.linalg.norm(a - n) / scale) if scale > 0 else 0.0
    return errors


def check_gradients(net: MLP, objective: Objective, x: np.ndarray, y: np.ndarray, h: float = 1e-5) -> float:
    """Largest per-tensor relative error between backpropagation and finite differences."""
    net64 = net.copy(dtype=np.float64)
    x64, y64 = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    with np.errstate(over="ignore"):  # as in training: a sigmoid of z < -709 is exactly 0
        objective.value_and_gradient(net64, x64, y64)
    analytic = net64.grads.copy()
    return max(relative_errors(net64, analytic, numerical_gradient(net64, objective, x64, y64, h)).values())
