"""Element-wise (and row-wise, for softmax) activation functions.

Every activation maps pre-activations ``z`` of shape (n, k) to activations ``a`` of
the same shape. ``backward`` turns the upstream gradient ``dL/da`` into ``dL/dz``
using whichever of ``z`` and ``a`` gives the exact derivative most cheaply:

=============  ==========================  ======================================
name           a = f(z)                    dL/dz
=============  ==========================  ======================================
sigmoid        1 / (1 + exp(-z))           dL/da * a * (1 - a)
tanh           tanh(z)                     dL/da * (1 - a**2)
relu           max(z, 0)                   dL/da * [z > 0]      (0 at z == 0)
leaky_relu     z if z > 0 else s * z       dL/da * (1 if z > 0 else s)
identity       z                           dL/da
softmax        exp(z_j) / sum_k exp(z_k)   a * (dL/da - sum_k dL/da_k * a_k)
=============  ==========================  ======================================

The derivatives at exactly 0 follow PyTorch's autograd (ReLU: 0, leaky ReLU: s).
"""

from __future__ import annotations

import numpy as np


class Activation:
    """Base class: ``forward(z) -> a`` and ``backward(grad_a, z, a) -> grad_z``."""

    name: str = ""

    def forward(self, z: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def backward(self, grad_a: np.ndarray, z: np.ndarray, a: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class Sigmoid(Activation):
    """Logistic function ``1 / (1 + exp(-z))``, the formula of ``scipy.special.expit`` and
    PyTorch; for very negative ``z`` ``exp(-z)`` overflows to inf and ``a`` is exactly 0."""

    name = "sigmoid"

    def forward(self, z):
        with np.errstate(over="ignore"):
            return 1.0 / (1.0 + np.exp(-z))

    def backward(self, grad_a, z, a):
        return grad_a * a * (1.0 - a)


class Tanh(Activation):
    name = "tanh"

    def forward(self, z):
        return np.tanh(z)

    def backward(self, grad_a, z, a):
        return grad_a * (1.0 - a * a)


class ReLU(Activation):
    name = "relu"

    def forward(self, z):
        return np.maximum(z, 0.0)

    def backward(self, grad_a, z, a):
        return np.where(z > 0, grad_a, 0.0)


class LeakyReLU(Activation):
    """``max(z, 0) + slope * min(z, 0)``; PyTorch's default slope is 0.01."""

    name = "leaky_relu"

    def __init__(self, slope: float = 0.01):
        self.slope = slope

    def forward(self, z):
        return np.where(z > 0, z, self.slope * z)

    def backward(self, grad_a, z, a):
        return np.where(z > 0, grad_a, self.slope * grad_a)


class Identity(Activation):
    """No activation: ``a = z``. Hidden layers with it make the network linear."""

    name = "identity"

    def forward(self, z):
        return z

    def backward(self, grad_a, z, a):
        return grad_a


class Softmax(Activation):
    """Row-wise softmax over the last axis, shifted by the row maximum for stability."""

    name = "softmax"

    def forward(self, z):
        shifted = z - z.max(axis=1, keepdims=True)
        e = np.exp(shifted)
        return e / e.sum(axis=1, keepdims=True)

    def backward(self, grad_a, z, a):
        return a * (grad_a - np.sum(grad_a * a, axis=1, keepdims=True))


HIDDEN_ACTIVATIONS = ("sigmoid", "tanh", "relu", "leaky_relu", "identity")
OUTPUT_ACTIVATIONS = HIDDEN_ACTIVATIONS + ("softmax",)

_CLASSES = {cls.name: cls for cls in (Sigmoid, Tanh, ReLU, LeakyReLU, Identity, Softmax)}


def get_activation(name: str, leaky_slope: float = 0.01) -> Activation:
    """Return the activation called ``name`` (one of ``OUTPUT_ACTIVATIONS``)."""
    if name not in _CLASSES:
        raise ValueError(f"unknown activation {name!r}; expected one of {sorted(_CLASSES)}")
    if name == "leaky_relu":
        return LeakyReLU(leaky_slope)
    return _CLASSES[name]()
