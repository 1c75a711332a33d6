"""Figures of the study notebooks, drawn from ``src.analysis`` frames.

Every setting gets its own colour and line style, so no curve hides another, and every
run is counted:

* ``learning_curves``: the median over seeds with the band between the 25th and 75th
  percentiles, on a log-spaced epoch grid. A run that stopped (at the loss threshold,
  or diverged) keeps its last value from then on, since its network no longer changes;
  so the curve of a setting is never an average over its slower seeds only. The loss
  threshold is drawn as a line.
* ``survival_curves``: the fraction of seeds not yet at the target against epochs (and
  against updates and examples seen when batch schedules differ), ``src.analysis.survival``.
* ``outcome_points``: one point per seed, the runs that never got there drawn at the
  budget as crosses, and the median with its 95% interval (never = inf).
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from src.analysis.loaders import load_trained
from src.analysis.studies import Study, level_label
from src.analysis.survival import event_times, median_with_ci, survival_frame
from src.runs.contract import EPOCH, EPOCHS_RUN, EXAMPLES_RUN, TRAIN_LOSS, UPDATES_RUN
from src.runs.figures import draw_decision_boundary, legend_handles

CURVE_POINTS = 300
#: How quantities are named on axes.
LABELS = {
    "train_loss": "training loss",
    "train_accuracy": "training accuracy",
    "test_loss": "test loss",
    "test_accuracy": "test accuracy",
    "epochs_to_threshold": "epochs to the loss threshold",
    "epochs_to_full_accuracy": "epochs to 100% training accuracy",
    "final_train_accuracy": "final training accuracy",
    "final_test_accuracy": "final test accuracy",
    "optimizer.name": "optimizer",
    "optimizer.lr": "learning rate",
    "model.width": "hidden units per layer",
    "model.depth": "hidden layers",
    "model.activation": "hidden activation",
    "loss.name": "loss",
    "trainer.batch_size": "batch size",
    "dataset.name": "dataset",
}
#: The run-total column of each axis of a survival plot.
TOTALS = {"epochs": EPOCHS_RUN, "updates": UPDATES_RUN, "examples": EXAMPLES_RUN}
DASHES = ["", (4, 1.5), (1, 1), (3, 1, 1, 1), (6, 2), (2, 2), (5, 1, 1, 1, 1, 1), (8, 2, 2, 2)]


def label(key: str) -> str:
    """Words for a column name on an axis or a legend."""
    return LABELS.get(key, key)


def _ordered_levels(values: pd.Series) -> list[str]:
    """Factor levels as strings, in numeric order when the levels are numbers."""
    unique = values.drop_duplicates().tolist()
    try:
        unique = sorted(unique, key=lambda v: float("inf") if pd.isna(v) else float(v))
    except (TypeError, ValueError):
        unique = sorted(unique, key=str)
    return [level_label(v) for v in unique]


def _styles(levels: list[str]) -> dict[str, dict]:
    palette = sns.color_palette("tab10" if len(levels) <= 10 else "husl", len(levels))
    return {
        level: {"color": palette[i], "dashes": DASHES[i % len(DASHES)], "marker": "osD^v<>ph*"[i % 10]}
        for i, level in enumerate(levels)
    }


def _focus(study: Study, frame: pd.DataFrame) -> list[str]:
    """The study's focus datasets that ``frame`` has, in the preset's order (one panel each)."""
    present = set(frame["dataset.name"])
    return [dataset for dataset in study.focus if dataset in present]


def _epoch_grid(last: int) -> np.ndarray:
    return np.unique(np.geomspace(1, max(last, 1), CURVE_POINTS).round().astype(int))


def carried_forward(history: pd.DataFrame, metric: str, factor: str | tuple[str, ...]) -> pd.DataFrame:
    """``metric`` of every run on a log-spaced epoch grid up to the longest run of its
    dataset, a stopped run keeping its last value. Columns: ``run_id, epoch, value``,
    ``dataset.name`` and the factor column(s)."""
    factors = [factor] if isinstance(factor, str) else list(factor)
    data = history[history["metric"] == metric]
    frames = []
    for dataset, of_dataset in data.groupby("dataset.name"):
        grid = _epoch_grid(int(of_dataset[EPOCH].max()))
        for run_id, run in of_dataset.groupby("run_id", sort=False):
            run = run.sort_values(EPOCH)
            index = np.searchsorted(run[EPOCH].to_numpy(), grid, side="right") - 1
            values = run["value"].to_numpy()[np.maximum(index, 0)]
            frame = pd.DataFrame({"run_id": run_id, EPOCH: grid, "value": np.where(index >= 0, values, np.nan)})
            frame["dataset.name"] = dataset
            for name in factors:
                frame[name] = run[name].iloc[0]
            frames.append(frame)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["run_id", EPOCH, "value"])


def learning_curves(
    history: pd.DataFrame, factor: str, metric: str = TRAIN_LOSS, log: bool = True, threshold: float | None = None
):
    """Median over seeds and its 25–75% band of ``metric`` per epoch (stopped runs carried
    forward), one colour and line style per ``factor`` level, one panel per dataset;
    ``threshold`` (None or NaN: none) is drawn as a horizontal line."""
    data = carried_forward(history, metric, factor)
    data[factor] = data[factor].map(level_label)
    levels = _ordered_levels(history[factor])
    styles = _styles(levels)
    grid = sns.relplot(
        data=data,
        x=EPOCH,
        y="value",
        hue=factor,
        hue_order=levels,
        style=factor,
        style_order=levels,
        dashes={level: style["dashes"] for level, style in styles.items()},
        palette={level: style["color"] for level, style in styles.items()},
        col="dataset.name",
        kind="line",
        estimator="median",
        errorbar=("pi", 50),
        facet_kws={"sharex": False, "sharey": False},
        height=3.6,
        aspect=1.3,
    )
    grid.set_axis_labels("epoch", label(metric))
    grid.set(xscale="log")
    if log:
        grid.set(yscale="log")
    if threshold is not None and np.isfinite(threshold):
        for ax in grid.axes.flat:
            ax.axhline(threshold, color="0.3", linestyle=":", linewidth=1, label="loss threshold")
    grid.legend.set_title(label(factor))
    grid.set_titles(col_template="{col_name}")
    return grid


def survival_curves(runs: pd.DataFrame, study: Study):
    """Fraction of seeds not yet at the study's target against epochs (and updates and
    examples when batch schedules differ): one row per axis, one column per dataset, one
    step line per setting, labelled with how many seeds got there."""
    factor = study.factor
    runs = runs.assign(_level=runs[factor].map(level_label))
    levels = _ordered_levels(runs[factor])
    styles = _styles(levels)
    datasets = _focus(study, runs)
    axes_names = study.axes(runs)
    fig, axes = plt.subplots(
        len(axes_names),
        len(datasets),
        figsize=(5.2 * len(datasets), 3.6 * len(axes_names)),
        squeeze=False,
        layout="constrained",
    )
    for row, axis in enumerate(axes_names):
        event = study.event if axis == "epochs" else f"{axis}_to_threshold"
        curves = survival_frame(runs, event, TOTALS[axis], ["dataset.name", "_level"])
        for column, dataset in enumerate(datasets):
            ax = axes[row][column]
            for level in levels:
                curve = curves[(curves["dataset.name"] == dataset) & (curves["_level"] == level)]
                if curve.empty:
                    continue
                group = runs[(runs["dataset.name"] == dataset) & (runs["_level"] == level)]
                reached = int(np.isfinite(event_times(group, event)).sum())
                style = styles[level]
                (line,) = ax.step(
                    curve["t"],
                    curve["not_yet"],
                    where="post",
                    color=style["color"],
                    label=f"{level} ({reached}/{len(group)})",
                )
                if style["dashes"]:
                    line.set_dashes(style["dashes"])
            ax.set(xscale="log", ylim=(-0.03, 1.03), title=dataset)
            ax.set_xlabel(f"{axis} (log scale)")
            ax.set_ylabel(
                f"fraction of seeds not yet at\n{'the loss threshold' if 'threshold' in event else '100% accuracy'}"
            )
            ax.legend(title=f"{label(factor)} (reached)", fontsize=7, title_fontsize=8)
    return fig


def tuning_curves(runs: pd.DataFrame, study: Study):
    """A tuned study's choice: the median outcome over the tuning seeds (never = inf,
    drawn at the budget as an open marker) against the tuned value, one line per setting
    and a panel per dataset; a star marks each setting's chosen value."""
    table = study.tuning(runs)
    factor, key = study.factor, study.tuned
    if table.empty:
        fig, ax = plt.subplots(figsize=(5, 1.2))
        ax.set_axis_off()
        ax.text(0.5, 0.5, "no tuning runs in this sweep (not run with hydra/sweeper=tuned)", ha="center", va="center")
        return fig
    levels = _ordered_levels(table[factor])
    styles = _styles(levels)
    datasets = _focus(study, table)
    fig, axes = plt.subplots(1, len(datasets), figsize=(5.5 * len(datasets), 3.8), squeeze=False, layout="constrained")
    budget = float(pd.to_numeric(runs["trainer.epochs"]).max())
    for ax, dataset in zip(axes[0], datasets, strict=True):
        for level in levels:
            rows = table[(table["dataset.name"] == dataset) & (table[factor].map(level_label) == level)]
            rows = rows.sort_values(key)
            if rows.empty:
                continue
            y = rows["median"] if study.event is not None else rows["mean_accuracy"]
            shown = np.where(np.isfinite(y), y, budget)
            style = styles[level]
            (line,) = ax.plot(rows[key], shown, color=style["color"], marker=style["marker"], label=level)
            if style["dashes"]:
                line.set_dashes(style["dashes"])
            never = ~np.isfinite(y.to_numpy())
            ax.scatter(rows[key][never], shown[never], s=60, facecolors="white", edgecolors=style["color"], zorder=3)
            chosen = rows["chosen"].to_numpy()
            ax.scatter(
                rows[key][chosen], shown[chosen], marker="*", s=180, color=style["color"], edgecolors="k", zorder=4
            )
        if study.event is not None:
            ax.axhline(budget, color="0.5", linestyle=":", linewidth=1)
            ax.set(yscale="log", ylabel=f"median {label(study.event)}\n(open marker: not reached)")
        else:
            ax.set_ylabel("mean accuracy")
        ax.set(xscale="log", title=dataset, xlabel=f"{label(key)} (star: chosen)")
        ax.legend(title=label(factor), fontsize=7, title_fontsize=8)
    return fig


