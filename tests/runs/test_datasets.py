"""The datasets: the labs' generators, scikit-learn's, seeding and the test split."""

import numpy as np
import pytest

from src.runs.config import validate
from src.runs.datasets import generate_linear, generate_xor_easy, load_dataset


@pytest.fixture
def dataset_config(compose_config):
    """``dataset_config(*overrides)`` -> the validated ``dataset`` section of the composed config."""
    return lambda *overrides: validate(compose_config(*overrides)).dataset


def test_xor_easy_is_the_labs_21_points():
    x, y = generate_xor_easy(11)
    assert x.shape == (21, 2) and y.shape == (21,)
    # label 0 on the main diagonal (11 points), label 1 on the anti-diagonal minus the centre
    np.testing.assert_allclose(x[y == 0][:, 0], x[y == 0][:, 1])
    np.testing.assert_allclose(x[y == 1][:, 0], 1 - x[y == 1][:, 1])
    assert (y == 0).sum() == 11 and (y == 1).sum() == 10
    np.testing.assert_allclose(x[:3], [[0.0, 0.0], [0.0, 1.0], [0.1, 0.1]])


def test_linear_labels_follow_the_diagonal():
    x, y = generate_linear(500, np.random.default_rng(0))
    assert x.shape == (500, 2) and x.min() >= 0 and x.max() <= 1
    np.testing.assert_array_equal(y, (x[:, 0] <= x[:, 1]).astype(int))
    assert 0.4 < y.mean() < 0.6


@pytest.mark.parametrize(
    "overrides, n, n_classes",
    [
        (["dataset=linear", "dataset.n_samples=50"], 50, 2),
        (["dataset=xor", "dataset.points_per_diagonal=5"], 9, 2),
        (["dataset=moons", "dataset.n_samples=80", "dataset.noise=0.1"], 80, 2),
        (["dataset=blobs", "dataset.n_samples=90", "dataset.n_classes=3", "loss=cross_entropy"], 90, 3),
        (["dataset=blobs3"], 300, 3),
    ],
)
def test_datasets_are_seeded(dataset_config, overrides, n, n_classes):
    cfg = dataset_config(*overrides)
    a = load_dataset(cfg, np.random.default_rng(7))
    b = load_dataset(cfg, np.random.default_rng(7))
    assert a.x_train.shape == (n, 2) and a.n_classes == n_classes
    assert set(np.unique(a.y_train)) == set(range(n_classes))
    np.testing.assert_array_equal(a.x_train, b.x_train)
    assert not a.has_test


def test_moons_noise_comes_from_the_generator(dataset_config):
    cfg = dataset_config("dataset=moons", "dataset.noise=0.2")
    x1 = load_dataset(cfg, np.random.default_rng(1)).x_train
    x2 = load_dataset(cfg, np.random.default_rng(2)).x_train
    assert not np.allclose(x1, x2)


def test_test_fraction_splits_without_overlap(dataset_config):
    cfg = dataset_config("dataset=linear", "dataset.n_samples=100", "dataset.test_fraction=0.25")
    data = load_dataset(cfg, np.random.default_rng(0))
    assert data.has_test and len(data.y_test) == 25 and len(data.y_train) == 75
    train_rows = {tuple(r) for r in data.x_train}
    assert not any(tuple(r) in train_rows for r in data.x_test)
