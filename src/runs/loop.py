"""The training loop: full-batch, mini-batch or per-sample updates, early stopping at a
loss threshold, and detection of divergence (a non-finite loss).

``fit`` trains an ``MLP`` in place. Inputs are (n, 2), labels (n,); targets are encoded
once per run (``src.engine.encoding``).

Per-epoch metrics describe the parameters at the end of the epoch, after its updates:
``train_loss`` is the objective on the whole training set and ``train_accuracy`` the
fraction of training points classified correctly. A full-batch epoch gets them for
free: the forward pass that computes the next update's gradient evaluates the weights
the epoch ended with (one extra pass at the start evaluates the initial weights). A
mini-batch epoch evaluates the training set once more after its last update, and also
records ``train_loss_running``, the mean of its batch losses, each taken before its
update (weighted by batch size). ``test_loss``/``test_accuracy`` evaluate the same
parameters on the test split.

Early stopping: the first epoch whose ``train_loss`` is below ``loss_threshold`` starts
a watch of ``threshold_patience`` more epochs; if the loss stays below the threshold
throughout, training stops and ``epochs_to_threshold`` is that first epoch. A loss that
rises above the threshold again cancels the watch (the run is then unstable at the
threshold if it never settles: ``first_below_threshold`` is set, ``epochs_to_threshold``
is not). A run whose budget ends during a watch counts as reached, as it ended below.

Training snapshots (``src.runs.snapshots``): with ``snapshot_at`` epochs, the result's
``snapshots`` hold copies of the parameters and the last gradient at each of them
(epoch 0: the initial weights) and at the epoch training stopped.

An epoch makes ``updates_per_epoch = ceil(n / batch size)`` updates and sees ``n``
examples, so updates and examples seen are those multiples of the epochs.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field

import numpy as np

from src.engine.encoding import count_correct, encode_targets, predicted_classes
from src.engine.losses import Loss
from src.engine.network import MLP
from src.engine.objective import Objective
from src.engine.optimizers import Optimizer
from src.engine.stacked import StackedMLP
from src.runs.contract import TEST_ACCURACY, TEST_LOSS, TRAIN_ACCURACY, TRAIN_LOSS, TRAIN_LOSS_RUNNING
from src.runs.datasets import Dataset
from src.runs.interrupts import deferred, raise_if_received
from src.runs.snapshots import Snapshots


def evaluate(net: MLP, objective: Objective, x: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """``(objective, accuracy)`` of the current parameters on ``x`` (n, n_in), labels (n,)."""
    x = x.astype(net.dtype, copy=False)
    value, output = objective.value(net, x, encode_targets(labels, net.sizes[-1], net.dtype))
    return value, count_correct(output, labels) / len(labels)


@dataclass
class TrainResult:
    """What a training run produced. ``history`` maps metric name -> one value per epoch run."""

    history: dict[str, list[float]] = field(default_factory=dict)
    epochs_run: int = 0
    epochs_to_threshold: int | None = None
    #: The first epoch whose loss was below the threshold, stable or not.
    first_below_threshold: int | None = None
    diverged: bool = False
    seconds: float = 0.0
    updates_per_epoch: int = 1
    examples_per_epoch: int = 0
    snapshots: Snapshots = field(default_factory=Snapshots)


EpochCallback = Callable[[int, dict[str, float]], None]


class ThresholdWatch:
    """The early-stopping rule of the module docstring, for one network."""

    def __init__(self, threshold: float | None, patience: int):
        self.threshold, self.patience = threshold, patience
        self.below_since: int | None = None  # first epoch of the current run of epochs below
        self.first_below: int | None = None

    def stop(self, epoch: int, loss: float) -> bool:
        """Record epoch ``epoch``'s loss; True when training should stop."""
        if self.threshold is None:
            return False
        if not loss < self.threshold:
            self.below_since = None
            return False
        if self.below_since is None:
            self.below_since = epoch
        if self.first_below is None:
            self.first_below = epoch
        return epoch - self.below_since >= self.patience


