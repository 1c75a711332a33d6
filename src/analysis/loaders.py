"""Load tracked runs into pandas: the data layer of the analysis notebooks.

* ``load_runs(experiment, sweep=None)``: one row per training run of a sweep, with its
  params (numbers as numbers), summary metrics, status, ``diverged`` and ids.
* ``load_history(runs)``: per-epoch metrics in long format
  ``(run_id, epoch, metric, value)`` joined with the params that vary across the runs.
* ``load_trained(run)``: the trained network and its dataset, rebuilt from the run's
  ``config.yaml`` and ``weights.npz`` (``src.runs.build.load_network``).

Histories come from each run's ``history.parquet`` artifact: read in place when the
artifact store is a local directory (the default sqlite setup), downloaded in parallel
from any other store (e.g. an ``mlflow server``). Runs without that artifact (interrupted
or failed before the end) fall back to MLflow's metric history.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import unquote, urlparse

import mlflow
import numpy as np
import pandas as pd
from mlflow.tracking import MlflowClient

from src.engine.network import MLP
from src.runs import contract as c
from src.runs.build import build_dataset, load_network
from src.runs.config import load_run_config
from src.runs.datasets import Dataset
from src.runs.tracking import resolve_tracking_uri, search_all

DEFAULT_METRICS = (c.TRAIN_LOSS, c.TRAIN_ACCURACY)
RUN_COLUMNS = ["run_id", "run_name", "status", "diverged", "parent_run_id", "start_time", "artifact_uri"]
SWEEP_FILTER = f"tags.{c.TAG_SWEEP} = 'true'"


def _client(tracking_uri: str | None) -> MlflowClient:
    return MlflowClient(resolve_tracking_uri(tracking_uri))


def list_sweeps(experiment: str, tracking_uri: str | None = None) -> pd.DataFrame:
    """The sweeps (parent runs) of an experiment, newest first."""
    client = _client(tracking_uri)
    experiment_id = _experiment_id(client, experiment)
    parents = search_all(client, experiment_id, SWEEP_FILTER, ["attributes.start_time DESC"])
    return pd.DataFrame(
        {
            "parent_run_id": [p.info.run_id for p in parents],
            "sweep_dir": [p.data.tags.get(c.TAG_SWEEP_DIR) for p in parents],
            "status": [p.info.status for p in parents],
            "start_time": pd.to_datetime([p.info.start_time for p in parents], unit="ms"),
            "overrides": [p.data.tags.get(c.TAG_OVERRIDES, "") for p in parents],
            "launcher": [p.data.tags.get(c.TAG_LAUNCHER) for p in parents],
        }
    )


def _experiment_id(client: MlflowClient, experiment: str) -> str:
    found = client.get_experiment_by_name(experiment)
    if found is None:
        names = sorted(e.name for e in client.search_experiments())
        raise ValueError(f"no experiment named {experiment!r} in {client.tracking_uri}; experiments: {names}")
    return found.experiment_id


def _matches_sweep_dir(sweep_dir: str, sweep: str) -> bool:
    """``sweep`` is the directory or its last path components (``"2026-11-22/15-42-19"``,
    ``"15-42-19"``), never a partial component (``"9"`` does not match ``.../15-42-19``)."""
    parts, wanted = Path(sweep_dir).parts, Path(sweep).parts
    return bool(wanted) and parts[-len(wanted) :] == wanted


def _parent_id(client: MlflowClient, experiment_id: str, sweep: str | None) -> str:
    """Resolve ``sweep`` (None: latest; a parent run id; a sweep directory or its tail)."""
    parents = search_all(client, experiment_id, SWEEP_FILTER, ["attributes.start_time DESC"])
    if not parents:
        raise ValueError("the experiment has no sweep; pass sweep='all' to load every run")
    if sweep is None:
        return parents[0].info.run_id
    for parent in parents:
        sweep_dir = parent.data.tags.get(c.TAG_SWEEP_DIR, "")
        if sweep == parent.info.run_id or (sweep_dir and _matches_sweep_dir(sweep_dir, sweep)):
            return parent.info.run_id
    raise ValueError(f"no sweep {sweep!r}; known sweeps: {[p.data.tags.get(c.TAG_SWEEP_DIR) for p in parents]}")


def parse_param(text: str):
    """MLflow param string -> Python value: numbers, booleans, None and lists as such."""
    if text in ("None", "null"):
        return None
    if text in ("True", "False"):
        return text == "True"
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text
    return value if isinstance(value, (int, float, list)) else text


def load_runs(experiment: str, sweep: str | None = None, tracking_uri: str | None = None) -> pd.DataFrame:
    """One row per training run of a sweep of ``experiment``.

    ``sweep``: None for the latest sweep, a parent run id, a sweep directory (or its end,
    e.g. ``"2026-11-22/15-42-19"``), or ``"all"`` for every run of the experiment.
    Columns: ``run_id, run_name, status, diverged, parent_run_id, start_time,
    artifact_uri``, then every param under its dotted name (numeric columns as numbers),
    then every metric (summary metrics such as ``final_train_accuracy`` and
    ``epochs_to_threshold``, NaN where a run has none).
    """
    client = _client(tracking_uri)
    experiment_id = _experiment_id(client, experiment)
    if sweep == "all":
        found = [r for r in search_all(client, experiment_id, "") if r.data.tags.get(c.TAG_SWEEP) != "true"]
    else:
        parent = _parent_id(client, experiment_id, sweep)
        found = search_all(client, experiment_id, f"tags.{c.TAG_PARENT_RUN} = '{parent}'")
    rows = []
    for r in found:
        row = {
            "run_id": r.info.run_id,
            "run_name": r.info.run_name,
            "status": r.info.status,
            "diverged": r.data.tags.get(c.TAG_DIVERGED) == "true",
            "parent_run_id": r.data.tags.get(c.TAG_PARENT_RUN),
            "start_time": pd.to_datetime(r.info.start_time, unit="ms"),
            "artifact_uri": r.info.artifact_uri,
        }
        row.update({key: parse_param(value) for key, value in r.data.params.items()})
        row.update(r.data.metrics)
        rows.append(row)
    frame = pd.DataFrame(rows, columns=None if rows else RUN_COLUMNS)
    for metric in c.SUMMARY_METRICS:
        if metric not in frame.columns:
            frame[metric] = np.nan
    for column in frame.columns.difference(RUN_COLUMNS):
        if frame[column].map(lambda v: v is None or (isinstance(v, (int, float)) and not isinstance(v, bool))).all():
            frame[column] = pd.to_numeric(frame[column])
    return frame.sort_values("start_time", ignore_index=True)


def varying_params(runs: pd.DataFrame) -> list[str]:
    """Param columns (dotted names) whose value differs between the runs."""
    params = [column for column in runs.columns if "." in column and column not in RUN_COLUMNS]
    return [column for column in params if runs[column].map(repr).nunique() > 1]


def _local_path(uri: str) -> Path | None:
    parsed = urlparse(uri)
    if parsed.scheme in ("", "file"):
        return Path(unquote(parsed.path))
    return None


def _read_history(client: MlflowClient, run_id: str, artifact_uri: str, metrics: Sequence[str]) -> pd.DataFrame:
    """Wide history of one run: ``epoch`` plus one column per metric."""
    local = _local_path(artifact_uri)
    try:
        if local is not None:
            table = pd.read_parquet(local / c.HISTORY_FILE)
        else:
            path = mlflow.artifacts.download_artifacts(
                artifact_uri=f"{artifact_uri}/{c.HISTORY_FILE}", tracking_uri=client.tracking_uri
            )
            table = pd.read_parquet(path)
    except (OSError, mlflow.exceptions.MlflowException):
        table = None
    if table is None:
        columns = {}
        for metric in metrics:
            points = client.get_metric_history(run_id, metric)
            columns[metric] = pd.Series({p.step: p.value for p in points}, dtype=float)
        table = pd.DataFrame(columns).rename_axis(c.EPOCH).reset_index()
    return table[[c.EPOCH, *[m for m in metrics if m in table.columns]]]


def load_history(
    runs: pd.DataFrame,
    metrics: Iterable[str] = DEFAULT_METRICS,
    params: Iterable[str] | None = None,
    tracking_uri: str | None = None,
) -> pd.DataFrame:
    """Per-epoch metrics of ``runs`` (a ``load_runs`` frame) in long format.

    Columns: ``run_id, epoch, metric, value`` followed by ``params`` (default:
    ``dataset.name``, ``trainer.seed`` and every other param that varies across ``runs``).
    """
    metrics = list(metrics)
    if params is None:
        params = list(dict.fromkeys(["dataset.name", "trainer.seed", *varying_params(runs)]))
    params = [p for p in params if p in runs.columns]
    client = _client(tracking_uri)
    jobs = list(zip(runs["run_id"], runs["artifact_uri"], strict=True))
    with ThreadPoolExecutor(max_workers=8) as pool:
        tables = list(pool.map(lambda job: _read_history(client, job[0], job[1], metrics), jobs))
    columns = ["run_id", c.EPOCH, "metric", "value"]
    if not tables:
        return pd.DataFrame(columns=columns + params)
    wide = pd.concat([t.assign(run_id=run_id) for (run_id, _), t in zip(jobs, tables, strict=True)], ignore_index=True)
    history = wide.melt(id_vars=["run_id", c.EPOCH], var_name="metric", value_name="value").dropna(subset=["value"])
    history[c.EPOCH] = history[c.EPOCH].astype(int)
    return history.merge(runs[["run_id", *params]], on="run_id", how="left")[columns + params]


def load_trained(run: pd.Series | str, tracking_uri: str | None = None) -> tuple[MLP, Dataset]:
    """The trained network and the dataset of a run (a ``load_runs`` row or a run id)."""
    client = _client(tracking_uri)
    run_id = run if isinstance(run, str) else run["run_id"]
    artifact_uri = client.get_run(run_id).info.artifact_uri
    local = _local_path(artifact_uri)
    if local is None:
        local = Path(mlflow.artifacts.download_artifacts(artifact_uri=artifact_uri, tracking_uri=client.tracking_uri))
    config = load_run_config(local / c.CONFIG_FILE)
    return load_network(config, local / c.WEIGHTS_FILE), build_dataset(config)
