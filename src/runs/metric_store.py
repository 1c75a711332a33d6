"""Metric points into a store: in bulk into an MLflow SQL store, else with ``log_batch``.

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
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mlflow.entities import Metric
    from mlflow.tracking import MlflowClient

#: MLflow accepts at most this many metrics in one ``log_batch`` call.
MAX_METRICS_PER_BATCH = 1000


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
