"""A bad or failing tracking store: refused and silent servers fail fast in one line, a
store that stops answering mid-run loses nothing (the run ends in its job directory and
uploads once the store is back), and a job directory uploads into a fresh store as a run
the loaders cannot tell from a live one."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from src.analysis.loaders import load_history, load_runs
from src.runs import contract as c
from src.runs.metric_writer import FULL_RESOLUTION_EPOCHS, MetricWriter, resolution_stride
from src.runs.store import StoreUnavailable
from src.runs.tracked_run import JobContext, train_and_track
from src.runs.upload import upload


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def silent_server():
    """The address of a loopback socket that accepts connections and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    held, stop = [], threading.Event()

    def accept():
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    stop.set()
    thread.join()
    for connection in held:
        connection.close()
    listener.close()


@pytest.mark.parametrize("server", ["refused", "silent"])
def test_a_bad_store_fails_the_run_within_seconds_in_one_line(compose_config, tmp_path, silent_server, server):
    uri = f"http://127.0.0.1:{_free_port()}" if server == "refused" else silent_server
    job_dir = tmp_path / "job"
    cfg = compose_config(f"tracking.uri={uri}", "tracking.timeout=2", "trainer.epochs=5")
    started = time.monotonic()
    with pytest.raises(StoreUnavailable) as raised:
        train_and_track(cfg, JobContext(tags={c.TAG_OUTPUT_DIR: str(job_dir)}))
    assert time.monotonic() - started < 4
    message = str(raised.value)
    assert "\n" not in message and uri in message
    assert ("refused" in message) if server == "refused" else ("no answer within 2 s" in message)
    assert not job_dir.exists()  # nothing created, here or in the store


@pytest.mark.slow
def test_the_command_line_and_a_sweep_stop_in_one_line_before_any_job(train_cli, tmp_path, silent_server):
    refused = f"http://127.0.0.1:{_free_port()}"
    started = time.monotonic()
    single = train_cli(f"tracking.uri={refused}", multirun=False)
    sweep = train_cli(f"tracking.uri={silent_server}", "tracking.timeout=1", "optimizer=sgd,adam")
    assert time.monotonic() - started < 25  # two start-ups of the command line
    for proc, uri, cause in ((single, refused, "refused"), (sweep, silent_server, "no answer within 1 s")):
        assert proc.returncode == 1
        [line] = proc.stderr.strip().splitlines()
        assert line.startswith(f"error: tracking store {uri}: ") and cause in line
    assert not list(tmp_path.rglob(c.JOB_RECORD_FILE)) and not list(tmp_path.rglob("*.db"))  # no run began
    assert not list((tmp_path / "multirun").glob("[0-9]*"))  # no job of the sweep started


class DownClient:
    """A tracking server that never takes anything (not a SQL store: ``log_batch`` requests)."""

    _tracking_client = type("TrackingServiceClient", (), {"store": None})()

    def log_batch(self, run_id, metrics):
        raise ConnectionError("store unreachable")


def test_the_writer_gives_up_after_the_outage_wait_and_keeps_every_epoch():
    writer = MetricWriter(DownClient(), "run", max_epochs=2000, outage_seconds=0.5, flush_seconds=0.05)
    started = time.perf_counter()
    for epoch in range(1, 2001):
        writer.add(epoch, {"a": float(epoch)})
    added = time.perf_counter() - started
    time.sleep(0.2)  # a few failed ticks meanwhile
    assert not writer.close()
    assert time.perf_counter() - started < 3 and added < 0.5  # training was never held up
    assert [p[0] for p in writer.points] == list(range(1, 2001))
    sent = [p[0] for p in writer.pending]
    stride = resolution_stride(2000)
    assert stride == 7 and sent == [e for e in range(1, 2001) if e <= FULL_RESOLUTION_EPOCHS or e % 7 == 0] + [2000]


def _run_frames(uri: str):
    runs = load_runs("backprop", sweep="all", tracking_uri=uri)
    return runs, load_history(runs, [c.TRAIN_LOSS, c.TRAIN_ACCURACY], tracking_uri=uri)


