"""Metric points into a store and histories out of it: in bulk with an MLflow SQL store,
else through MLflow's client (``log_batch``, ``get_metric_history``).

``MlflowClient.log_batch`` on a SQL store (sqlite, PostgreSQL) builds one ORM object per
point and flushes them through SQLAlchemy's unit of work: about 75 us a point, a quarter
of a short run's bookkeeping. ``log_metrics`` writes the same rows with one multi-row
``INSERT`` in one transaction (about 15 us a point): the run must exist and be active
(as ``log_batch`` checks), each point becomes a row of MLflow's ``metrics`` table (NaN
stored as 0 with ``is_nan``, infinities clamped, as MLflow sanitizes them), and each
key's row of ``latest_metrics`` becomes the point with the greatest ``(step, timestamp,
value)``, MLflow's rule. A point the store already holds (a batch sent again after an
outage) makes the insert fail as a whole; the batch then goes through ``log_batch``,
which skips what is stored. Any other store (a tracking server) gets ``log_batch``
requests of at most ``MAX_METRICS_PER_BATCH`` points.

``metric_histories`` reads one metric's points of many runs (a sweep's children) with
one query per ``RUNS_PER_QUERY`` runs instead of a ``get_metric_history`` per run, which
builds an ORM object per point (25 ms a run of 500 points): what ``get_metric_history``
returns, in its order (timestamp, step, value), NaN where MLflow stored one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mlflow.entities import Metric
    from mlflow.tracking import MlflowClient

#: MLflow accepts at most this many metrics in one ``log_batch`` call.
MAX_METRICS_PER_BATCH = 1000
#: Runs whose histories one query reads (each run id is a bound parameter).
RUNS_PER_QUERY = 500


def log_metrics(client: MlflowClient, run_id: str, metrics: Sequence[Metric]) -> None:
    """Store ``metrics`` (any number) in run ``run_id``; all or, on failure, none of a bulk insert."""
    if not metrics:
        return
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    store = client._tracking_client.store
    if isinstance(store, SqlAlchemyStore):
        from mlflow.exceptions import MlflowException
        from sqlalchemy.exc import IntegrityError

        try:
            return _insert(store, run_id, metrics)
        except MlflowException as err:  # the store's session wraps the database's errors
            if not isinstance(err.__cause__, IntegrityError):
                raise
            # some points are stored already: log_batch skips those
    for start in range(0, len(metrics), MAX_METRICS_PER_BATCH):
        client.log_batch(run_id, metrics=list(metrics[start : start + MAX_METRICS_PER_BATCH]))


def _insert(store, run_id: str, metrics: Sequence[Metric]) -> None:
    from mlflow.store.tracking.dbmodels.models import SqlLatestMetric, SqlMetric
    from sqlalchemy import insert, select

    rows, latest = [], {}
    for metric in metrics:
        is_nan, value = store.sanitize_metric_value(metric.value)
        row = {
            "run_uuid": run_id,
            "key": metric.key,
            "value": value,
            "timestamp": metric.timestamp,
            "step": metric.step,
            "is_nan": is_nan,
        }
        rows.append(row)
        best = latest.get(metric.key)
        if best is None or _order(row) > _order(best):
            latest[metric.key] = row
    with store.ManagedSessionMaker(read_only=False) as session:
        store._check_run_is_active(store._get_run(run_uuid=run_id, session=session))
        session.execute(insert(SqlMetric.__table__), rows)  # Core: no ORM bookkeeping per row
        stored = session.scalars(
            select(SqlLatestMetric).where(SqlLatestMetric.run_uuid == run_id, SqlLatestMetric.key.in_(list(latest)))
        )
        for old in stored:
            new = latest.pop(old.key)
            if _order(new) > (old.step, old.timestamp, old.value):
                old.value, old.timestamp, old.step, old.is_nan = (
                    new["value"],
                    new["timestamp"],
                    new["step"],
                    new["is_nan"],
                )
        if latest:
            session.execute(insert(SqlLatestMetric.__table__), list(latest.values()))


def _order(row: dict) -> tuple[int, int, float]:
    return row["step"], row["timestamp"], row["value"]


def metric_histories(client: MlflowClient, run_ids: Sequence[str], key: str) -> dict[str, list[tuple[int, float]]]:
    """``{run id: [(step, value), ...]}``: every point of metric ``key`` of each run, in
    ``get_metric_history``'s order (a run without the metric gets an empty list)."""
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    store = client._tracking_client.store
    found: dict[str, list[tuple[int, float]]] = {run_id: [] for run_id in run_ids}
    if not isinstance(store, SqlAlchemyStore):
        for run_id in run_ids:
            found[run_id] = [(m.step, m.value) for m in client.get_metric_history(run_id, key)]
        return found
    from mlflow.store.tracking.dbmodels.models import SqlMetric
    from sqlalchemy import select

    table = SqlMetric.__table__.c
    ids = list(found)
    with store.ManagedSessionMaker() as session:
        for start in range(0, len(ids), RUNS_PER_QUERY):
            rows = session.execute(
                select(table.run_uuid, table.step, table.value, table.is_nan)
                .where(table.key == key, table.run_uuid.in_(ids[start : start + RUNS_PER_QUERY]))
                .order_by(table.run_uuid, table.timestamp, table.step, table.value)
            )
            for run_id, step, value, is_nan in rows:
                found[run_id].append((step, math.nan if is_nan else value))
    return found
