"""The training objective: a data loss plus optional L1/L2 penalties on the weights.

``J = L + l1 * sum_i |W_i| + (l2 / 2) * sum_i ||W_i||^2`` (biases are not penalised), so
``dJ/dW_i = dL/dW_i + l1 * sign(W_i) + l2 * W_i``; ``sign(0) = 0`` as in PyTorch's
``abs`` backward. Every loss the harness logs is ``J``.
"""

from __future__ import annotations

import numpy as np

from src.engine.losses import Loss
from src.engine.network import MLP


class Objective:
    def __init__(self, loss: Loss, l1: float = 0.0, l2: float = 0.0):
        self.loss = loss
        self.l1 = l1
        self.l2 = l2

    def penalty(self, net: MLP) -> float:
        if not (self.l1 or self.l2):
            return 0.0
        total = 0.0
        for w in net.weights:
            if self.l1:
                total += self.l1 * float(np.sum(np.abs(w)))
            if self.l2:
                total += 0.5 * self.l2 * float(np.sum(w * w))
        return total

    def value(self, net: MLP, x: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
        """``(J, output)`` for inputs ``x`` (n, n_in) and targets ``y`` (n, n_out); no gradient."""
        zs, activations = net.forward(x)
        return self.loss.value(zs[-1], activations[-1], y) + self.penalty(net), activations[-1]

    def value_and_gradient(self, net: MLP, x: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
        """``(J, output)``; ``dJ/dparams`` is left in ``net.grads``."""
        value, output = net.loss_and_gradient(x, y, self.loss)
        if not (self.l1 or self.l2):
            return value, output
        for w, g in zip(net.weights, net.weight_grads, strict=True):
            if self.l1:
                g += self.l1 * np.sign(w)
            if self.l2:
                g += self.l2 * w
        return value + self.penalty(net), output
