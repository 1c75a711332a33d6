"""Bulk metric inserts into a SQL store leave exactly what ``log_batch`` leaves: the
histories, the latest values (MLflow's rule), NaN and infinities; a batch sent again
stores nothing twice."""

import math

import pytest
from mlflow.entities import Metric
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from src.runs.metric_store import log_metrics


def _points(now: int) -> list[Metric]:
    points = [Metric("loss", 1.0 / step, now + step, step) for step in range(1, 1500)]  # over one log_batch
    points += [Metric("odd", math.nan, now, 1), Metric("odd", math.inf, now, 2), Metric("odd", -math.inf, now, 3)]
    points += [Metric("late", 2.0, now + 5, 7), Metric("late", 1.0, now + 9, 7), Metric("late", 3.0, now, 3)]
    return points


def _stored(client: MlflowClient, run_id: str) -> tuple[dict, dict]:
    run = client.get_run(run_id)
    histories = {
        key: sorted((m.step, m.timestamp, repr(m.value)) for m in client.get_metric_history(run_id, key))
        for key in ("loss", "odd", "late")
    }
    return histories, {key: repr(value) for key, value in run.data.metrics.items()}


def test_a_bulk_insert_stores_what_log_batch_stores(tracking_uri):
    client = MlflowClient(tracking_uri)
    experiment = client.create_experiment("bulk")
    bulk, batched = (client.create_run(experiment).info.run_id for _ in range(2))
    log_metrics(client, bulk, _points(1000))
    for start in range(0, len(_points(1000)), 1000):
        client.log_batch(batched, metrics=_points(1000)[start : start + 1000])
    assert _stored(client, bulk) == _stored(client, batched)
    assert len(client.get_metric_history(bulk, "loss")) == 1499
    assert client.get_run(bulk).data.metrics["late"] == 1.0  # step 7, the later timestamp

    log_metrics(client, bulk, _points(1000)[:10] + [Metric("loss", 0.5, 99_999, 5000)])  # sent again, plus one new
    assert len(client.get_metric_history(bulk, "loss")) == 1500
    assert client.get_run(bulk).data.metrics["loss"] == 0.5


def test_a_finished_or_missing_run_takes_no_points(tracking_uri):
    client = MlflowClient(tracking_uri)
    run_id = client.create_run(client.create_experiment("bulk")).info.run_id
    client.delete_run(run_id)
    with pytest.raises(MlflowException):
        log_metrics(client, run_id, _points(1000))
    with pytest.raises(MlflowException):
        log_metrics(client, "0" * 32, _points(1000))
