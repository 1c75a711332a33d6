"""A run's history at full resolution, in memory: every epoch's ``(epoch, timestamp in
ms, metrics)``, as ``src.runs.metric_writer.MetricWriter`` was given them and as
``src.runs.job_dir.JobDir.save`` writes them to ``history.parquet``.

Epochs given one at a time (the training loop's ``MetricWriter.add``) are kept as those
points, each with the loop's own dict of metrics. A block of epochs given at once (a
stacked run's replay, ``MetricWriter.add_epochs``) is kept as its columns, so that its
epochs cost no tuple and no dict each: a child of a million epochs spent 2.2 s building
them (now 30 ms) and 0.3 s taking them apart again for ``history.parquet`` (now 0.2 s).
``columns()`` gives the whole history as columns; iterating gives it as points, in epoch
order either way.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

Point = tuple[int, int, Mapping[str, float]]


@dataclass(frozen=True)
class Block:
    """Epochs ``first``, ``first + 1``, ... with their timestamps (ms) and metric columns."""

    first: int
    stamps: Sequence[int]
    columns: Mapping[str, Sequence[float]]

    def point(self, epoch: int) -> Point:
        """Epoch ``epoch`` of the block as a point."""
        at = epoch - self.first
        return epoch, self.stamps[at], {name: values[at] for name, values in self.columns.items()}

    def points(self) -> Iterator[Point]:
        return map(self.point, range(self.first, self.first + len(self.stamps)))


class EpochLog:
    """The epochs of one run, in the order they were added."""

    def __init__(self) -> None:
        self._tail: list[Point] = []  # the points added one by one since the last block
        self._parts: list[list[Point] | Block] = [self._tail]

    def append(self, point: Point) -> None:
        self._tail.append(point)

    def extend_columns(self, first: int, stamps: Sequence[int], columns: Mapping[str, Sequence[float]]) -> Block:
        """Add epochs ``first`` .. ``first + len(stamps) - 1``: their timestamps in ms and a
        column of values per metric, each as long as ``stamps`` (kept as given, not copied).
        Returns them as a ``Block``."""
        if any(len(values) != len(stamps) for values in columns.values()):
            raise ValueError(f"metric columns of {[len(v) for v in columns.values()]} values for {len(stamps)} epochs")
        block = Block(first, stamps, columns)
        self._tail = []
        self._parts += [block, self._tail]
        return block

    def __len__(self) -> int:
        return sum(len(part.stamps) if isinstance(part, Block) else len(part) for part in self._parts)

    def __iter__(self) -> Iterator[Point]:
        for part in self._parts:
            yield from part.points() if isinstance(part, Block) else part

    def __eq__(self, other: object) -> bool:
        return isinstance(other, EpochLog) and list(self) == list(other)

    __hash__ = None  # mutable

    def columns(self) -> tuple[list[int], list[int], dict[str, list[float]]]:
        """``(epochs, timestamps in ms, {metric: values})``, the metrics those of the first
        epoch (every epoch of a run has the same ones)."""
        epochs: list[int] = []
        stamps: list[int] = []
        columns: dict[str, list[float]] = {}
        for part in self._parts:
            if isinstance(part, Block):
                epochs.extend(range(part.first, part.first + len(part.stamps)))
                stamps.extend(part.stamps)
                names = columns or part.columns
                for name in names:
                    columns.setdefault(name, []).extend(part.columns[name])
            elif part:
                epochs.extend(point[0] for point in part)
                stamps.extend(point[1] for point in part)
                names = columns or part[0][2]
                for name in names:
                    columns.setdefault(name, []).extend(float(point[2][name]) for point in part)
        return epochs, stamps, columns
