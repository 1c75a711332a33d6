"""A sweep's parent run as its report, written when the sweep ends (or fails, with what
finished), and the console's closing table.

From the sweep's child runs in the store the parent gets:

* params: each swept key with the values its children took (``optimizer.lr = 0.01, 0.1``);
* metrics: ``jobs_finished``, ``jobs_failed``, ``jobs_diverged``, ``jobs_reached_threshold``;
* artifacts: ``sweep_summary.csv``, one row per child (name, status, swept values and
  summary metrics), and ``sweep_learning_curves.png``, every child's ``train_loss``
  from its metric history, one colour per setting (the swept values but the seed; the
  median over seeds with its range when seeds are swept).

The closing table ranks the settings, best first: by the median epochs to the loss
threshold over the seeds, a run that did not get there counting as infinite (so a setting
where few seeds arrived cannot win; "not reached" when most did not), then by the median
final training loss. It ends
with the ``mlflow ui`` command and the parent run's address.
"""

from __future__ import annotations

import csv
import math
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from src.runs import contract as c
from src.runs.metric_store import metric_histories
from src.runs.tracking import RunArtifacts, param_name, search_all
from src.runs.tuning import median

if TYPE_CHECKING:
    import numpy as np
    from mlflow.entities import Run
    from mlflow.tracking import MlflowClient

SUMMARY_FILE = "sweep_summary.csv"
CURVES_FILE = "sweep_learning_curves.png"
HEATMAP_FILE = "sweep_heatmap.png"
#: Summary metrics in the summary table, in this order.
COLUMNS = (c.EPOCHS_RUN, c.EPOCHS_TO_THRESHOLD, c.FINAL_TRAIN_LOSS, c.FINAL_TRAIN_ACCURACY, c.FINAL_TEST_ACCURACY)


def children(client: MlflowClient, experiment_id: str, parent_run_id: str) -> list[Run]:
    """Every child run of the sweep, in job order."""
    found = search_all(client, experiment_id, f"tags.`{c.TAG_PARENT_RUN}` = '{parent_run_id}'")
    return sorted(found, key=lambda run: int(run.data.tags.get(c.TAG_JOB_NUM, 0)))


def setting_of(run: Run, swept: list[str]) -> str:
    """The child's swept values but the seed, e.g. ``optimizer=adam lr=0.1`` (or ``all``)."""
    parts = [
        f"{key.rsplit('.', 1)[-1]}={run.data.params.get(param_name(key), '?')}" for key in swept if key != c.PARAM_SEED
    ]
    return " ".join(parts) or "all"


def write_report(client: MlflowClient, experiment_id: str, parent_run_id: str, swept: list[str]) -> str:
    """Log the report on the parent (its figures drawn by this process's figure worker
    when it has one, ``src.runs.figure_worker``, uploaded when it closes); return the
    closing table for the console."""
    from mlflow.entities import Metric, Param

    from src.runs import figure_worker

    runs = children(client, experiment_id, parent_run_id)
    params = []
    for key in swept:
        values = list(dict.fromkeys(run.data.params.get(param_name(key), "?") for run in runs))
        params.append(Param(key, ", ".join(values)[:6000]))
    counts = {
        "jobs_finished": sum(run.info.status == "FINISHED" for run in runs),
        "jobs_failed": sum(run.info.status in ("FAILED", "KILLED") for run in runs),
        "jobs_diverged": sum(run.data.tags.get(c.TAG_DIVERGED) == "true" for run in runs),
        "jobs_reached_threshold": sum(c.EPOCHS_TO_THRESHOLD in run.data.metrics for run in runs),
    }
    now = int(runs[-1].info.end_time or runs[-1].info.start_time) if runs else 0
    client.log_batch(parent_run_id, metrics=[Metric(k, v, now, 0) for k, v in counts.items()], params=params)
    artifacts = RunArtifacts(client, parent_run_id)
    with tempfile.TemporaryDirectory() as tmp:
        _write_summary(Path(tmp) / SUMMARY_FILE, runs, swept)
        artifacts.upload(tmp)
    if runs:
        numeric = numeric_axes(runs, swept)
        figures = SweepFigures(_curves(client, runs, swept), _heatmap(runs, *numeric) if len(numeric) == 2 else None)
        worker = figure_worker.running()
        if worker is not None:
            worker.submit(artifacts, figures)
        else:
            with tempfile.TemporaryDirectory() as tmp:
                figures.draw(Path(tmp))
                artifacts.upload(tmp)
    return ranking(runs, swept)


