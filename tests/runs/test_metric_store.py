"""Bulk metric inserts into a SQL store leave exactly what ``log_batch`` leaves: the
histories, the latest values (MLflow's rule), NaN and infinities; a batch sent again
stores nothing twice."""

import math

import pytest
from mlflow.entities import Metric
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from src.runs.metric_store import log_metrics, metric_histories


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


def _histories_one_by_one(client: MlflowClient, run_ids: list[str], key: str) -> dict:
    return {run_id: [(m.step, repr(m.value)) for m in client.get_metric_history(run_id, key)] for run_id in run_ids}


def test_histories_read_at_once_are_what_get_metric_history_returns(tracking_uri, monkeypatch):
    client = MlflowClient(tracking_uri)
    experiment = client.create_experiment("histories")
    run_ids = [client.create_run(experiment).info.run_id for _ in range(5)]
    for index, run_id in enumerate(run_ids[:-1]):  # the last run has no points
        log_metrics(client, run_id, _points(1000 * index))
    monkeypatch.setattr("src.runs.metric_store.RUNS_PER_QUERY", 2)  # several queries
    for key in ("loss", "odd", "late"):
        read = metric_histories(client, run_ids, key)
        assert {run_id: [(step, repr(value)) for step, value in points] for run_id, points in read.items()} == (
            _histories_one_by_one(client, run_ids, key)
        )
    assert len(read[run_ids[0]]) == 3 and read[run_ids[-1]] == []
    assert [len(points) for points in metric_histories(client, run_ids, "loss").values()] == [1499] * 4 + [0]


def test_histories_of_a_store_without_sql_come_through_the_client(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    client = MlflowClient((tmp_path / "mlruns").as_uri())
    run_id = client.create_run(client.create_experiment("histories")).info.run_id
    client.log_batch(run_id, metrics=_points(1000)[:20])
    assert metric_histories(client, [run_id], "loss") == {run_id: [(step, 1.0 / step) for step in range(1, 21)]}
