"""Per-run figures: long learning curves are decimated without losing their extremes."""

import numpy as np

from src.runs.figures import MAX_CURVE_POINTS, curve_points


def test_short_curves_are_drawn_as_they_are():
    epochs, values = curve_points([0.5, 0.25, 0.125])
    assert epochs.tolist() == [1, 2, 3] and values.tolist() == [0.5, 0.25, 0.125]


def test_long_curves_keep_every_buckets_extremes_and_the_last_epoch():
    rng = np.random.default_rng(0)
    history = np.exp(-np.linspace(0, 5, 100_000)) * (1 + 0.5 * rng.random(100_000))
    history[73_123] = 7.0  # one spike
    epochs, values = curve_points(history.tolist())
    assert len(epochs) == len(values) == MAX_CURVE_POINTS + 1
    assert values.max() == 7.0 and values.min() == history.min()
    assert (epochs[-1], values[-1]) == (100_000, history[-1])
    assert np.all(np.diff(epochs) >= 0)
