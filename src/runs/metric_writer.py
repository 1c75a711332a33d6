"""Per-epoch metrics to MLflow from a background thread, so logging never blocks training.

The training loop calls ``MetricWriter.add(epoch, metrics)`` after every epoch: a
comparison, a timestamp and a list append, no MLflow call. A daemon thread sends the
pending points every ``FLUSH_SECONDS`` (``src.runs.metric_store``: one insert into a
SQL store, requests of ``MAX_METRICS_PER_BATCH`` points to a server), so the UI shows a
long run's curves while it trains, each point with the wall-clock time of its epoch. A
point leaves the queue only once the store has accepted it. ``close()`` stops the thread
and sends what is left; it is called however the run ends. A store that stops answering
is retried, on every tick and then by ``close()``, until it has failed for ``outage_seconds``
(``tracking.outage_wait``): then ``close()`` gives up and returns False, the points
still in ``pending``. Every epoch added is also kept in ``points`` (the run's local
history, ``src.runs.epoch_log``, written by ``src.runs.job_dir``), whatever the store
did; ``add_epochs`` adds a stacked run's epochs there as columns, at once.

Resolution policy: MLflow's metric history gets every epoch up to
``FULL_RESOLUTION_EPOCHS``, then every ``stride``-th epoch, with ``stride`` chosen from
``trainer.epochs`` so that at most about ``MAX_POINTS_PER_METRIC`` points per metric
reach the store (MLflow's UI samples about 320 points per chart and its server returns
at most 2 500 per request; each point costs the store time to insert),
plus always the first and the last epoch run (the threshold epoch, when training
stopped there). Every epoch at full resolution is in the run's
``history.parquet``, which the loaders read.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Mapping, Sequence

import numpy as np
from mlflow.entities import Metric
from mlflow.tracking import MlflowClient

from src.runs.epoch_log import EpochLog
from src.runs.metric_store import log_metrics
from src.runs.store import RETRY_SECONDS

log = logging.getLogger(__name__)
FLUSH_SECONDS = 1.0
FULL_RESOLUTION_EPOCHS = 250
MAX_POINTS_PER_METRIC = 500


def resolution_stride(max_epochs: int) -> int:
    """Every how many epochs a point is sent once past ``FULL_RESOLUTION_EPOCHS``."""
    beyond = max_epochs - FULL_RESOLUTION_EPOCHS
    return max(1, math.ceil(beyond / (MAX_POINTS_PER_METRIC - FULL_RESOLUTION_EPOCHS)))


class MetricWriter:
    """Queues epochs of one run and sends them to the store from a background thread."""

    def __init__(
        self,
        client: MlflowClient,
        run_id: str,
        max_epochs: int,
        *,
        outage_seconds: float,
        flush_seconds: float = FLUSH_SECONDS,
    ):
        self.client = client
        self.run_id = run_id
        self.stride = resolution_stride(max_epochs)
        self.flush_seconds = flush_seconds
        self.outage_seconds = outage_seconds
        #: ``(epoch, timestamp in ms, metrics)`` of every epoch added.
        self.points = EpochLog()
        #: The points the policy sends that the store has not accepted yet.
        self.pending: list[tuple[int, int, Mapping[str, float]]] = []
        self.sent_points = 0
        #: ``time.monotonic()`` of the first failure of the current outage (None: none).
        self.failing_since: float | None = None
        self._last: tuple[int, int, Mapping[str, float]] | None = None
        self._last_queued = 0
        self._send_lock = threading.Lock()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"metrics-{run_id[:8]}", daemon=True)
        self._thread.start()

    def add(self, epoch: int, metrics: Mapping[str, float], timestamp: float | None = None) -> None:
        """Record one epoch (called from the training loop; never blocks on the store).
        ``timestamp``: when the epoch ran, in seconds since the epoch (default: now)."""
        point = (epoch, round((time.time() if timestamp is None else timestamp) * 1000), metrics)
        self.points.append(point)
        self._last = point
        if self._sends(epoch):
            self.pending.append(point)
            self._last_queued = epoch

    def add_epochs(self, history: Mapping[str, Sequence[float]], timestamps: Sequence[float]) -> None:
        """Record the next ``len(timestamps)`` epochs at once, as ``add`` would one by one
        (a run that trained elsewhere, in a stack): ``history`` maps each metric to its
        values per epoch, ``timestamps`` are when the epochs ran, in seconds since the epoch."""
        stamps = np.rint(np.asarray(timestamps, dtype=np.float64) * 1000).astype(np.int64).tolist()
        if not stamps:
            return
        first = len(self.points) + 1
        block = self.points.extend_columns(first, stamps, history)
        last = first + len(stamps) - 1
        queued = [block.point(epoch) for epoch in self._sent_epochs(first, last)]
        self._last = block.point(last)
        if queued:
            self.pending.extend(queued)
            self._last_queued = queued[-1][0]

    def _sends(self, epoch: int) -> bool:
        """Whether the resolution policy sends ``epoch`` (the last epoch run is added on close)."""
        return epoch <= FULL_RESOLUTION_EPOCHS or epoch % self.stride == 0

    def _sent_epochs(self, first: int, last: int) -> list[int]:
        """The epochs from ``first`` to ``last`` that ``_sends``, without asking it of each."""
        full = list(range(first, min(last, FULL_RESOLUTION_EPOCHS) + 1))
        start = max(first, FULL_RESOLUTION_EPOCHS + 1)
        return full + list(range(-(-start // self.stride) * self.stride, last + 1, self.stride))

    def _loop(self) -> None:
        while not self._stopped.wait(self.flush_seconds):
            self._attempt()

    def _attempt(self) -> bool:
        """Send the pending points; on failure keep them and note when the outage began."""
        try:
            self.send()
        except Exception as err:  # the store does not answer: keep the points, retry later
            if self.failing_since is None:
                self.failing_since = time.monotonic()
                log.warning("the tracking store did not take run %s's metrics (%s); retrying", self.run_id, err)
            return False
        self.failing_since = None
        return True

    def send(self) -> None:
        """Send every pending point; points leave the queue only once all are stored
        (a store that failed part-way is sent them again: what it holds is skipped)."""
        with self._send_lock:
            taken = len(self.pending)
            if not taken:
                return
            batch = [
                Metric(key, float(value), timestamp, epoch)
                for epoch, timestamp, metrics in self.pending[:taken]
                for key, value in metrics.items()
            ]
            log_metrics(self.client, self.run_id, batch)
            del self.pending[:taken]
            self.sent_points += len(batch)

    def close(self) -> bool:
        """Stop the thread, queue the last epoch run if the policy skipped it, send the
        rest, retrying a store that fails until it has failed for ``outage_seconds``.
        True when the store holds every point the policy sends."""
        self._stopped.set()
        self._thread.join()
        if self._last is not None and self._last[0] != self._last_queued:
            self.pending.append(self._last)
            self._last_queued = self._last[0]
        while not self._attempt():
            if time.monotonic() - self.failing_since >= self.outage_seconds:
                return False
            time.sleep(RETRY_SECONDS)
        return True
