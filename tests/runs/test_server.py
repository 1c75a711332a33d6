"""The team tracking server (``python -m src.runs.server``): a real PostgreSQL cluster and
a real ``mlflow server`` on a free loopback port, one per module, fed by a real joblib
sweep and read back by the analysis loaders."""

import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from src.runs.server import ServerError, find_postgres_bin

try:
    find_postgres_bin(None)
    NO_POSTGRES = None
except ServerError as err:
    NO_POSTGRES = str(err)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.server,
    pytest.mark.skipif(NO_POSTGRES is not None, reason=f"PostgreSQL binaries absent: {NO_POSTGRES}"),
]

FIGURES = {"learning_curve.png", "decision_boundary.png", "ground_truth_vs_prediction.png"}
EPOCHS, SEEDS = 60, 4


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _server(*args) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "src.runs.server", *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def team_server():
    """``(tracking_uri, store folder)`` of a server started by the command, stopped after the module."""
    # Not under pytest's private temporary root: when root starts it, PostgreSQL runs as
    # the postgres user, who must be able to enter the folder.
    folder = Path(tempfile.mkdtemp(prefix="team-server-"))
    folder.chmod(0o755)
    store = folder / "store"
    started = _server("start", "--dir", store, "--port", _free_port(), "--workers", 2)
    try:
        assert started.returncode == 0, started.stderr[-3000:]
        export = started.stdout.strip().splitlines()[-1]
        assert export.startswith("export MLFLOW_TRACKING_URI=http://127.0.0.1:")
        yield export.partition("=")[2], store
    finally:
        if (store / "mlflow.pid").exists() or (store / "pgdata" / "postmaster.pid").exists():
            _server("stop", "--dir", store)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def server_sweep(team_server, tmp_path_factory):
    """A joblib sweep of ``SEEDS`` jobs into the team server, with figures and models."""
    uri, _ = team_server
    workdir = tmp_path_factory.mktemp("server-sweep")
    env = {**{k: v for k, v in os.environ.items() if k != "MLFLOW_RUN_ID"}, "MLFLOW_TRACKING_URI": uri}
    command = [sys.executable, "-m", "src.train", "-m", f"hydra.sweep.dir={workdir / 'multirun'}"]
    command += ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2", f"trainer.seed=range({SEEDS})"]
    command += [f"trainer.epochs={EPOCHS}", "trainer.loss_threshold=null"]
    proc = subprocess.run(command, cwd=workdir, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return uri


def test_joblib_sweep_lands_every_run_point_figure_and_model_on_the_server(team_server, server_sweep):
    uri, store = team_server
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("backprop")
    assert experiment.artifact_location.startswith("mlflow-artifacts:")  # proxied by the server
    runs = client.search_runs([experiment.experiment_id], max_results=100)
    (parent,) = [r for r in runs if r.data.tags.get("sweep") == "true"]
    children = [r for r in runs if r.data.tags.get("sweep") != "true"]
    assert parent.info.status == "FINISHED" and len(children) == SEEDS
    assert sorted(r.data.params["trainer.seed"] for r in children) == [str(s) for s in range(SEEDS)]
    for run in children:
        run_id = run.info.run_id
        assert run.info.status == "FINISHED" and run.data.tags["mlflow.parentRunId"] == parent.info.run_id
        for key in ("train_loss", "train_accuracy"):
            assert [p.step for p in client.get_metric_history(run_id, key)] == list(range(1, EPOCHS + 1))
        artifacts = {a.path for a in client.list_artifacts(run_id)}
        assert FIGURES | {"weights.npz", "config.yaml", "history.parquet"} <= artifacts
        model = client.get_logged_model(run.data.tags["model_uri"].removeprefix("models:/"))
        assert model.source_run_id == run_id
    # The artifacts live in the store's folder, sent there over HTTP.
    assert len(list((store / "artifacts").rglob("learning_curve.png"))) == SEEDS
    assert len(list((store / "artifacts").rglob("MLmodel"))) == SEEDS


def test_analysis_loaders_read_the_sweep_back_from_the_server(server_sweep):
    from src.analysis.loaders import load_history, load_runs, load_trained
    from src.engine.encoding import predict_labels

    runs = load_runs("backprop", tracking_uri=server_sweep)
    assert len(runs) == SEEDS and set(runs["status"]) == {"FINISHED"}
    history = load_history(runs, tracking_uri=server_sweep)
    assert history.groupby("run_id").size().tolist() == [2 * EPOCHS] * SEEDS
    final = history[(history["metric"] == "train_loss") & (history["epoch"] == EPOCHS)].set_index("run_id")["value"]
    assert np.allclose(final[runs["run_id"]].to_numpy(), runs["final_train_loss"].to_numpy(), rtol=0, atol=1e-12)
    net, data = load_trained(runs.iloc[0], tracking_uri=server_sweep)
    accuracy = np.mean(predict_labels(net.predict(data.x_train)) == data.y_train)
    assert accuracy == runs.iloc[0]["final_train_accuracy"]


def test_stop_ends_mlflow_server_and_postgres(team_server):
    uri, store = team_server
    pid = int((store / "mlflow.pid").read_text())
    stopped = _server("stop", "--dir", store)
    assert stopped.returncode == 0, stopped.stderr
    assert stopped.stdout.strip() == f"stopped mlflow server (pid {pid}) and PostgreSQL ({store / 'pgdata'})"
    assert not (store / "pgdata" / "postmaster.pid").exists() and not (store / "mlflow.pid").exists()
    host, port = uri.removeprefix("http://").split(":")
    with pytest.raises(OSError), socket.create_connection((host, int(port)), timeout=2):
        pass


def test_bad_start_options_print_one_line_and_create_nothing(tmp_path):
    store = tmp_path / "store"
    proc = _server("start", "--dir", store, "--postgres-bin", tmp_path / "nowhere")
    assert proc.returncode == 1
    assert proc.stderr.strip() == f"error: server: postgres_bin: {tmp_path / 'nowhere'} holds no initdb and pg_ctl"
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = _server("start", "--dir", store, "--port", port)
    assert proc.returncode == 1
    assert proc.stderr.strip().startswith(f"error: server: port: cannot listen on 127.0.0.1:{port} (")
    assert not store.exists()
