"""The training loop: full-batch, mini-batch or per-sample updates, early stopping at a
loss threshold, and detection of divergence (a non-finite loss).

``fit`` trains an ``MLP`` in place. Inputs are (n, 2), labels (n,); targets are encoded
once per run (``src.engine.encoding``).

Per-epoch metrics are those seen during the epoch: ``train_loss`` is the mean of the
batch losses (each computed before its update, weighted by batch size) and
``train_accuracy`` the fraction of training points classified correctly in those same
forward passes; for full-batch training that is the loss and accuracy of the parameters
at the start of the epoch. ``test_loss``/``test_accuracy`` evaluate the parameters at
the end of the epoch.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from src.engine.encoding import count_correct, encode_targets, predicted_classes
from src.engine.losses import Loss
from src.engine.network import MLP
from src.engine.objective import Objective
from src.engine.optimizers import Optimizer
from src.engine.stacked import StackedMLP
from src.runs.contract import TEST_ACCURACY, TEST_LOSS, TRAIN_ACCURACY, TRAIN_LOSS
from src.runs.datasets import Dataset


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
    diverged: bool = False
    seconds: float = 0.0


EpochCallback = Callable[[int, dict[str, float]], None]


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
    on_epoch: EpochCallback | None = None,
) -> TrainResult:
    """Train ``net`` in place for up to ``epochs`` epochs.

    ``batch_size``: None for full-batch updates, 1 for per-sample updates, otherwise the
    mini-batch size; with ``shuffle`` the sample order is redrawn from ``rng`` every epoch.
    Training stops early when an epoch's ``train_loss`` falls below ``loss_threshold``
    (``epochs_to_threshold`` records that epoch) or when a batch loss stops being finite
    (``diverged``): that batch's update is not applied and the epoch is not recorded,
    but the updates of the epoch's earlier batches (mini-batch training) stay applied.
    ``on_epoch(epoch, metrics)`` is called after every recorded epoch (1-based).
    """
    x = data.x_train.astype(net.dtype, copy=False)
    labels = data.y_train
    targets = encode_targets(labels, net.sizes[-1], net.dtype)
    x_test = data.x_test.astype(net.dtype, copy=False)
    n = len(labels)
    step = n if batch_size is None else min(batch_size, n)
    result = TrainResult()
    start = time.perf_counter()

    with np.errstate(over="ignore", invalid="ignore"):
        for epoch in range(1, epochs + 1):
            if step == n:  # full batch: one update, the epoch's loss is that batch's
                train_loss, output = objective.value_and_gradient(net, x, targets)
                if not math.isfinite(train_loss):
                    result.diverged = True
                    break
                optimizer.step()
                correct = count_correct(output, labels)
            else:
                order = rng.permutation(n) if shuffle else None
                loss_sum, correct = 0.0, 0
                for begin in range(0, n, step):
                    if order is None:
                        xb, yb, lb = (
                            x[begin : begin + step],
                            targets[begin : begin + step],
                            labels[begin : begin + step],
                        )
                    else:
                        idx = order[begin : begin + step]
                        xb, yb, lb = x[idx], targets[idx], labels[idx]
                    batch_loss, output = objective.value_and_gradient(net, xb, yb)
                    if not math.isfinite(batch_loss):
                        result.diverged = True
                        break
                    optimizer.step()
                    loss_sum += batch_loss * len(lb)
                    correct += count_correct(output, lb)
                if result.diverged:
                    break
                train_loss = loss_sum / n

            metrics = {TRAIN_LOSS: train_loss, TRAIN_ACCURACY: correct / n}
            if data.has_test:
                metrics[TEST_LOSS], metrics[TEST_ACCURACY] = evaluate(net, objective, x_test, data.y_test)
            for name, value in metrics.items():
                result.history.setdefault(name, []).append(value)
            result.epochs_run = epoch
            if on_epoch is not None:
                on_epoch(epoch, metrics)
            if loss_threshold is not None and metrics[TRAIN_LOSS] < loss_threshold:
                result.epochs_to_threshold = epoch
                break

    result.seconds = time.perf_counter() - start
    return result


@dataclass
class StackResult:
    """What one network of a stack produced: its ``TrainResult`` (``seconds`` is the stack's
    wall time shared evenly), its final parameters and the wall-clock time of each epoch."""

    result: TrainResult
    params: np.ndarray
    epoch_times: np.ndarray  # seconds since the epoch, one per epoch run


def fit_stacked(
    stack: StackedMLP,
    optimizer: Optimizer,
    loss: Loss,
    datasets: list[Dataset],
    epochs: int,
    loss_threshold: float | None = None,
) -> list[StackResult]:
    """Full-batch training of every network of ``stack`` on its own dataset, as ``fit``
    trains one network alone: each network keeps its history up to its own early stop
    (threshold reached, or a non-finite loss, whose update is not applied) and its
    parameters as they were then. Training goes on until every network has stopped."""
    m, n = stack.size, len(datasets[0].y_train)
    x = np.stack([d.x_train.astype(stack.dtype, copy=False) for d in datasets])
    labels = np.stack([d.y_train for d in datasets])
    targets = np.stack([encode_targets(d.y_train, stack.sizes[-1], stack.dtype) for d in datasets])
    losses, accuracies, times = np.empty((epochs, m)), np.empty((epochs, m)), np.empty(epochs)
    epochs_run = np.zeros(m, dtype=np.int64)
    reached, diverged = np.zeros(m, dtype=bool), np.zeros(m, dtype=bool)
    final = stack.params.copy()
    active = np.ones(m, dtype=bool)
    start = time.perf_counter()
    with np.errstate(over="ignore", invalid="ignore"):
        for epoch in range(1, epochs + 1):
            values, output = stack.loss_and_gradient(x, targets, loss)
            finite = np.isfinite(values)
            if not finite.all():
                failing = active & ~finite
                diverged |= failing
                final[failing] = stack.params[failing]
                epochs_run[failing] = epoch - 1
                active &= ~failing
                if not active.any():
                    break
            optimizer.step()
            losses[epoch - 1] = values
            accuracies[epoch - 1] = np.add.reduce(predicted_classes(output) == labels, axis=1) / n
            times[epoch - 1] = time.time()
            if loss_threshold is not None:
                stopping = active & (values < loss_threshold)
                if stopping.any():
                    reached |= stopping
                    final[stopping] = stack.params[stopping]
                    epochs_run[stopping] = epoch
                    active &= ~stopping
                    if not active.any():
                        break
    final[active] = stack.params[active]
    epochs_run[active] = epoch
    seconds = (time.perf_counter() - start) / m
    results = []
    for j in range(m):
        run = int(epochs_run[j])
        history = {TRAIN_LOSS: losses[:run, j].tolist(), TRAIN_ACCURACY: accuracies[:run, j].tolist()}
        result = TrainResult(history, run, run if reached[j] else None, bool(diverged[j]), seconds)
        results.append(StackResult(result, final[j], times[:run].copy()))
    return results
