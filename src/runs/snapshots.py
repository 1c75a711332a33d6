"""Training snapshots: the network at log-spaced epochs, to see how its decision boundary
formed and what happened inside its layers.

``snapshot_epochs(epochs, count)`` is epoch 0 (the initial weights) and ``count - 1``
epochs spaced evenly in log scale from 1 to ``epochs`` (rounded; repeats dropped, so a
short run has fewer): for 2 000 epochs and 12 snapshots, 0 1 2 5 10 21 45 96 205 437
935 2000. ``src.runs.loop.fit`` and ``fit_stacked`` fill a ``Snapshots``
with a copy of the packed parameters ``params`` (P,) and of the last gradient computed
``grads`` (P,) at each of these epochs the run reaches, and at the epoch it stopped at
(unless it diverged), so the last snapshot is the trained network. A full-batch gradient
is the loss's gradient at the snapshot's parameters; a mini-batch one is the epoch's
last batch's, before its update (zeros at epoch 0).

``layer_statistics`` turns them into per-layer metrics, one point per snapshot (step =
epoch), named by ``src.runs.contract.layer_metric``: for layer i's weights ``W_i``
(fan_in, fan_out), ``weight_norm`` = ||W_i||_F, ``weight_std``, ``weight_min``,
``weight_max``, and ``grad_norm`` = ||dL/dW_i||_F.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from src.runs.contract import LAYER_STATISTICS, layer_metric


def snapshot_epochs(epochs: int, count: int) -> list[int]:
    """Epoch 0 and up to ``count - 1`` log-spaced epochs in [1, epochs] (none if ``count`` is 0)."""
    if count <= 0:
        return []
    if count == 1:
        return [0]
    spaced = np.unique(np.rint(np.geomspace(1, epochs, count - 1)).astype(int))
    return [0, *spaced.tolist()]


@dataclass
class Snapshots:
    """The snapshots of one network: ``epochs[k]`` with ``params[k]`` and ``grads[k]``."""

    wanted: frozenset[int] = frozenset()
    epochs: list[int] = field(default_factory=list)
    params: list[np.ndarray] = field(default_factory=list)
    grads: list[np.ndarray] = field(default_factory=list)

    @classmethod
    def at(cls, epochs: Iterable[int]) -> Snapshots:
        return cls(frozenset(epochs))

    def take(self, epoch: int, params: np.ndarray, grads: np.ndarray) -> None:
        """Keep a copy of ``params`` and ``grads`` if ``epoch`` is a snapshot epoch."""
        if epoch in self.wanted:
            self._keep(epoch, params, grads)

    def close(self, epoch: int, params: np.ndarray, grads: np.ndarray) -> None:
        """The run stopped at ``epoch``: keep it too (when snapshots were asked for)."""
        if self.wanted and (not self.epochs or self.epochs[-1] != epoch) and np.isfinite(params).all():
            self._keep(epoch, params, grads)

    def _keep(self, epoch: int, params: np.ndarray, grads: np.ndarray) -> None:
        self.epochs.append(epoch)
        self.params.append(np.array(params, dtype=np.float64))
        self.grads.append(np.array(grads, dtype=np.float64))


def layer_statistics(layout, snapshots: Snapshots) -> dict[str, list[tuple[int, float]]]:
    """``{metric name: [(epoch, value), ...]}`` for every layer's weights (``layout``:
    ``MLP.layout``, the packed parameters' names, slices and shapes)."""
    stats: dict[str, list[tuple[int, float]]] = {}
    weights = [(int(name[1:]), where) for name, where, _ in layout if name.startswith("W")]
    for epoch, params, grads in zip(snapshots.epochs, snapshots.params, snapshots.grads, strict=True):
        for layer, where in weights:
            w, g = params[where], grads[where]
            values = {
                "weight_norm": np.linalg.norm(w),
                "weight_std": w.std(),
                "weight_min": w.min(),
                "weight_max": w.max(),
                "grad_norm": np.linalg.norm(g),
            }
            for stat in LAYER_STATISTICS:
                stats.setdefault(layer_metric(layer, stat), []).append((epoch, float(values[stat])))
    return stats
