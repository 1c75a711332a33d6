"""Loss functions with the mean reduction of PyTorch's ``reduction="mean"``.

Targets ``y`` have the shape of the network output, (n, k): 0/1 labels for k == 1,
one-hot rows for k > 1. Each loss returns its value and the gradient with respect to
the output layer's pre-activations ``z``, always under the same reduction:

* ``mse``: ``L = sum((a - y)**2) / (n*k)``, ``dL/da = 2 (a - y) / (n*k)``, then
  chained through the output activation (any output activation).
* ``bce``: binary cross-entropy of ``a = sigmoid(z)``, computed from the logits as
  ``L = mean(max(z, 0) - z*y + log1p(exp(-|z|)))`` (finite for any finite z, like
  ``torch.nn.BCEWithLogitsLoss``); ``dL/dz = (sigmoid(z) - y) / (n*k)``.
* ``cross_entropy``: softmax cross-entropy,
  ``L = mean_i(logsumexp(z_i) - z_i . y_i)``; ``dL/dz = (softmax(z) - y) / n``.
"""

from __future__ import annotations

import numpy as np

from src.engine.activations import Activation


def _mean(values: np.ndarray) -> float:
    """``float(np.mean(values))``, without ``np.mean``'s Python-level overhead."""
    return float(np.add.reduce(values, axis=None) / values.size)


class Loss:
    """``value(z, a, y) -> float`` and ``grad_z(z, a, y, output) -> (n, k) array``."""

    name: str = ""
    #: Output activation the loss is fused with, or None when it accepts any.
    required_output: str | None = None
    #: Most classes the loss can separate (None: any number).
    max_classes: int | None = None

    def value(self, z: np.ndarray, a: np.ndarray, y: np.ndarray) -> float:
        raise NotImplementedError

    def grad_z(self, z: np.ndarray, a: np.ndarray, y: np.ndarray, output: Activation) -> np.ndarray:
        raise NotImplementedError


class MSE(Loss):
    name = "mse"

    def value(self, z, a, y):
        diff = a - y
        return _mean(diff * diff)

    def grad_z(self, z, a, y, output):
        return output.backward((2.0 / a.size) * (a - y), z, a)


class BinaryCrossEntropy(Loss):
    name = "bce"
    required_output = "sigmoid"
    max_classes = 2

    def value(self, z, a, y):
        return _mean(np.maximum(z, 0.0) - z * y + np.log1p(np.exp(-np.abs(z))))

    def grad_z(self, z, a, y, output):
        return (a - y) / a.size


class CrossEntropy(Loss):
    name = "cross_entropy"
    required_output = "softmax"

    def value(self, z, a, y):
        z_max = z.max(axis=1, keepdims=True)
        log_sum_exp = z_max[:, 0] + np.log(np.exp(z - z_max).sum(axis=1))
        return _mean(log_sum_exp - np.add.reduce(z * y, axis=1))

    def grad_z(self, z, a, y, output):
        return (a - y) / a.shape[0]


LOSSES = {cls.name: cls for cls in (MSE, BinaryCrossEntropy, CrossEntropy)}


def get_loss(name: str) -> Loss:
    if name not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; expected one of {sorted(LOSSES)}")
    return LOSSES[name]()