def test_a_job_directory_uploads_into_a_fresh_store_as_the_live_run(compose_config, tracking_uri, tmp_path):
    job_dir = tmp_path / "job"
    cfg = compose_config("trainer.epochs=700", "trainer.loss_threshold=null", "tracking.log_model=false")
    summary = train_and_track(cfg, JobContext(tags={c.TAG_OUTPUT_DIR: str(job_dir)}))
    history = pd.read_parquet(job_dir / "artifacts" / c.HISTORY_FILE)
    assert history[c.EPOCH].tolist() == list(range(1, 701))  # every epoch, locally
    assert (job_dir / "artifacts" / c.WEIGHTS_FILE).exists()

    fresh = f"sqlite:///{tmp_path / 'fresh.db'}"
    store, run_id, sent = upload(job_dir, fresh)
    assert (store, sent) == (fresh, True)
    live, uploaded = MlflowClient(tracking_uri), MlflowClient(fresh)
    a, b = live.get_run(summary.run_id), uploaded.get_run(run_id)
    assert (b.info.run_name, b.info.status, b.info.start_time) == (a.info.run_name, "FINISHED", a.info.start_time)
    assert b.data.params == a.data.params and b.data.metrics == a.data.metrics
    assert b.data.tags == a.data.tags
    for metric in (c.TRAIN_LOSS, c.TRAIN_ACCURACY):
        points = {(m.step, m.timestamp, m.value) for m in live.get_metric_history(summary.run_id, metric)}
        assert {(m.step, m.timestamp, m.value) for m in uploaded.get_metric_history(run_id, metric)} == points
        assert len(points) == 250 + 450 // 2  # the writer's policy: the first 250 epochs, then every 2nd
    assert {f.path for f in uploaded.list_artifacts(run_id)} == {f.path for f in live.list_artifacts(summary.run_id)}
    assert len(b.inputs.dataset_inputs) == len(a.inputs.dataset_inputs) == 1

    (live_runs, live_history), (runs, loaded) = _run_frames(tracking_uri), _run_frames(fresh)
    columns = [col for col in live_runs.columns if col not in ("run_id", "artifact_uri")]
    pd.testing.assert_frame_equal(runs[columns], live_runs[columns])
    pd.testing.assert_frame_equal(loaded.drop(columns="run_id"), live_history.drop(columns="run_id"))

    assert upload(job_dir, fresh) == (fresh, run_id, False)  # idempotent
    assert len(uploaded.search_runs([b.info.experiment_id])) == 1


@pytest.fixture
def mlflow_server(tmp_path):
    """``start()`` a real ``mlflow server`` on a loopback port (sqlite backend, local
    artifact destination) and ``stop()`` it, by the id of the process group it runs in."""
    port, procs = _free_port(), []
    uri = f"http://127.0.0.1:{port}"
    command = [
        *(sys.executable, "-m", "mlflow", "server"),
        *("--backend-store-uri", f"sqlite:///{tmp_path / 'server.db'}"),
        *("--artifacts-destination", str(tmp_path / "server-artifacts")),
        *("--host", "127.0.0.1", "--port", str(port), "--workers", "1"),
    ]

    def start():
        proc = subprocess.Popen(
            command, cwd=tmp_path, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        procs.append(proc)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{uri}/health", timeout=1):
                    return uri
            except OSError:
                time.sleep(0.2)
        raise RuntimeError("mlflow server did not start")

    def stop():
        proc = procs[-1]
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()

    yield uri, start, stop
    for proc in procs:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.mark.slow
def test_a_store_lost_mid_run_loses_nothing_and_the_run_uploads_later(train_cli, tmp_path, mlflow_server):
    uri, start, stop = mlflow_server
    start()
    epochs = 300_000
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_RUN_ID"}
    job_dir = tmp_path / "run"
    training = subprocess.Popen(
        [
            *(sys.executable, "-m", "src.train", f"hydra.run.dir={job_dir}", f"tracking.uri={uri}"),
            *(f"trainer.epochs={epochs}", "trainer.loss_threshold=null", "optimizer.lr=0.01"),
            *(
                "tracking.outage_wait=2",
                "tracking.timeout=30",
                "tracking.log_figures=false",
            ),  # a slow answer is no outage
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    client = MlflowClient(uri)
    deadline, seen = time.monotonic() + 120, 0
    while not seen and time.monotonic() < deadline:  # the first points have landed: the run is under way
        time.sleep(0.2)
        experiment = client.get_experiment_by_name("backprop")
        runs = client.search_runs([experiment.experiment_id]) if experiment else []
        seen = runs and len(client.get_metric_history(runs[0].info.run_id, c.TRAIN_LOSS))
    stop()
    out, err = training.communicate(timeout=300)
    assert training.returncode == 1, err[-3000:]
    message = err.strip().splitlines()[-1]
    assert message.startswith(f"error: tracking store {uri}: ") and f"python -m src.runs.upload {job_dir}" in message

    history = pd.read_parquet(job_dir / "artifacts" / c.HISTORY_FILE)
    assert history[c.EPOCH].tolist() == list(range(1, epochs + 1))  # nothing trained is lost
    record = (job_dir / c.JOB_RECORD_FILE).read_text()
    assert '"status": "FINISHED"' in record and '"complete": false' in record

    start()
    upload_cli = subprocess.run(
        [sys.executable, "-m", "src.runs.upload", str(job_dir), "--wait", "60"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert upload_cli.returncode == 0, upload_cli.stderr[-3000:]
    run = client.search_runs([client.get_experiment_by_name("backprop").experiment_id])
    assert len(run) == 1 and run[0].info.status == "FINISHED"
    stride = resolution_stride(epochs)
    kept = [e for e in range(1, epochs + 1) if e <= FULL_RESOLUTION_EPOCHS or e % stride == 0]
    expected = len(kept) + (kept[-1] != epochs)  # and the last epoch
    for metric in (c.TRAIN_LOSS, c.TRAIN_ACCURACY):
        assert len(client.get_metric_history(run[0].info.run_id, metric)) == expected
    assert run[0].data.metrics[c.EPOCHS_RUN] == epochs
    runs = load_runs("backprop", sweep="all", tracking_uri=uri)
    loaded = load_history(runs, [c.TRAIN_LOSS], tracking_uri=uri)
    assert len(loaded) == epochs and Path(job_dir / c.JOB_RECORD_FILE).read_text().count('"complete": true') == 1
