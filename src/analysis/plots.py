"""Seaborn figures of the study notebooks, drawn from ``src.analysis`` frames.

Learning curves show the mean over seeds with a 95% bootstrap confidence interval
(seeded, so a notebook redraws identically). A run that stopped at the loss threshold
has no points after it, so late epochs average over the slower runs only.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from src.analysis.loaders import load_trained
from src.analysis.studies import level_label
from src.runs.contract import TRAIN_LOSS
from src.runs.figures import draw_decision_boundary

MAX_CURVE_POINTS = 300


def _ordered_levels(values: pd.Series) -> list[str]:
    """Factor levels as strings, in numeric order when the levels are numbers."""
    unique = values.drop_duplicates().tolist()
    try:
        unique = sorted(unique, key=lambda v: float("inf") if pd.isna(v) else float(v))
    except (TypeError, ValueError):
        unique = sorted(unique, key=str)
    return [level_label(v) for v in unique]


def learning_curves(history: pd.DataFrame, factor: str, metric: str = TRAIN_LOSS, log: bool = True):
    """Mean ± 95% CI over seeds of ``metric`` per epoch, one colour per ``factor`` level,
    one panel per dataset. Long histories are thinned to about 300 epochs per curve."""
    data = history[history["metric"] == metric].copy()
    step = max(1, int(data["epoch"].max()) // MAX_CURVE_POINTS) if len(data) else 1
    data = data[(data["epoch"] % step == 0) | (data["epoch"] == 1)]
    data[factor] = data[factor].map(level_label)
    grid = sns.relplot(
        data=data,
        x="epoch",
        y="value",
        hue=factor,
        hue_order=_ordered_levels(history[factor]),
        col="dataset.name",
        kind="line",
        errorbar=("ci", 95),
        n_boot=200,
        seed=0,
        facet_kws={"sharex": False, "sharey": False},
        height=3.6,
        aspect=1.3,
    )
    grid.set_axis_labels("epoch", metric)
    if log:
        grid.set(yscale="log")
    return grid


def outcome_distributions(runs: pd.DataFrame, factor: str, metric: str):
    """Box plot and points (one per seed) of a summary metric per factor level and dataset;
    runs without the metric (e.g. never reached the threshold) are left out."""
    data = runs.assign(**{factor: runs[factor].map(level_label)}).dropna(subset=[metric])
    order = _ordered_levels(runs[factor])
    if data.empty:
        fig, ax = plt.subplots(figsize=(5, 1.5))
        ax.set_axis_off()
        ax.text(0.5, 0.5, f"no run has {metric}", ha="center", va="center")
        return fig
    grid = sns.catplot(
        data=data,
        x=factor,
        y=metric,
        col="dataset.name",
        kind="box",
        order=order,
        color="0.85",
        height=3.6,
        aspect=1.3,
        sharey=False,
    )
    grid.map_dataframe(sns.stripplot, x=factor, y=metric, order=order, color="C0", size=4, jitter=0.15)
    for ax in grid.axes.flat:
        ax.tick_params(axis="x", rotation=30)
    return grid


def capacity_heatmaps(runs: pd.DataFrame, metric: str, rows: str = "model.depth", columns: str = "model.width"):
    """Mean of ``metric`` over seeds for every (rows, columns) pair, one heatmap per dataset."""
    datasets = sorted(runs["dataset.name"].unique())
    fig, axes = plt.subplots(1, len(datasets), figsize=(5 * len(datasets), 4), squeeze=False, layout="constrained")
    for ax, dataset in zip(axes[0], datasets, strict=True):
        table = runs[runs["dataset.name"] == dataset].pivot_table(index=rows, columns=columns, values=metric)
        sns.heatmap(table, annot=True, fmt=".3f", cmap="viridis", ax=ax, cbar_kws={"label": metric})
        ax.set_title(dataset)
    return fig


def decision_boundaries(runs: pd.DataFrame, factor: str | tuple[str, str], tracking_uri: str | None = None):
    """Decision boundaries of the lowest-seed run for each dataset (rows) and factor level
    (columns); for two factors, one row per level of the first and a column per level of
    the second, per dataset."""
    factors = (factor,) if isinstance(factor, str) else tuple(factor)
    first = runs.sort_values("trainer.seed").drop_duplicates(["dataset.name", *factors])
    if len(factors) == 1:
        row_keys = sorted(first["dataset.name"].unique())
        row_of = first["dataset.name"]
        col_levels = _ordered_levels(first[factors[0]])
        col_of = first[factors[0]].map(level_label)
    else:
        levels = _ordered_levels(first[factors[0]])
        first = first.assign(_level=first[factors[0]].map(level_label))
        first = first.assign(_row=first["dataset.name"] + ", " + factors[0] + "=" + first["_level"])
        ordered = first.assign(_rank=first["_level"].map(levels.index)).sort_values(["dataset.name", "_rank"])
        row_keys = list(dict.fromkeys(ordered["_row"]))
        row_of = first["_row"]
        col_levels = _ordered_levels(first[factors[1]])
        col_of = first[factors[1]].map(level_label)
    fig, axes = plt.subplots(
        len(row_keys),
        len(col_levels),
        figsize=(3 * len(col_levels), 3 * len(row_keys)),
        squeeze=False,
        layout="constrained",
    )
    for ax in axes.flat:
        ax.set_axis_off()
    for (_, run), row_key, col_key in zip(first.iterrows(), row_of, col_of, strict=True):
        ax = axes[row_keys.index(row_key)][col_levels.index(col_key)]
        ax.set_axis_on()
        net, data = load_trained(run, tracking_uri)
        draw_decision_boundary(ax, net, data, title=f"{row_key} | {factors[-1]}={col_key}", resolution=120)
        ax.set(xlabel="", ylabel="")
        ax.title.set_fontsize(8)
    return fig
