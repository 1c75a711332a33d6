"""Epochs to an event as right-censored data: never counts as infinite, and intervals
are distribution-free."""

import math

import numpy as np
import pandas as pd
import pytest

from src.analysis.survival import _ci_rank, event_times, median_with_ci, survival_curve, survival_frame

INF = math.inf


def test_a_run_without_the_event_has_an_infinite_time():
    runs = pd.DataFrame({"epochs_to_threshold": [120.0, np.nan, 80.0]})
    assert event_times(runs, "epochs_to_threshold").tolist() == [120.0, INF, 80.0]
    assert event_times(runs, "not_logged").tolist() == [INF, INF, INF]


@pytest.mark.parametrize(
    "n, rank", [(5, 0), (6, 1), (10, 2), (20, 6)]
)  # the standard table of order-statistic intervals for the median
def test_the_confidence_rank_covers_at_least_95_percent(n, rank):
    assert _ci_rank(n, 0.95) == rank
    if rank:
        below = sum(math.comb(n, k) for k in range(rank)) / 2**n
        assert 1 - 2 * below >= 0.95


def test_median_counts_the_runs_that_never_arrived():
    # 3 of 5 fast arrivals do not beat 5 of 5 slower ones: the median is the 3rd time.
    fast_but_few = median_with_ci([10, 12, 14, INF, INF])[0]
    slow_but_all = median_with_ci([50, 52, 54, 56, 58])[0]
    assert fast_but_few == 14 and slow_but_all == 54
    assert median_with_ci([10, 12, INF, INF, INF])[0] == INF  # fewer than half arrived
    assert median_with_ci([10, 11, 12, 13, 14, 15, 16, 17, 18, 19]) == (14, 11, 18)
    assert median_with_ci([10, 11, 12, 13, 14, 15, 16, 17, INF, INF]) == (14, 11, INF)
    median, low, high = median_with_ci([1, 2, 3])
    assert median == 2 and math.isnan(low) and math.isnan(high)


def test_survival_curve_steps_down_at_each_arrival_and_stays_up_for_the_rest():
    t, s = survival_curve([3, 3, 7, INF], budget=10)
    assert t.tolist() == [1, 3, 7, 10]
    assert s.tolist() == [1.0, 0.5, 0.25, 0.25]
    frame = survival_frame(
        pd.DataFrame({"g": ["a", "a", "b"], "e": [2.0, np.nan, 5.0], "total": [2, 9, 5]}), "e", "total", ["g"]
    )
    assert frame[frame["g"] == "a"]["not_yet"].tolist() == [1.0, 0.5, 0.5]
    assert frame[frame["g"] == "b"]["t"].tolist() == [1, 5, 5]
