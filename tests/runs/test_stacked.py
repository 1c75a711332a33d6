"""Stacked training: every network of a stack computes exactly what it computes alone,
and ``hydra/launcher=stacked`` logs the same runs as the basic launcher."""

import os
import subprocess
import sys

import numpy as np
import pytest
import yaml
from mlflow.tracking import MlflowClient

from src.engine.stacked import StackedMLP
from src.runs.build import assemble
from src.runs.config import validate
from src.runs.stacked_launcher import plan, stack_key, train_stack

GRIDS = {
    "adam-linear": (["optimizer=adam", "dataset=linear", "trainer.epochs=400"], [0.001, 0.01, 0.1, 0.5]),
    "sgd-sigmoid-diverging": (["model.activation=sigmoid", "trainer.epochs=400"], [0.1, 1.0, 50.0, 1e30]),
    "momentum-relu-bce": (["optimizer=momentum", "loss=bce", "model.activation=relu", "model.init=he"], [0.01, 0.1]),
    "rmsprop-blobs3": (["optimizer=rmsprop", "dataset=blobs3", "trainer.loss_threshold=0.1"], [0.001, 0.01]),
    "adagrad-lr-decay": (["optimizer=adagrad", "optimizer.lr_decay=0.01", "trainer.epochs=300"], [0.05, 0.1]),
    "nesterov-dampening-free": (["optimizer=nesterov", "trainer.epochs=300"], [0.03, 0.3]),
    "adamw-nesterov-free": (["optimizer=adamw", "trainer.loss_threshold=null", "trainer.epochs=200"], [0.003, 0.03]),
    # seed 1 at lr 50 dips below the threshold at epoch 197 and settles only at 1027
    "sgd-dips-below-the-threshold": (
        ["dataset=linear", "model.activation=sigmoid", "trainer.epochs=1100"],
        [50.0, 5.0],
    ),
}


@pytest.mark.parametrize("grid", sorted(GRIDS))
def test_a_stack_trains_each_network_exactly_as_alone(compose_config, fit_run, grid):
    base, rates = GRIDS[grid]
    runs = [
        validate(compose_config(*base, f"optimizer.lr={lr}", f"trainer.seed={seed}")) for lr in rates for seed in (0, 1)
    ]
    assert len({stack_key(run) for run in runs}) == 1
    stacked = train_stack(runs)
    for run, mine in zip(runs, stacked, strict=True):
        parts = assemble(run)
        alone = fit_run(parts, run)
        assert mine.result.history == alone.history
        assert mine.result.epochs_run == alone.epochs_run and mine.result.diverged == alone.diverged
        assert mine.result.epochs_to_threshold == alone.epochs_to_threshold
        assert mine.result.first_below_threshold == alone.first_below_threshold
        np.testing.assert_array_equal(mine.params, parts.net.params)
        assert mine.result.snapshots.epochs == alone.snapshots.epochs and len(alone.snapshots.epochs) > 3
        np.testing.assert_array_equal(mine.result.snapshots.params, alone.snapshots.params)
        np.testing.assert_array_equal(mine.result.snapshots.grads, alone.snapshots.grads)
        assert len(mine.epoch_times) == alone.epochs_run


def test_a_network_that_stops_leaves_the_stack_and_the_others_go_on_exactly(compose_config, fit_run, monkeypatch):
    sizes = []
    subset = StackedMLP.subset
    monkeypatch.setattr(StackedMLP, "subset", lambda self, rows: sizes.append(len(rows)) or subset(self, rows))
    base = ["model.activation=sigmoid", "trainer.epochs=3000"]
    runs = [
        validate(compose_config(*base, f"optimizer.lr={lr}", f"trainer.seed={seed}"))
        for lr in (50.0, 10.0, 1.0)
        for seed in (0, 1)
    ]
    stacked = train_stack(runs)
    stops = sorted({r.result.epochs_run for r in stacked} - {3000})
    assert stops == [555, 2967]  # lr 10: seed 0 reaches the threshold (and holds it) first, then seed 1
    assert sizes == [sum(r.result.epochs_run > stop for r in stacked) for stop in stops] == [5, 4]
    for run, mine in zip(runs, stacked, strict=True):
        parts = assemble(run)
        alone = fit_run(parts, run)
        assert mine.result.history == alone.history and mine.result.epochs_to_threshold == alone.epochs_to_threshold
        np.testing.assert_array_equal(mine.params, parts.net.params)
        np.testing.assert_array_equal(mine.result.snapshots.params, alone.snapshots.params)


