"""Fixtures of the engine tests: random input batches with encoded targets."""

import numpy as np
import pytest

from src.engine.encoding import encode_targets


@pytest.fixture(scope="session")
def random_batch():
    """``random_batch(n_out, n=9, seed=3)`` -> ``(x (n, 2), targets (n, n_out))`` with random labels."""

    def _batch(n_out: int, n: int = 9, seed: int = 3):
        rng = np.random.default_rng(seed)
        x = rng.normal(size=(n, 2))
        return x, encode_targets(rng.integers(0, max(n_out, 2), size=n), n_out, np.float64)

    return _batch
