"""``python -m src.runs.upload JOB_DIR [--tracking-uri URI]``: a job directory to a store.

A run whose store stopped answering ends in its job directory (``src.runs.job_dir``).
This command creates the run in the store (default: the one the run was started
against), or completes the one the run began there, with what a live run logs: params,
datasets, the per-epoch points at the writer's resolution policy with their timestamps
(``src.runs.metric_writer``), summary metrics, tags, the artifacts (config, weights,
history, figures: drawn again when missing) and the model; then it closes the run with
the status and end time the job directory recorded. The analysis loaders cannot tell it
from a run logged live. Run again, it sends nothing: the job directory records the
run's id in each store and whether that store holds all of it.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from src.runs import contract as c
from src.runs.config import load_run_config
from src.runs.job_dir import JobDir
from src.runs.store import StoreUnavailable, check_store, one_line
from src.runs.tracking import RunArtifacts, flatten, open_experiment, resolve_tracking_uri

os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
log = logging.getLogger(__name__)


class NotUploadable(ValueError):
    """The directory holds no run that can be uploaded; the message says why."""


def upload(job_dir: str | Path, tracking_uri: str | None = None, wait: float | None = None) -> tuple[str, str, bool]:
    """Send the run of ``job_dir`` to the store at ``tracking_uri`` (None: the store it
    was started against), retrying its points for ``wait`` seconds (None: the run's
    ``tracking.outage_wait``). Returns ``(store, run id, whether anything was sent)``."""
    local = JobDir(Path(job_dir))
    if not local.record_file.exists():
        raise NotUploadable(f"{job_dir}: no {c.JOB_RECORD_FILE}; not the job directory of a tracked run")
    record = local.record()
    if record["status"] == "RUNNING":
        raise NotUploadable(f"{job_dir}: the run has not ended (status RUNNING in {c.JOB_RECORD_FILE})")
    run = load_run_config(local.artifacts / c.CONFIG_FILE)
    uri = resolve_tracking_uri(tracking_uri or record["tracking_uri"])
    entry = record["stores"].get(uri, {})
    if entry.get("complete"):
        return uri, entry["run_id"], False
    check_store(uri, run.tracking.timeout)

    from mlflow.entities import Param, RunTag
    from mlflow.exceptions import MlflowException

    client, experiment_id = open_experiment(uri, record["experiment"])
    try:
        existing = client.get_run(entry["run_id"]) if entry else None
    except MlflowException:  # recorded, but not in this store (any more)
        existing = None
    tags = dict(record["tags"])
    if not _exists(client, tags.get(c.TAG_PARENT_RUN)):
        tags.pop(c.TAG_PARENT_RUN, None)  # a sweep's parent from another store
    if existing is None:
        info = client.create_run(experiment_id, record["start_time"], tags, record["run_name"]).info
        local.stored_in(uri, info.run_id, complete=False)
    else:
        info = existing.info
    run_id, artifacts = info.run_id, RunArtifacts(client, info.run_id, info.artifact_uri)

    from src.runs.build import build_dataset, load_network
    from src.runs.metric_store import log_metrics
    from src.runs.tracked_run import log_dataset_inputs, log_model, summary_metrics

    data = build_dataset(run)
    if existing is None or not existing.data.params:
        client.log_batch(run_id, params=[Param(k, v) for k, v in flatten(run.to_dict()).items()])
    if existing is None or not existing.inputs.dataset_inputs:
        log_dataset_inputs(client, run_id, run, data)
    history = _send_history(client, run_id, local, run, run.tracking.outage_wait if wait is None else wait)
    summary = {**record.get("metrics", {}), **record.get("layer_statistics", {})}
    client.log_batch(run_id, tags=[RunTag(k, v) for k, v in tags.items()])
    log_metrics(client, run_id, summary_metrics(summary, record.get("metrics_time", record["end_time"])))
    finished = record["status"] == "FINISHED"
    weights = local.artifacts / c.WEIGHTS_FILE
    if finished and run.tracking.log_figures and not _has_figures(local):
        from src.runs.figure_worker import FigureJob

        threshold = run.trainer.loss_threshold
        FigureJob(record["run_name"], history, load_network(run, weights), data, threshold).draw(local.figures)
    artifacts.upload(local.artifacts)
    if local.figures.is_dir():
        artifacts.upload(local.figures)
    has_model = existing is not None and c.TAG_MODEL_URI in existing.data.tags
    if finished and run.tracking.log_model and not has_model:
        log_model(client, experiment_id, run_id, local.artifacts, load_network(run, weights), data)
    client.set_terminated(run_id, record["status"], record["end_time"])
    local.stored_in(uri, run_id, complete=True)
    return uri, run_id, True


def _exists(client, run_id: str | None) -> bool:
    from mlflow.exceptions import MlflowException

    if not run_id:
        return False
    try:
        client.get_run(run_id)
    except MlflowException:
        return False
    return True


def _has_figures(local: JobDir) -> bool:
    names = (c.LEARNING_CURVE_FILE, c.DECISION_BOUNDARY_FILE, c.PREDICTION_FILE)
    return all((local.figures / name).exists() or (local.artifacts / name).exists() for name in names)


def _send_history(client, run_id: str, local: JobDir, run, wait: float) -> dict[str, list[float]]:
    """The per-epoch points of ``history.parquet`` through a ``MetricWriter`` (its policy,
    its batches), each with the timestamp it had; returns the history as columns."""
    import pandas as pd

    from src.runs.metric_writer import MetricWriter

    table = pd.read_parquet(local.artifacts / c.HISTORY_FILE)
    names = [column for column in table.columns if column not in (c.EPOCH, c.TIMESTAMP)]
    writer = MetricWriter(
        client, run_id, run.trainer.epochs, outage_seconds=run.tracking.outage_wait, flush_seconds=1e9
    )
    rows = zip(table[c.EPOCH], table[c.TIMESTAMP], *(table[name] for name in names), strict=True)
    for epoch, timestamp, *values in rows:
        writer.add(int(epoch), dict(zip(names, map(float, values), strict=True)), float(timestamp) / 1000)
    if not writer.close():
        raise StoreUnavailable(f"tracking store {client.tracking_uri}: it did not take the run's metrics")
    return {name: table[name].tolist() for name in names}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m src.runs.upload", description=__doc__.splitlines()[0])
    parser.add_argument("job_dir", help="a job's output directory (tag output_dir)")
    parser.add_argument("--tracking-uri", help="the store (default: the one the run was started against)")
    parser.add_argument(
        "--wait", type=float, help="seconds to retry a store that fails (default: tracking.outage_wait)"
    )
    args = parser.parse_args(argv)
    from mlflow.exceptions import MlflowException

    try:
        uri, run_id, sent = upload(args.job_dir, args.tracking_uri, args.wait)
    except (NotUploadable, StoreUnavailable) as err:
        sys.exit(f"error: {err}")
    except MlflowException as err:
        sys.exit(f"error: the store did not take the run of {args.job_dir}: {one_line(err)}")
    print(f"{args.job_dir}: {'uploaded to' if sent else 'already in'} {uri} as run {run_id}")


if __name__ == "__main__":
    main()
