"""Faults, with real processes and real signals against temporary sqlite stores: sweeps
started together, first launches racing into a fresh store, Ctrl-C and SIGTERM on a
run and on sweeps of each launcher (counting the epochs stored against the epochs
reached), and the runs a killed process leaves RUNNING."""

import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from src.runs.metric_writer import FULL_RESOLUTION_EPOCHS, resolution_stride

QUICK = ("trainer.loss_threshold=null", "tracking.log_figures=false", "tracking.log_model=false")
LONG = 2_000_000  # epochs: a run that is still training when the signal comes, however loaded the machine
PROGRESS = re.compile(r"- (\S+)  epoch +(\d+)/")  # a run's progress line: its name, its epoch


def _start(cwd: Path, *args: str) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_RUN_ID"}
    command = [sys.executable, "-m", "src.train", *args]
    return subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _signal_after(proc: subprocess.Popen, signum: int, epochs: int, runs: int = 1) -> tuple[int, str]:
    """Send ``signum`` once the progress lines of ``runs`` runs have passed epoch ``epochs``;
    return the exit status and the whole output."""
    lines, seen = [], 0

    def read() -> None:
        for line in proc.stdout:
            lines.append(line)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    while proc.poll() is None and seen < runs:
        seen = len({m[1] for line in list(lines) if (m := PROGRESS.search(line)) and int(m[2]) >= epochs})
        threading.Event().wait(0.1)
    assert seen >= runs, "".join(lines)[-3000:]
    proc.send_signal(signum)
    status = proc.wait(timeout=120)
    reader.join(timeout=10)
    return status, "".join(lines)


def _expected_steps(reached: int, budget: int) -> list[int]:
    """The metric steps the resolution policy stores for ``reached`` epochs of ``budget``."""
    stride = resolution_stride(budget)
    kept = [e for e in range(1, reached + 1) if e <= FULL_RESOLUTION_EPOCHS or e % stride == 0]
    return kept if kept[-1] == reached else [*kept, reached]


def _runs(uri: str):
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("backprop")
    runs = client.search_runs([experiment.experiment_id], max_results=100)
    parents = [r for r in runs if r.data.tags.get("sweep") == "true"]
    return client, parents, [r for r in runs if r.data.tags.get("sweep") != "true"]


@pytest.mark.slow
def test_two_sweeps_started_together_into_a_fresh_store_keep_apart(tmp_path, tracking_uri):
    """Each sweep gets its own directory and parent, and neither loses a job to the
    fresh store's creation (nor leaves a migration's temporary table behind)."""
    procs = {
        grid: _start(tmp_path, "-m", f"optimizer={grid}", "trainer.epochs=20", *QUICK)
        for grid in ("sgd,adam", "momentum,adagrad")
    }
    for proc in procs.values():
        out, _ = proc.communicate(timeout=300)
        assert proc.returncode == 0, out[-3000:]
    client, parents, children = _runs(tracking_uri)
    assert len(parents) == 2 and len(children) == 4
    assert all(run.info.status == "FINISHED" for run in parents + children)
    sweep_dirs = {p.data.tags["sweep_dir"] for p in parents}
    assert len(sweep_dirs) == 2 and len(list((tmp_path / "multirun").glob("*/*/mlflow_parent_run_id"))) == 2
    for parent in parents:
        grid = parent.data.tags["hydra_overrides"].split()[0].removeprefix("optimizer=").split(",")
        mine = [c for c in children if c.data.tags["mlflow.parentRunId"] == parent.info.run_id]
        assert sorted(c.data.params["optimizer.name"] for c in mine) == sorted(grid)
        assert {c.data.tags["sweep_dir"] for c in mine} == {parent.data.tags["sweep_dir"]}
        jobs = sorted(Path(parent.data.tags["sweep_dir"]).glob("[0-9]/.hydra/overrides.yaml"))
        assert [job.read_text().split("optimizer=")[1].split()[0] for job in jobs] == grid
    with sqlite3.connect(tmp_path / "mlflow.db") as db:
        tables = [name for (name,) in db.execute("select name from sqlite_master where type = 'table'")]
    assert not [name for name in tables if name.startswith("_alembic_tmp")]


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_ends_a_run_killed_with_every_epoch_reached(tmp_path, tracking_uri, signum):
    proc = _start(tmp_path, f"trainer.epochs={LONG}", "trainer.log_every=2000", *QUICK)
    status, out = _signal_after(proc, signum, 6000)
    assert status == 128 + signum and out.rstrip().endswith(f"interrupted by {signum.name}"), out[-3000:]
    client, _, (run,) = _runs(tracking_uri)
    assert run.info.status == "KILLED" and run.data.tags["interrupted"] == "true"
    assert run.data.tags["pid"] == str(proc.pid) and run.data.tags["host"] == socket.gethostname()
    history = pd.read_parquet(client.download_artifacts(run.info.run_id, "history.parquet", str(tmp_path)))
    reached = len(history)
    assert reached >= 6000 and list(history["epoch"]) == list(range(1, reached + 1))
    assert f"interrupted at epoch {reached};" in out
    for metric in ("train_loss", "train_accuracy"):
        steps = [m.step for m in client.get_metric_history(run.info.run_id, metric)]
        assert sorted(steps) == _expected_steps(reached, LONG)
    assert {"weights.npz", "config.yaml"} <= {a.path for a in client.list_artifacts(run.info.run_id)}


@pytest.mark.slow
@pytest.mark.parametrize(
    "launcher, signum, running",
    [("basic", signal.SIGTERM, 1), ("joblib", signal.SIGINT, 2), ("stacked", signal.SIGTERM, 3)],
)
def test_an_interrupted_sweep_is_killed_and_lists_the_jobs_never_started(
    tmp_path, tracking_uri, launcher, signum, running
):
    """``running``: the jobs training when the signal comes (the stack trains them all)."""
    args = ["-m", f"hydra/launcher={launcher}", "trainer.seed=0,1,2", f"trainer.epochs={LONG}", *QUICK]
    if launcher == "joblib":
        args.append("hydra.launcher.n_jobs=2")
    proc = _start(tmp_path, *args, "trainer.log_every=2000")
    status, out = _stack_signal(proc, signum) if launcher == "stacked" else _signal_after(proc, signum, 4000, running)
    assert status == 128 + signum, out[-3000:]
    client, (parent,), children = _runs(tracking_uri)
    assert parent.info.status == "KILLED" and parent.data.tags["interrupted"] == "true"
    assert len(children) == running and all(c.info.status == "KILLED" for c in children)
    assert parent.data.metrics["jobs_not_started"] == 3 - running
    if running < 3:
        listed = client.download_artifacts(parent.info.run_id, "jobs_not_started.txt", str(tmp_path))
        lines = Path(listed).read_text().splitlines()
        assert [line.split()[0] for line in lines] == [f"#{k}" for k in range(running, 3)]
        assert all(f"trainer.seed={k}" in line.split() for k, line in zip(range(running, 3), lines, strict=True))
    for child in children:
        steps = sorted(m.step for m in client.get_metric_history(child.info.run_id, "train_loss"))
        history = client.download_artifacts(child.info.run_id, "history.parquet", str(tmp_path / child.info.run_id))
        assert steps == _expected_steps(len(pd.read_parquet(history)), LONG)


def _stack_signal(proc: subprocess.Popen, signum: int) -> tuple[int, str]:
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if "Launching 3 jobs stacked" in line:
            threading.Event().wait(1.0)
            proc.send_signal(signum)
            break
    lines.extend(proc.stdout)
    return proc.wait(timeout=120), "".join(lines)