def outcome_points(runs: pd.DataFrame, study: Study):
    """One point per seed of the study's epoch count per setting and dataset; the runs that
    never got there as crosses at the budget; the median and its 95% interval (never =
    inf) as a bar and a line."""
    factor = study.factor
    levels = _ordered_levels(runs[factor])
    styles = _styles(levels)
    datasets = _focus(study, runs)
    fig, axes = plt.subplots(1, len(datasets), figsize=(5.5 * len(datasets), 3.8), squeeze=False, layout="constrained")
    rng = np.random.default_rng(0)
    for ax, dataset in zip(axes[0], datasets, strict=True):
        of_dataset = runs[runs["dataset.name"] == dataset]
        budget = float(pd.to_numeric(of_dataset["trainer.epochs"]).max())
        for position, level in enumerate(levels):
            group = of_dataset[of_dataset[factor].map(level_label) == level]
            if group.empty:
                continue
            times = event_times(group, study.event)
            jitter = rng.uniform(-0.15, 0.15, len(times))
            reached = np.isfinite(times)
            color = styles[level]["color"]
            ax.scatter(position + jitter[reached], times[reached], s=14, color=color, alpha=0.8)
            ax.scatter(position + jitter[~reached], np.full((~reached).sum(), budget), s=22, marker="x", color="0.2")
            median, low, high = median_with_ci(times)
            top = budget if not np.isfinite(high) else high
            if not np.isnan(low):
                ax.vlines(position + 0.3, low, top, color=color, linewidth=2)
            if np.isfinite(median):
                ax.hlines(median, position - 0.25, position + 0.35, color="k", linewidth=1.5)
        ax.axhline(budget, color="0.5", linestyle=":", linewidth=1)
        ax.text(len(levels) - 0.5, budget, "budget (x: not reached)", ha="right", va="bottom", fontsize=7)
        ax.set(yscale="log", title=dataset, xticks=range(len(levels)), xlim=(-0.6, len(levels) - 0.4))
        ax.set_xticklabels(levels, rotation=30)
        ax.set_xlabel(label(factor))
        ax.set_ylabel(label(study.event))
    return fig


