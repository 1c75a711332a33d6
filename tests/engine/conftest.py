"""Fixtures of the engine tests: initialised networks and random input batches."""

import numpy as np
import pytest

from src.engine.encoding import encode_targets
from src.engine.initializers import initialize
from src.engine.network import MLP


@pytest.fixture(scope="session")
def make_network():
    """``make_network(sizes, hidden, output, init="xavier", seed=0, bias=True, leaky_slope=0.01,
    dtype=np.float64)`` -> an ``MLP`` initialised from ``default_rng(seed)``."""

    def _make(sizes, hidden, output, init="xavier", seed=0, bias=True, leaky_slope=0.01, dtype=np.float64):
        net = MLP(
            sizes, hidden_activation=hidden, output_activation=output, bias=bias, leaky_slope=leaky_slope, dtype=dtype
        )
        initialize(net, init, np.random.default_rng(seed))
        return net

    return _make


@pytest.fixture(scope="session")
def random_batch():
    """``random_batch(n_out, n=9, seed=3)`` -> ``(x (n, 2), targets (n, n_out))`` with random labels."""

    def _batch(n_out: int, n: int = 9, seed: int = 3):
        rng = np.random.default_rng(seed)
        x = rng.normal(size=(n, 2))
        return x, encode_targets(rng.integers(0, max(n_out, 2), size=n), n_out, np.float64)

    return _batch