def _write_summary(path: Path, runs: list[Run], swept: list[str]) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["run_name", "status", *swept, c.TAG_DIVERGED, *COLUMNS])
        for run in runs:
            writer.writerow(
                [
                    run.info.run_name,
                    run.info.status,
                    *(run.data.params.get(param_name(key), "") for key in swept),
                    run.data.tags.get(c.TAG_DIVERGED, ""),
                    *(run.data.metrics.get(column, "") for column in COLUMNS),
                ]
            )


def ranking(runs: list[Run], swept: list[str]) -> str:
    """The closing table: per setting, runs, reached, diverged, failed, warned (tagged
    ``unstable`` or ``overfitting``), the median epochs to the threshold (never = inf) and
    the median final training loss, best first."""
    groups: dict[str, list[Run]] = {}
    for run in runs:
        groups.setdefault(setting_of(run, swept), []).append(run)
    rows = []
    for setting, members in groups.items():
        epochs = [run.data.metrics.get(c.EPOCHS_TO_THRESHOLD, math.inf) for run in members]
        losses = [run.data.metrics.get(c.FINAL_TRAIN_LOSS, math.inf) for run in members]
        losses = [loss if math.isfinite(loss) else math.inf for loss in losses]
        rows.append(
            (
                median(epochs),
                median(losses),
                setting,
                len(members),
                sum(math.isfinite(e) for e in epochs),
                sum(run.data.tags.get(c.TAG_DIVERGED) == "true" for run in members),
                sum(run.info.status != "FINISHED" for run in members),
                sum(
                    any(run.data.tags.get(t) == "true" for t in (c.TAG_UNSTABLE, c.TAG_OVERFITTING)) for run in members
                ),
            )
        )
    rows.sort(key=lambda row: (row[0], row[1]))
    width = max([len("setting"), *(len(row[2]) for row in rows)])
    header = "runs  reached  diverged  failed  warned  median epochs  median final loss"
    lines = [f"{'rank':>4}  {'setting':<{width}}  {header}"]
    for rank, (epochs, loss, setting, n, reached, diverged, failed, warned) in enumerate(rows, start=1):
        shown = "not reached" if not math.isfinite(epochs) else f"{epochs:.0f}"
        counts = f"{n:>4}  {reached:>7}  {diverged:>8}  {failed:>6}  {warned:>6}"
        lines.append(f"{rank:>4}  {setting:<{width}}  {counts}  {shown:>13}  {loss:>17.4g}")
    return "\n".join(lines)


#: A setting's curve: (setting, logged epochs, its runs' ``train_loss`` at them (runs, epochs), NaN where missing).
Curve = tuple[str, list[int], "np.ndarray"]


def _curves(client: MlflowClient, runs: list[Run], swept: list[str]) -> list[Curve]:
    """Every setting's children's ``train_loss`` histories, from the store."""
    import numpy as np

    groups: dict[str, list[Run]] = {}
    for run in runs:
        groups.setdefault(setting_of(run, swept), []).append(run)
    points = metric_histories(client, [run.info.run_id for run in runs], c.TRAIN_LOSS)
    curves = []
    for setting, members in groups.items():
        histories = [dict(points[run.info.run_id]) for run in members if points[run.info.run_id]]
        steps = sorted(set().union(*histories))
        curves.append((setting, steps, np.array([[h.get(step, np.nan) for step in steps] for h in histories])))
    return curves


@dataclass
class SweepFigures:
    """The parent's figures, as plain data (drawn in the figure worker, or in place)."""

    curves: list[Curve]
    #: (rows key, columns key, row values, column values, median per cell, whether the
    #: cells are epochs to the threshold), or None: no heatmap
    heatmap: tuple | None = None

    def draw(self, out_dir: Path) -> None:
        _draw_curves(self.curves).savefig(out_dir / CURVES_FILE, dpi=100)
        if self.heatmap is not None:
            _draw_heatmap(*self.heatmap).savefig(out_dir / HEATMAP_FILE, dpi=100)


