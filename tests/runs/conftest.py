"""Fixtures of the runs tests: training assembled parts the way a tracked run does, and
the command line run as a process against the test's store."""

import os
import subprocess
import sys

import pytest
from mlflow.tracking import MlflowClient

from src.runs.loop import fit
from src.runs.snapshots import snapshot_epochs


@pytest.fixture(scope="session")
def fit_run():
    """``fit_run(parts, run)`` -> ``TrainResult``: ``fit`` with the run's trainer settings, untracked."""

    def _fit(parts, run):
        t = run.trainer
        return fit(
            parts.net,
            parts.optimizer,
            parts.objective,
            parts.data,
            t.epochs,
            parts.shuffle_rng,
            batch_size=t.batch_size,
            shuffle=t.shuffle,
            loss_threshold=t.loss_threshold,
            threshold_patience=t.threshold_patience,
            snapshot_at=snapshot_epochs(t.epochs, run.tracking.snapshots),
        )

    return _fit


@pytest.fixture
def train_cli(tmp_path, tracking_uri):
    """``train_cli(*overrides, multirun=True, sweep_dir=None)`` -> the finished process of
    ``python -m src.train [-m] *overrides``, run in ``tmp_path`` against the test's store
    (a multirun into ``sweep_dir``, default ``tmp_path/multirun``)."""

    def _run(*overrides, multirun=True, sweep_dir=None):
        env = {k: v for k, v in os.environ.items() if k != "MLFLOW_RUN_ID"}
        if multirun:
            mode = ["-m", f"hydra.sweep.dir={sweep_dir or tmp_path / 'multirun'}"]
        else:
            mode = [f"hydra.run.dir={tmp_path / 'run'}"]
        command = [sys.executable, "-m", "src.train", *mode, *overrides]
        return subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)

    return _run


@pytest.fixture
def sweep_runs(tracking_uri):
    """``sweep_runs()`` -> ``(client, parents, children)``: the runs of the store's
    ``backprop`` experiment, sweep parents apart."""

    def _runs():
        client = MlflowClient(tracking_uri)
        runs = client.search_runs([client.get_experiment_by_name("backprop").experiment_id], max_results=1000)
        parents = [r for r in runs if r.data.tags.get("sweep") == "true"]
        return client, parents, [r for r in runs if r.data.tags.get("sweep") != "true"]

    return _runs
