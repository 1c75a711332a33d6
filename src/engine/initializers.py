"""Weight initialisation schemes, drawing from one ``numpy.random.Generator``.

=========  =====================================  ==================
scheme     W_i (fan_in, fan_out)                  b_i
=========  =====================================  ==================
uniform    U(-1, 1)                               U(-1, 1)
normal     N(0, 1)                                N(0, 1)
xavier     U(-a, a), a = sqrt(6 / (fan_in+fan_out))  0
he         N(0, 2 / fan_in)                       0
=========  =====================================  ==================

``uniform`` and ``normal`` are the schemes of the reference labs (biases drawn like the
weights); ``xavier`` is Glorot's uniform scheme and ``he`` Kaiming's normal scheme
for ReLU-like activations. Layers are drawn in order, weights before biases.
"""

from __future__ import annotations

import numpy as np

from src.engine.network import MLP

INIT_SCHEMES = ("uniform", "normal", "xavier", "he")


def initialize(net: MLP, scheme: str, rng: np.random.Generator) -> None:
    """Fill ``net.params`` in place according to ``scheme``."""
    if scheme not in INIT_SCHEMES:
        raise ValueError(f"unknown init scheme {scheme!r}; expected one of {list(INIT_SCHEMES)}")
    for i, w in enumerate(net.weights):
        fan_in, fan_out = w.shape
        b = net.biases[i] if net.bias else None
        if scheme == "uniform":
            w[...] = rng.uniform(-1.0, 1.0, w.shape)
            if b is not None:
                b[...] = rng.uniform(-1.0, 1.0, b.shape)
        elif scheme == "normal":
            w[...] = rng.normal(0.0, 1.0, w.shape)
            if b is not None:
                b[...] = rng.normal(0.0, 1.0, b.shape)
        else:
            if scheme == "xavier":
                limit = np.sqrt(6.0 / (fan_in + fan_out))
                w[...] = rng.uniform(-limit, limit, w.shape)
            else:
                w[...] = rng.normal(0.0, np.sqrt(2.0 / fan_in), w.shape)
            if b is not None:
                b[...] = 0.0