def _draw_curves(curves: list[Curve]):
    """Every child's ``train_loss`` (its metric history), one colour per setting; with
    seeds swept, the median over seeds at each logged epoch and the band of their range."""
    import numpy as np
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 5))
    fig.subplots_adjust(left=0.1, right=0.97, bottom=0.1, top=0.93)
    ax = fig.subplots()
    styles = ["-", "--", ":", "-."]
    for i, (setting, steps, table) in enumerate(curves):
        if not len(table):
            continue
        style = {"color": f"C{i % 10}", "linestyle": styles[(i // 10) % len(styles)]}
        if len(table) > 1:
            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN column: a step some runs lack
                ax.plot(steps, np.nanmedian(table, axis=0), label=f"{setting} ({len(table)} runs)", **style)
                ax.fill_between(
                    steps, np.nanmin(table, axis=0), np.nanmax(table, axis=0), color=style["color"], alpha=0.15
                )
        else:
            ax.plot(steps, table[0], label=setting, **style)
    ax.set(xscale="log", yscale="log", xlabel="epoch", ylabel="training loss", title="Learning curves of the sweep")
    ax.legend(fontsize=7, ncols=2 if len(curves) > 8 else 1)
    return fig


def numeric_axes(runs: list[Run], swept: list[str]) -> list[str]:
    """The swept keys but the seed whose values are all numbers."""

    def numeric(value: str) -> bool:
        try:
            float(value)
        except ValueError:
            return False
        return True

    return [
        key
        for key in swept
        if key != c.PARAM_SEED and all(numeric(run.data.params.get(param_name(key), "")) for run in runs)
    ]


def _heatmap(runs: list[Run], rows: str, columns: str) -> tuple:
    """``SweepFigures.heatmap``: the median epochs to the threshold (or final training
    loss) per pair of values."""
    import numpy as np

    by_threshold = any(run.data.params.get("trainer.loss_threshold") not in (None, "None") for run in runs)
    metric = c.EPOCHS_TO_THRESHOLD if by_threshold else c.FINAL_TRAIN_LOSS
    row_values = sorted({float(run.data.params[param_name(rows)]) for run in runs})
    column_values = sorted({float(run.data.params[param_name(columns)]) for run in runs})
    table = np.full((len(row_values), len(column_values)), np.nan)
    for i, row in enumerate(row_values):
        for j, column in enumerate(column_values):
            cell = [
                run.data.metrics.get(metric, math.inf)
                for run in runs
                if float(run.data.params[param_name(rows)]) == row
                and float(run.data.params[param_name(columns)]) == column
            ]
            if cell:
                table[i, j] = median(cell)
    return rows, columns, row_values, column_values, table, by_threshold


def _draw_heatmap(rows: str, columns: str, row_values: list, column_values: list, table, by_threshold: bool):
    """The heatmap of ``_heatmap``'s table, one cell per pair of values, labelled."""
    import numpy as np
    from matplotlib.figure import Figure

    fig = Figure(figsize=(1.2 * len(column_values) + 3, 0.8 * len(row_values) + 2), layout="constrained")
    ax = fig.subplots()
    shown = np.where(np.isfinite(table), table, np.nan)
    image = ax.imshow(np.log10(shown) if by_threshold else shown, cmap="viridis_r", aspect="auto")
    for (i, j), value in np.ndenumerate(table):
        text = "not reached" if value == math.inf else ("" if np.isnan(value) else f"{value:.3g}")
        box = {"facecolor": "white", "alpha": 0.7, "edgecolor": "none", "pad": 1}
        ax.text(j, i, text, ha="center", va="center", fontsize=8, bbox=box)
    ax.set_xticks(range(len(column_values)), [f"{v:g}" for v in column_values])
    ax.set_yticks(range(len(row_values)), [f"{v:g}" for v in row_values])
    ax.set(xlabel=columns, ylabel=rows)
    what = "median epochs to the loss threshold" if by_threshold else "median final training loss"
    ax.set_title(what + (" (colour: log10)" if by_threshold else ""))
    fig.colorbar(image, ax=ax)
    return fig
