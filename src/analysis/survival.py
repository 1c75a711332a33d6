"""Epochs to an event (the loss threshold, 100% train accuracy) as right-censored data.

A run that never reached the event within its budget is not missing: its time is
*censored*, known only to exceed the budget. Dropping such runs (a median over the
runs that arrived) ranks a setting that reached the threshold in 3 of 10 seeds above
one that reached it in 10 of 10. Here a run that did not reach the event has the time
``inf`` (``event_times``): it diverged, dipped below the threshold without settling
(unstable), or ran out of epochs. Every run of a study group shares one budget, so the
Kaplan–Meier estimate of the fraction of runs still short of the event,
``S(t) = #{runs with time > t} / n``, is the plain fraction (``survival_curve``), and its
median is the order statistic ``t_(ceil(n/2))`` (``median_with_ci``): finite when at
least half the runs arrived, else ``inf`` ("not within the budget").

The 95% confidence interval of the median is distribution-free: ``[t_(k), t_(n+1-k)]``
with the largest k such that ``P(Binomial(n, 1/2) < k) <= 0.025``, exact coverage at
least 95% and valid with censored (infinite) times. For n = 10 it is ``[t_(2), t_(9)]``
(97.9%); below n = 6 no such interval exists (``nan`` bounds).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from src.runs.tuning import median as order_median


def event_times(runs: pd.DataFrame, column: str) -> np.ndarray:
    """``runs[column]`` as floats, ``inf`` where a run has no value (never reached)."""
    values = pd.to_numeric(runs[column], errors="coerce") if column in runs else pd.Series(np.nan, runs.index)
    return values.fillna(np.inf).to_numpy(dtype=float)


def _ci_rank(n: int, level: float) -> int:
    """The largest k >= 1 with ``P(Binomial(n, 1/2) <= k - 1) <= (1 - level) / 2``, or 0."""
    tail, k, below = (1 - level) / 2, 0, 0.0
    while k < n:
        below += math.comb(n, k) / 2**n  # P(B <= k)
        if below > tail:
            break
        k += 1
    return k


def median_with_ci(times: np.ndarray, level: float = 0.95) -> tuple[float, float, float]:
    """``(median, low, high)`` of event times (``inf`` = never): the order statistic
    ``t_(ceil(n/2))`` and the distribution-free interval of the module docstring."""
    t = np.sort(np.asarray(times, dtype=float))
    n = len(t)
    if n == 0:
        return math.nan, math.nan, math.nan
    median = float(order_median(t))
    k = _ci_rank(n, level)
    if k == 0:
        return median, math.nan, math.nan
    return median, float(t[k - 1]), float(t[n - k])


def survival_curve(times: np.ndarray, budget: float) -> tuple[np.ndarray, np.ndarray]:
    """Step function ``(t, S(t))`` from 1 (the first epoch, update or example; a log axis
    has no 0) to ``budget``: the fraction of runs that have not reached the event by t.
    It starts at the fraction that had not reached it before t = 1 (normally 1) and stays
    above 0 when some runs never do."""
    t = np.sort(np.asarray(times, dtype=float))
    n = len(t)
    steps = np.unique(t[np.isfinite(t) & (t >= 1) & (t <= budget)])
    remaining = [float(np.count_nonzero(t >= 1)) / n] + [float(np.count_nonzero(t > s)) / n for s in steps]
    return np.concatenate([[1.0], steps, [max(budget, 1.0)]]), np.array(remaining + [remaining[-1]])


def survival_frame(runs: pd.DataFrame, event: str, total: str, by: list[str]) -> pd.DataFrame:
    """Long frame ``(*by, t, not_yet)``: one survival curve per group of ``runs`` for the
    event column ``event`` (e.g. ``epochs_to_threshold``), drawn to the group's longest
    run (``total``, e.g. ``epochs_run``)."""
    parts = []
    for key, group in runs.groupby(by, dropna=False, sort=True):
        t, s = survival_curve(event_times(group, event), float(pd.to_numeric(group[total]).max()))
        frame = pd.DataFrame({"t": t, "not_yet": s})
        for name, value in zip(by, key if isinstance(key, tuple) else (key,), strict=True):
            frame[name] = value
        parts.append(frame)
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=[*by, "t", "not_yet"])