def test_an_interrupt_after_networks_left_the_stack_keeps_every_networks_epochs(compose_config, fit_run, monkeypatch):
    calls = []

    def interrupt_at_epoch_1000():
        calls.append(None)
        if len(calls) == 1000:
            raise KeyboardInterrupt

    monkeypatch.setattr("src.runs.loop.raise_if_received", interrupt_at_epoch_1000)
    base = ["model.activation=sigmoid", "trainer.epochs=3000", "optimizer.lr=10"]
    runs = [validate(compose_config(*base, f"trainer.seed={seed}")) for seed in (0, 1, 2)]
    stacked = train_stack(runs)
    assert [r.result.epochs_run for r in stacked] == [555, 1000, 862] and all(r.interrupted for r in stacked)
    assert stacked[0].result.epochs_to_threshold == 535 and len(stacked[1].epoch_times) == 1000
    for run, mine in zip(runs, stacked, strict=True):  # each as far as it went alone
        alone = fit_run(assemble(run), run)
        assert mine.result.history["train_loss"] == alone.history["train_loss"][: mine.result.epochs_run]


def test_jobs_that_cannot_stack_run_alone_and_say_why(compose_config):
    overrides = [
        ["trainer.seed=0"],
        ["trainer.seed=1"],
        ["trainer.batch_size=4"],
        ["dataset.test_fraction=0.3"],
        ["trainer.l2=0.01"],
        ["model.width=3"],
        ["optimizer=adam"],
        ["optimizer=adam", "trainer.seed=2"],
        ["trainer.dtype=float32"],
        ["trainer.dtype=float32", "trainer.seed=1"],
    ]
    runs = [validate(compose_config(*o)) for o in overrides] + [None]
    stacks, alone = plan(runs, max_stack=256)
    assert sorted(stacks) == [[0, 1], [6, 7]]
    assert alone[2].startswith("mini-batches") and alone[3].startswith("a test split")
    assert alone[4] == "L1/L2 penalties" and alone[5].startswith("no other job")
    assert alone[8].startswith("trainer.dtype=float32") and alone[9].startswith("trainer.dtype=float32")
    assert alone[10] == "an invalid config"
    assert plan(runs[:2], max_stack=1)[0] == []


def _sweep(tmp_path, launcher):
    store = tmp_path / launcher
    store.mkdir()
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{store / 'mlflow.db'}"}
    env.pop("MLFLOW_RUN_ID", None)
    command = [
        sys.executable,
        "-m",
        "src.train",
        "-m",
        f"hydra/launcher={launcher}",
        f"hydra.sweep.dir={store / 'sweep'}",
        "optimizer.lr=0.5,1,5",
        "trainer.seed=0,1",
        "trainer.batch_size=null,8",
        "trainer.epochs=600",
        "tracking.log_model=false",
    ]
    proc = subprocess.run(command, cwd=store, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    client = MlflowClient(env["MLFLOW_TRACKING_URI"])
    runs = client.search_runs([client.get_experiment_by_name("backprop").experiment_id])
    return (
        client,
        proc,
        [r for r in runs if r.data.tags.get("sweep") == "true"],
        [r for r in runs if r.data.tags.get("sweep") != "true"],
    )


@pytest.mark.slow
def test_the_stacked_launcher_logs_what_the_basic_launcher_logs(tmp_path):
    stacked_client, proc, (parent,), children = _sweep(tmp_path, "stacked")
    assert "6 in 1 stack(s) of [6], 6 on their own" in proc.stderr + proc.stdout
    plan = yaml.safe_load((tmp_path / "stacked" / "sweep" / "sweep_plan.yaml").read_text())
    assert plan["started"] < plan["paced_from"] < parent.info.end_time / 1000  # the time left counts from there
    basic_client, _, (basic_parent,), basic_children = _sweep(tmp_path, "basic")
    assert (parent.data.tags["launcher"], basic_parent.data.tags["launcher"]) == ("stacked", "basic")
    key = lambda r: r.data.tags["hydra_overrides"]  # noqa: E731
    assert len(children) == len(basic_children) == 12
    basic = {key(r): r for r in basic_children}
    for run in children:
        twin = basic[key(run)]
        assert run.data.tags["mlflow.parentRunId"] == parent.info.run_id and run.info.status == "FINISHED"
        for metric in ("train_loss", "train_accuracy"):
            mine = [
                m.value
                for m in sorted(stacked_client.get_metric_history(run.info.run_id, metric), key=lambda m: m.step)
            ]
            theirs = [
                m.value for m in sorted(basic_client.get_metric_history(twin.info.run_id, metric), key=lambda m: m.step)
            ]
            assert mine == theirs
        for metric in ("epochs_run", "epochs_to_threshold", "final_train_loss", "final_train_accuracy"):
            assert run.data.metrics.get(metric) == twin.data.metrics.get(metric)
        assert {"learning_curve.png", "weights.npz", "history.parquet"} <= {
            a.path for a in stacked_client.list_artifacts(run.info.run_id)
        }