def fit(
    net: MLP,
    optimizer: Optimizer,
    objective: Objective,
    data: Dataset,
    epochs: int,
    rng: np.random.Generator,
    batch_size: int | None = None,
    shuffle: bool = True,
    loss_threshold: float | None = None,
    threshold_patience: int = 0,
    on_epoch: EpochCallback | None = None,
    snapshot_at: Collection[int] = (),
) -> TrainResult:
    """Train ``net`` in place for up to ``epochs`` epochs.

    ``batch_size``: None for full-batch updates, 1 for per-sample updates, otherwise the
    mini-batch size; with ``shuffle`` the sample order is redrawn from ``rng`` every epoch.
    Training stops early at the loss threshold (see the module docstring) or when a loss
    stops being finite (``diverged``): a non-finite batch loss is not applied, a
    non-finite end-of-epoch loss is not recorded, and the parameters stay as they were
    then. ``on_epoch(epoch, metrics)`` is called after every recorded epoch (1-based).
    ``snapshot_at``: the epochs of the training snapshots (see the module docstring).
    """
    x = data.x_train.astype(net.dtype, copy=False)
    labels = data.y_train
    targets = encode_targets(labels, net.sizes[-1], net.dtype)
    x_test = data.x_test.astype(net.dtype, copy=False)
    n = len(labels)
    step = n if batch_size is None else min(batch_size, n)
    snapshots = Snapshots.at(snapshot_at)
    result = TrainResult(updates_per_epoch=-(-n // step), examples_per_epoch=n, snapshots=snapshots)
    watch = ThresholdWatch(loss_threshold, threshold_patience)
    start = time.perf_counter()

    history, has_test, running = result.history, data.has_test, None
    with np.errstate(over="ignore", invalid="ignore"):
        if step == n:  # the initial weights' loss and the first update's gradient
            train_loss, output = objective.value_and_gradient(net, x, targets)
            result.diverged = not math.isfinite(train_loss)
        snapshots.take(0, net.params, net.grads)
        for epoch in range(1, epochs + 1):
            if result.diverged:
                break
            if step == n:  # one update; the next gradient's forward pass evaluates it
                optimizer.step()
                train_loss, output = objective.value_and_gradient(net, x, targets)
            else:
                order = rng.permutation(n) if shuffle else None
                loss_sum = 0.0
                for begin in range(0, n, step):
                    if order is None:
                        xb, yb = x[begin : begin + step], targets[begin : begin + step]
                    else:
                        idx = order[begin : begin + step]
                        xb, yb = x[idx], targets[idx]
                    batch_loss, _ = objective.value_and_gradient(net, xb, yb)
                    if not math.isfinite(batch_loss):
                        result.diverged = True
                        break
                    optimizer.step()
                    loss_sum += batch_loss * len(yb)
                if result.diverged:
                    break
                running = loss_sum / n
                train_loss, output = objective.value(net, x, targets)
            if not math.isfinite(train_loss):
                result.diverged = True
                break
            metrics = {TRAIN_LOSS: train_loss, TRAIN_ACCURACY: count_correct(output, labels) / n}
            if running is not None:
                metrics[TRAIN_LOSS_RUNNING] = running
            if has_test:
                metrics[TEST_LOSS], metrics[TEST_ACCURACY] = evaluate(net, objective, x_test, data.y_test)
            if not history:
                history.update((name, []) for name in metrics)
            for name, value in metrics.items():
                history[name].append(value)
            result.epochs_run = epoch
            snapshots.take(epoch, net.params, net.grads)
            raise_if_received()
            if on_epoch is not None:
                on_epoch(epoch, metrics)
            if watch.stop(epoch, train_loss):
                break

    result.first_below_threshold = watch.first_below
    result.epochs_to_threshold = None if result.diverged else watch.below_since
    result.seconds = time.perf_counter() - start
    if not result.diverged:
        snapshots.close(result.epochs_run, net.params, net.grads)
    return result


@dataclass
class StackResult:
    """What one network of a stack produced: its ``TrainResult`` (``seconds`` is the stack's
    wall time shared evenly), its final parameters and the wall-clock time of each epoch."""

    result: TrainResult
    params: np.ndarray
    epoch_times: np.ndarray  # seconds since the epoch, one per epoch run
    interrupted: bool = False  #: the stack stopped at Ctrl-C or SIGTERM (``src.runs.interrupts``)


def fit_stacked(
    stack: StackedMLP,
    optimizer: Optimizer,
    loss: Loss,
    datasets: list[Dataset],
    epochs: int,
    loss_threshold: float | None = None,
    threshold_patience: int = 0,
    snapshot_at: Collection[int] = (),
) -> list[StackResult]:
    """Full-batch training of every network of ``stack`` on its own dataset, as ``fit``
    trains one network alone: each network keeps its history up to its own early stop
    (threshold reached, or a non-finite loss) and its parameters as they were then.
    A network that stops leaves the stack (``StackedMLP.subset``, with its optimizer's
    rows: ``Optimizer.select``), so that the others' epochs cost what their number
    costs. Training goes on until every network has stopped, or until an interrupt
    (``KeyboardInterrupt``): then every network keeps the epochs it completed, and its
    result says ``interrupted``. ``snapshot_at``: as for ``fit``."""
    m, n = stack.size, len(datasets[0].y_train)
    x = np.stack([d.x_train.astype(stack.dtype, copy=False) for d in datasets])
    labels = np.stack([d.y_train for d in datasets])
    targets = np.stack([encode_targets(d.y_train, stack.sizes[-1], stack.dtype) for d in datasets])
    # Per network, by its index among the m: the tables, its final parameters and snapshots ...
    losses, correct, times = np.empty((epochs, m)), np.empty((epochs, m), dtype=np.int64), np.empty(epochs)
    final, final_grads = stack.params.copy(), stack.grads.copy()
    snapshots = [Snapshots.at(snapshot_at) for _ in range(m)]
    record = np.zeros((4, m), dtype=np.int64)  # epochs run, below since, first below, diverged
    # ... and per network still in the stack (``rows``: their indices among the m)
    rows, columns = np.arange(m), slice(None)
    epochs_run = np.zeros(m, dtype=np.int64)
    below_since, first_below = np.zeros(m, dtype=np.int64), np.zeros(m, dtype=np.int64)  # 0: none
    wanted = frozenset(snapshot_at)
    start = time.perf_counter()
    done, interrupted = 0, False  # the last epoch completed
    watching = False  # whether a network was below the threshold at the last epoch
    with np.errstate(over="ignore", invalid="ignore"):
        values, output = stack.loss_and_gradient(x, targets, loss)  # the initial weights
        labels = labels.astype(predicted_classes(output).dtype)  # bool for one output unit
        hits, counts = np.empty(labels.shape, dtype=bool), np.empty(m, dtype=np.int64)
        diverged = ~np.isfinite(values)
        active = ~diverged
        for j in range(m):
            snapshots[j].take(0, stack.params[j], stack.grads[j])
        try:
            for epoch in range(1, epochs + 1):
                if not active.all():  # the networks that stopped leave the stack
                    with deferred():
                        gone, keep = np.flatnonzero(~active), np.flatnonzero(active)
                        record[:, rows[gone]] = epochs_run[gone], below_since[gone], first_below[gone], diverged[gone]
                        rows = columns = rows[keep]
                        stack = stack.subset(keep)
                        optimizer = optimizer.select(keep, stack.params, stack.grads)
                        per_network = (x, targets, labels, hits, counts, active, diverged, epochs_run)
                        x, targets, labels, hits, counts, active, diverged, epochs_run = (a[keep] for a in per_network)
                        below_since, first_below = below_since[keep], first_below[keep]
                    if not len(keep):
                        break
                optimizer.step()
                values, output = stack.loss_and_gradient(x, targets, loss)
                finite = np.isfinite(values)
                if not finite.all():
                    failing = active & ~finite
                    diverged |= failing
                    final[rows[failing]] = stack.params[failing]
                    epochs_run[failing] = epoch - 1
                    active &= ~failing
                if epoch in wanted:
                    for j in np.flatnonzero(active):
                        snapshots[rows[j]].take(epoch, stack.params[j], stack.grads[j])
                losses[epoch - 1, columns] = values
                np.add.reduce(np.equal(predicted_classes(output), labels, out=hits), axis=1, out=counts)
                correct[epoch - 1, columns] = counts
                times[epoch - 1] = time.time()
                if loss_threshold is not None:
                    below = active & (values < loss_threshold)
                    if watching or below.any():  # else no network's record changes
                        kept = np.where(active, 0, below_since)  # a stopped network keeps its record
                        below_since = np.where(below, np.where(below_since > 0, below_since, epoch), kept)
                        first_below = np.where(below & (first_below == 0), epoch, first_below)
                        stopping = below & (epoch - below_since >= threshold_patience)
                        if stopping.any():
                            final[rows[stopping]] = stack.params[stopping]
                            final_grads[rows[stopping]] = stack.grads[stopping]
                            epochs_run[stopping] = epoch
                            active &= ~stopping
                        watching = bool(below.any())
                done = epoch
                raise_if_received()
        except KeyboardInterrupt:
            interrupted = True
    final[rows[active]], final_grads[rows[active]] = stack.params[active], stack.grads[active]
    epochs_run[active] = done
    record[:, rows] = epochs_run, below_since, first_below, diverged
    seconds = (time.perf_counter() - start) / m
    accuracies = correct[:done] / n
    results = []
    for j, (run, since, first, failed) in enumerate(record.T.tolist()):
        if not (failed or interrupted):  # an interrupt may come between an update and its loss
            snapshots[j].close(run, final[j], final_grads[j])
        history = {TRAIN_LOSS: losses[:run, j].tolist(), TRAIN_ACCURACY: accuracies[:run, j].tolist()}
        result = TrainResult(
            history,
            run,
            epochs_to_threshold=since if since and not failed else None,
            first_below_threshold=first or None,
            diverged=bool(failed),
            seconds=seconds,
            updates_per_epoch=1,
            examples_per_epoch=n,
            snapshots=snapshots[j],
        )
        results.append(StackResult(result, final[j], times[:run].copy(), interrupted))
    return results
