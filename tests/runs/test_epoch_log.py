"""A run's history in memory (``EpochLog``) and in ``history.parquet`` (``JobDir.save``):
epochs added one by one and a block added as columns give the very same history."""

import numpy as np
import pyarrow.parquet as pq
import pytest

from src.runs import contract as c
from src.runs.epoch_log import EpochLog
from src.runs.job_dir import JobDir
from src.runs.metric_writer import FULL_RESOLUTION_EPOCHS, MetricWriter, resolution_stride


def _history(first: int, count: int, seed: int) -> tuple[list[int], dict[str, list[float]]]:
    rng = np.random.default_rng(seed)
    stamps = (1_700_000_000_000 + first + np.arange(count)).tolist()
    return stamps, {"train_loss": rng.normal(size=count).tolist(), "train_accuracy": rng.random(count).tolist()}


def _one_by_one(log: EpochLog, first: int, stamps: list[int], columns: dict[str, list[float]]) -> None:
    for offset, stamp in enumerate(stamps):
        log.append((first + offset, stamp, {name: values[offset] for name, values in columns.items()}))


def test_points_and_blocks_read_back_in_epoch_order_as_points_and_as_columns(tmp_path):
    parts = [(1, *_history(1, 5, 0)), (6, *_history(6, 1_000, 1)), (1_006, *_history(1_006, 3, 2))]
    mixed, points = EpochLog(), EpochLog()
    for index, (first, stamps, columns) in enumerate(parts):
        _one_by_one(points, first, stamps, columns)
        if index == 1:
            mixed.extend_columns(first, stamps, columns)
        else:
            _one_by_one(mixed, first, stamps, columns)
    assert len(mixed) == len(points) == 1_008
    assert list(mixed) == list(points) and mixed == points
    assert [p[0] for p in mixed] == list(range(1, 1_009))
    assert mixed.columns() == points.columns()
    epochs, stamps, columns = mixed.columns()
    assert epochs == list(range(1, 1_009)) and list(columns) == ["train_loss", "train_accuracy"]
    assert columns["train_loss"] == [p[2]["train_loss"] for p in points]

    tables = []
    for name, log in (("mixed", mixed), ("points", points)):
        job = JobDir.open(str(tmp_path / name))
        job.start("{}\n", {})
        job.save(log, "FINISHED", 0)
        tables.append(pq.read_table(job.artifacts / c.HISTORY_FILE))
    assert tables[0].equals(tables[1])
    assert tables[0].column(c.EPOCH).to_pylist() == list(range(1, 1_009))
    assert str(tables[0].schema.field(c.TIMESTAMP).type) == "int64"


def test_an_empty_history_has_no_epochs_and_a_block_must_match_its_timestamps(tmp_path):
    empty = EpochLog()
    assert len(empty) == 0 and list(empty) == [] and empty.columns() == ([], [], {})
    job = JobDir.open(str(tmp_path / "empty"))
    job.start("{}\n", {})
    job.save(empty, "FAILED", 0)
    assert pq.read_table(job.artifacts / c.HISTORY_FILE).num_rows == 0
    with pytest.raises(ValueError, match=r"metric columns of \[2, 3\] values for 3 epochs"):
        empty.extend_columns(1, [1, 2, 3], {"a": [0.0, 1.0], "b": [0.0, 1.0, 2.0]})


@pytest.mark.parametrize("max_epochs", [100, 2_000, 5_000, 1_000_000])
@pytest.mark.parametrize("first, count", [(1, 1), (1, 3_001), (200, 120), (251, 1), (300, 7_777)])
def test_the_epochs_a_block_sends_are_those_the_policy_sends_one_by_one(max_epochs, first, count):
    writer = MetricWriter.__new__(MetricWriter)  # the policy alone: no client, no thread
    writer.stride = resolution_stride(max_epochs)
    last = first + count - 1
    expected = [epoch for epoch in range(first, last + 1) if writer._sends(epoch)]
    assert writer._sent_epochs(first, last) == expected
    assert all(epoch <= FULL_RESOLUTION_EPOCHS or epoch % writer.stride == 0 for epoch in expected)
