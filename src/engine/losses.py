"""Loss functions with the mean reduction of PyTorch's ``reduction="mean"``.

Targets ``y`` have the shape of the network output, (n, k) (or (m, n, k) for a stack of
m networks, each reduced on its own): 0/1 labels for k == 1, one-hot rows for k > 1.
Each loss returns its value and the gradient with respect to the output layer's
pre-activations ``z``, always under the same reduction:

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


class Loss:
    """``value(z, a, y) -> float``, ``values(z, a, y) -> (m,)`` for a stack of m networks
    (arrays (m, n, k)), and ``grad_z(z, a, y, output)`` of ``z``'s shape.

    A loss is the mean of its ``terms``: one per output element (mse, bce) or per row
    (cross_entropy). ``value`` and ``values`` reduce the same terms in the same order
    (pairwise over one network's contiguous terms), so a network in a stack gets the very
    value it would get alone.
    """

    name: str = ""
    #: Output activation the loss is fused with, or None when it accepts any.
    required_output: str | None = None
    #: Most classes the loss can separate (None: any number).
    max_classes: int | None = None

    def terms(self, z: np.ndarray, a: np.ndarray, y: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def value(self, z: np.ndarray, a: np.ndarray, y: np.ndarray) -> float:
        t = self.terms(z, a, y)
        return float(np.add.reduce(t, axis=None) / t.size)

    def values(self, z: np.ndarray, a: np.ndarray, y: np.ndarray) -> np.ndarray:
        t = self.terms(z, a, y)
        per_network = t.reshape(t.shape[0], -1)
        return np.add.reduce(per_network, axis=1) / per_network.shape[1]

    def grad_z(self, z: np.ndarray, a: np.ndarray, y: np.ndarray, output: Activation) -> np.ndarray:
        raise NotImplementedError


class MSE(Loss):
    name = "mse"

    def terms(self, z, a, y):
        diff = a - y
        return diff * diff

    def grad_z(self, z, a, y, output):
        return output.backward((2.0 / (a.shape[-2] * a.shape[-1])) * (a - y), z, a)


class BinaryCrossEntropy(Loss):
    name = "bce"
    required_output = "sigmoid"
    max_classes = 2

    def terms(self, z, a, y):
        return np.maximum(z, 0.0) - z * y + np.log1p(np.exp(-np.abs(z)))

    def grad_z(self, z, a, y, output):
        return (a - y) / (a.shape[-2] * a.shape[-1])


class CrossEntropy(Loss):
    name = "cross_entropy"
    required_output = "softmax"

    def terms(self, z, a, y):
        z_max = z.max(axis=-1, keepdims=True)
        log_sum_exp = z_max[..., 0] + np.log(np.exp(z - z_max).sum(axis=-1))
        return log_sum_exp - np.add.reduce(z * y, axis=-1)

    def grad_z(self, z, a, y, output):
        return (a - y) / a.shape[-2]


LOSSES = {cls.name: cls for cls in (MSE, BinaryCrossEntropy, CrossEntropy)}


def get_loss(name: str) -> Loss:
    if name not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; expected one of {sorted(LOSSES)}")
    return LOSSES[name]()