def accuracy_distributions(runs: pd.DataFrame, factor: str, metric: str):
    """Box plot and points (one per seed) of a final accuracy per setting and dataset."""
    data = runs.assign(**{factor: runs[factor].map(level_label)})
    order = _ordered_levels(runs[factor])
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
    grid.set_axis_labels(label(factor), label(metric))
    grid.set_titles(col_template="{col_name}")
    for ax in grid.axes.flat:
        ax.tick_params(axis="x", rotation=30)
    return grid


def capacity_heatmaps(runs: pd.DataFrame, metric: str, rows: str = "model.depth", columns: str = "model.width"):
    """Mean of ``metric`` over seeds for every (rows, columns) pair, one heatmap per dataset."""
    datasets = sorted(runs["dataset.name"].unique())
    fig, axes = plt.subplots(1, len(datasets), figsize=(5 * len(datasets), 4), squeeze=False, layout="constrained")
    for ax, dataset in zip(axes[0], datasets, strict=True):
        table = runs[runs["dataset.name"] == dataset].pivot_table(index=rows, columns=columns, values=metric)
        sns.heatmap(table, annot=True, fmt=".3f", cmap="viridis", ax=ax, cbar_kws={"label": f"mean {label(metric)}"})
        ax.set(title=dataset, xlabel=label(columns), ylabel=label(rows))
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
        first = first.assign(_row=first["dataset.name"] + ", " + label(factors[0]) + ": " + first["_level"])
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
    handles, handles_classes = [], 0
    for (_, run), row_key, col_key in zip(first.iterrows(), row_of, col_of, strict=True):
        ax = axes[row_keys.index(row_key)][col_levels.index(col_key)]
        ax.set_axis_on()
        net, data = load_trained(run, tracking_uri)
        title = f"{row_key} | {label(factors[-1])}: {col_key}"
        draw_decision_boundary(ax, net, data, title=title, resolution=120, legend=False)
        ax.set(xlabel="", ylabel="")
        ax.title.set_fontsize(8)
        handles = legend_handles(max(handles_classes, data.n_classes), data.has_test)
        handles_classes = max(handles_classes, data.n_classes)
    fig.legend(handles=handles, loc="outside lower center", ncols=len(handles), fontsize=8)
    return fig
