"""Two-dimensional classification datasets.

``linear`` and ``xor`` are the reference labs' ``generate_linear`` and
``generate_XOR_easy``; ``moons`` and ``blobs`` come from scikit-learn's generators
(imported only when one of them is drawn).
Inputs are (n, 2) floats, labels (n,) integers in ``0 .. n_classes - 1``.
All randomness is drawn from the ``numpy.random.Generator`` passed in.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Dataset:
    """A train split and an optional held-out test split (empty arrays when absent)."""

    name: str
    n_classes: int
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray

    @property
    def has_test(self) -> bool:
        return len(self.y_test) > 0


def generate_linear(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``n`` points uniform in the unit square, label 0 below the diagonal (x0 > x1), else 1."""
    x = rng.uniform(0.0, 1.0, (n, 2))
    return x, (x[:, 0] <= x[:, 1]).astype(np.int64)


def generate_xor_easy(n: int) -> tuple[np.ndarray, np.ndarray]:
    """``2n - 1`` points on the diagonals of the unit square: ``n`` evenly spaced on
    ``x0 == x1`` (label 0) and the same positions on ``x0 == 1 - x1`` (label 1) but the
    middle one, which for odd ``n`` is the centre both diagonals share."""
    step = 1 / (n - 1)
    inputs, labels = [], []
    for i in range(n):
        inputs.append([step * i, step * i])
        labels.append(0)
        if i == int((n - 1) / 2):
            continue
        inputs.append([step * i, 1 - step * i])
        labels.append(1)
    return np.array(inputs), np.array(labels, dtype=np.int64)


def _sklearn_seed(rng: np.random.Generator) -> int:
    return int(rng.integers(0, 2**31 - 1))


def generate(cfg, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, int]:
    """Draw the full dataset described by a dataset config; returns ``(x, y, n_classes)``."""
    if cfg.name == "linear":
        x, y = generate_linear(cfg.n_samples, rng)
        return x, y, 2
    if cfg.name == "xor":
        x, y = generate_xor_easy(cfg.points_per_diagonal)
        return x, y, 2
    if cfg.name == "moons":
        from sklearn.datasets import make_moons

        x, y = make_moons(cfg.n_samples, noise=cfg.noise, random_state=_sklearn_seed(rng))
        return x, y.astype(np.int64), 2
    if cfg.name == "blobs":
        from sklearn.datasets import make_blobs

        x, y = make_blobs(
            cfg.n_samples, centers=cfg.n_classes, cluster_std=cfg.cluster_std, random_state=_sklearn_seed(rng)
        )
        return x, y.astype(np.int64), cfg.n_classes
    raise ValueError(f"unknown dataset {cfg.name!r}")


def load_dataset(cfg, rng: np.random.Generator) -> Dataset:
    """Generate the dataset and split off ``cfg.test_fraction`` of it (seeded) as a test set."""
    x, y, n_classes = generate(cfg, rng)
    n_test = int(round(cfg.test_fraction * len(y)))
    if n_test == 0:
        return Dataset(cfg.name, n_classes, x, y, x[:0], y[:0])
    order = rng.permutation(len(y))
    test, train = order[:n_test], order[n_test:]
    return Dataset(cfg.name, n_classes, x[train], y[train], x[test], y[test])
