"""Runs tracked in a real (temporary) sqlite MLflow store, in-process."""

import os
import subprocess
import sys
import time
from pathlib import Path

import mlflow.pyfunc
import numpy as np
import pytest
import yaml
from mlflow.tracking import MlflowClient

from src.engine.encoding import predict_labels
from src.engine.optimizers import SGD
from src.runs.build import build_dataset, build_network
from src.runs.config import validate
from src.runs.metric_store import log_metrics
from src.runs.metric_writer import (
    FULL_RESOLUTION_EPOCHS,
    MAX_POINTS_PER_METRIC,
    MetricWriter,
    resolution_stride,
)
from src.runs.tracked_run import JobContext, train_and_track
from src.runs.tracking import RunArtifacts, context_tags, git_tags, open_experiment

ARTIFACTS = {
    "config.yaml",
    "weights.npz",
    "history.parquet",
    "learning_curve.png",
    "decision_boundary.png",
    "ground_truth_vs_prediction.png",
}
#: A single run's figures of its training snapshots (the stepped images are in ``images/``).
EVOLUTION = {"boundary_evolution.png", "weight_distributions.png", "images"}


def _only_run(client):
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert len(runs) == 1
    return runs[0]


def _history(client, run_id, key):
    return [m.value for m in sorted(client.get_metric_history(run_id, key), key=lambda m: m.step)]


def test_run_logs_params_metrics_artifacts_and_tags(compose_config, tracking_uri, tmp_path):
    cfg = compose_config(
        "dataset=moons",
        "dataset.test_fraction=0.25",
        "optimizer=adam",
        "trainer.epochs=60",
        "trainer.loss_threshold=null",
    )
    summary = train_and_track(cfg, JobContext(tags={"hydra_overrides": "dataset=moons"}))
    client = MlflowClient(tracking_uri)
    run = _only_run(client)
    assert run.info.status == "FINISHED" and run.info.run_name == "moons-adam-2x8-tanh-s0" == summary.name
    # the experiment it made is of MLflow's model-training kind, not GenAI development
    assert client.get_experiment(run.info.experiment_id).tags["mlflow.experimentKind"] == "custom_model_development"
    assert run.data.params["optimizer.lr"] == "0.01"
    assert run.data.params["model.widths"] == "None" and run.data.params["dataset.noise"] == "0.2"
    assert run.data.tags["diverged"] == "false" and run.data.tags["hydra_overrides"] == "dataset=moons"
    for key in ("train_loss", "train_accuracy", "test_loss", "test_accuracy"):
        history = client.get_metric_history(run.info.run_id, key)
        assert sorted(m.step for m in history) == list(range(1, 61))
    assert _history(client, run.info.run_id, "train_loss") == pytest.approx(summary.result.history["train_loss"])
    for key in (
        "final_train_loss",
        "final_train_accuracy",
        "final_test_loss",
        "final_test_accuracy",
        "epochs_run",
        "train_seconds",
    ):
        assert key in run.data.metrics
    assert "epochs_to_threshold" not in run.data.metrics and run.data.tags["reached_threshold"] == "false"
    assert {a.path for a in client.list_artifacts(run.info.run_id)} == ARTIFACTS | EVOLUTION
    inputs = {d.dataset.name: d for d in run.inputs.dataset_inputs}
    assert sorted(inputs) == ["moons-test", "moons-train"]
    assert [t.value for t in inputs["moons-train"].tags] == ["train"] and inputs["moons-train"].dataset.digest
    assert '"seed": "0"' in inputs["moons-test"].dataset.source

    # The logged config and weights rebuild the trained model exactly.
    config_path = client.download_artifacts(run.info.run_id, "config.yaml", str(tmp_path))
    weights_path = client.download_artifacts(run.info.run_id, "weights.npz", str(tmp_path))
    from omegaconf import OmegaConf

    logged = validate(OmegaConf.create(yaml.safe_load(open(config_path))))
    net = build_network(logged)
    net.load(weights_path)
    data = build_dataset(logged)
    accuracy = np.mean(predict_labels(net.predict(data.x_test)) == data.y_test)
    assert accuracy == run.data.metrics["final_test_accuracy"]


def test_metrics_are_sent_in_batches(compose_config, tracking_uri, monkeypatch):
    from src.runs import metric_store

    calls = []
    original = metric_store._insert

    def counting_insert(store, run_id, metrics):
        calls.append(len(metrics))
        return original(store, run_id, metrics)

    monkeypatch.setattr(metric_store, "_insert", counting_insert)
    train_and_track(compose_config("trainer.epochs=1000", "trainer.loss_threshold=null", "optimizer.lr=0.01"))
    metric_calls = [n for n in calls if n]
    # 1000 epochs: the first 250, every 3rd after them and the last, 501 points of
    # (train_loss, train_accuracy), in one insert at the end, or two when the writer's
    # one-second tick comes first (it takes what is pending; the last epoch is queued at
    # the end); then the seven summary metrics (epochs, updates and examples run, seconds,
    # the tail's loss drop, the final loss and accuracy) and 3 layers x 5 statistics at
    # the 12 snapshots in one.
    assert resolution_stride(1000) == 3
    *per_epoch, summary = metric_calls
    assert sum(per_epoch) == 2 * 501 and len(per_epoch) <= 2 and summary == 7 + 3 * 5 * 12
    run = _only_run(MlflowClient(tracking_uri))
    assert len(MlflowClient(tracking_uri).get_metric_history(run.info.run_id, "train_loss")) == 501


def test_reaching_the_threshold_is_recorded(compose_config, tracking_uri):
    summary = train_and_track(compose_config("optimizer=adam"))
    run = _only_run(MlflowClient(tracking_uri))
    metrics = run.data.metrics
    assert metrics["epochs_to_threshold"] == summary.result.epochs_to_threshold == metrics["epochs_run"] - 20
    assert metrics["first_below_threshold"] == metrics["epochs_to_threshold"]
    assert metrics["updates_to_threshold"] == metrics["epochs_to_threshold"]  # full batch: one update an epoch
    assert metrics["examples_to_threshold"] == 21 * metrics["epochs_to_threshold"]
    assert metrics["final_train_loss"] == summary.result.history["train_loss"][-1] < 0.01
    assert run.data.tags["reached_threshold"] == "true"


def test_updates_and_examples_are_counted_per_batch_schedule(compose_config, tracking_uri):
    train_and_track(compose_config("trainer.batch_size=8", "trainer.epochs=30", "trainer.loss_threshold=null"))
    metrics = _only_run(MlflowClient(tracking_uri)).data.metrics
    assert (metrics["epochs_run"], metrics["updates_run"], metrics["examples_run"]) == (30, 30 * 3, 30 * 21)


def test_diverging_run_is_tagged_and_keeps_its_history(compose_config, tracking_uri):
    summary = train_and_track(compose_config("optimizer.lr=1e30", "model.output_activation=identity"))
    client = MlflowClient(tracking_uri)
    run = _only_run(client)
    assert summary.result.diverged
    assert run.info.status == "FINISHED" and run.data.tags["diverged"] == "true"
    assert len(client.get_metric_history(run.info.run_id, "train_loss")) == summary.result.epochs_run >= 1
    assert {a.path for a in client.list_artifacts(run.info.run_id)} == ARTIFACTS | EVOLUTION


def _fail_after(monkeypatch, steps, exception):
    original, count = SGD._update, {"n": 0}

    def failing_update(self, g):
        count["n"] += 1
        if count["n"] > steps:
            raise exception
        original(self, g)

    monkeypatch.setattr(SGD, "_update", failing_update)


def test_failing_run_is_marked_failed_and_keeps_what_it_logged(compose_config, tracking_uri, monkeypatch):
    _fail_after(monkeypatch, 5, RuntimeError("boom"))
    with pytest.raises(RuntimeError, match="boom"):
        train_and_track(compose_config("trainer.loss_threshold=null"))
    client = MlflowClient(tracking_uri)
    run = _only_run(client)
    assert run.info.status == "FAILED"
    assert len(client.get_metric_history(run.info.run_id, "train_loss")) == 5
    assert run.data.params["optimizer.name"] == "sgd"


def test_interrupted_run_is_marked_killed_and_keeps_what_it_logged(compose_config, tracking_uri, monkeypatch):
    _fail_after(monkeypatch, 7, KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        train_and_track(compose_config("trainer.loss_threshold=null"))
    client = MlflowClient(tracking_uri)
    run = _only_run(client)
    assert run.info.status == "KILLED" and run.data.tags["interrupted"] == "true"
    assert len(client.get_metric_history(run.info.run_id, "train_accuracy")) == 7


def test_runs_go_to_the_configured_experiment_and_uri(compose_config, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    other = f"sqlite:///{tmp_path / 'other.db'}"
    train_and_track(compose_config(f"tracking.uri={other}", "tracking.experiment=elsewhere", "trainer.epochs=3"))
    client = MlflowClient(other)
    experiment = client.get_experiment_by_name("elsewhere")
    assert len(client.search_runs([experiment.experiment_id])) == 1
    assert not (tmp_path / "mlflow.db").exists()


def _new_run(tracking_uri):
    client = MlflowClient(tracking_uri)
    return client, client.create_run(client.create_experiment("writer")).info.run_id


def _steps(client, run_id, key):
    return [m.step for m in sorted(client.get_metric_history(run_id, key), key=lambda m: m.step)]


def test_writer_sends_every_epoch_of_a_short_run(tracking_uri):
    client, run_id = _new_run(tracking_uri)
    writer = MetricWriter(client, run_id, max_epochs=MAX_POINTS_PER_METRIC, outage_seconds=0)
    for epoch in range(1, MAX_POINTS_PER_METRIC + 1):
        writer.add(epoch, {"a": epoch * 0.5, "b": -epoch})
    writer.close()
    assert writer.pending == [] and writer.sent_points == 2 * MAX_POINTS_PER_METRIC
    history = sorted(client.get_metric_history(run_id, "a"), key=lambda m: m.step)
    assert [m.value for m in history] == [epoch * 0.5 for epoch in range(1, MAX_POINTS_PER_METRIC + 1)]


def test_writer_thins_long_runs_but_keeps_the_first_and_last_epochs(tracking_uri):
    client, run_id = _new_run(tracking_uri)
    writer = MetricWriter(client, run_id, max_epochs=50_000, outage_seconds=0)
    for epoch in range(1, 31_234):  # stopped early, at an epoch off the stride
        writer.add(epoch, {"a": float(epoch)})
    writer.close()
    steps = _steps(client, run_id, "a")
    stride = resolution_stride(50_000)
    assert stride == 199
    assert steps[:FULL_RESOLUTION_EPOCHS] == list(range(1, FULL_RESOLUTION_EPOCHS + 1))
    assert steps[FULL_RESOLUTION_EPOCHS:-1] == list(range(398, 31_233, stride))
    assert steps[-1] == 31_233 and len(steps) <= MAX_POINTS_PER_METRIC + 1


def test_writer_takes_a_stacked_runs_epochs_at_once_as_one_by_one(tracking_uri):
    client, run_id = _new_run(tracking_uri)
    rng = np.random.default_rng(0)
    history = {"a": rng.normal(size=3_001).tolist(), "b": rng.normal(size=3_001).tolist()}
    timestamps = 1.7e9 + np.cumsum(rng.uniform(0, 0.0015, size=3_001))
    writers = [MetricWriter(client, run_id, max_epochs=5_000, outage_seconds=0, flush_seconds=3600) for _ in "ab"]
    for epoch, stamp in enumerate(timestamps, start=1):
        writers[0].add(epoch, {key: values[epoch - 1] for key, values in history.items()}, stamp)
    writers[1].add_epochs(history, timestamps)
    assert writers[1].points == writers[0].points and len(writers[1].points) == 3_001
    assert writers[1].pending == writers[0].pending
    assert writers[1].pending[-1][0] == 3_001 // writers[1].stride * writers[1].stride  # the last: on close
    writers[1].close()
    assert _steps(client, run_id, "a")[-1] == 3_001
    writers[0]._stopped.set()


def test_writer_sends_while_the_run_trains_with_real_timestamps(tracking_uri):
    client, run_id = _new_run(tracking_uri)
    writer = MetricWriter(client, run_id, max_epochs=100, outage_seconds=0, flush_seconds=0.05)
    started = time.time() * 1000
    for epoch in range(1, 11):
        writer.add(epoch, {"a": float(epoch)})
    deadline = time.monotonic() + 30
    while len(client.get_metric_history(run_id, "a")) < 10 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _steps(client, run_id, "a") == list(range(1, 11))  # before close()
    writer.close()
    assert all(started - 1 <= m.timestamp <= time.time() * 1000 for m in client.get_metric_history(run_id, "a"))


def test_writer_keeps_points_until_the_store_accepts_them(tracking_uri, monkeypatch):
    from src.runs import metric_writer

    client, run_id = _new_run(tracking_uri)
    failures = [ConnectionError("store unreachable")] * 2

    def flaky_log_metrics(client, run_id, metrics):
        if failures:
            raise failures.pop()
        log_metrics(client, run_id, metrics)

    monkeypatch.setattr(metric_writer, "log_metrics", flaky_log_metrics)
    epochs = MAX_POINTS_PER_METRIC
    writer = MetricWriter(client, run_id, max_epochs=epochs, outage_seconds=0, flush_seconds=3600)
    for epoch in range(1, epochs + 1):
        writer.add(epoch, {"a": float(epoch)})
    for _ in range(2):
        with pytest.raises(ConnectionError):
            writer.send()
        assert len(writer.pending) == epochs
    writer.close()
    assert _steps(client, run_id, "a") == list(range(1, epochs + 1))


def test_model_templates_are_built_once_and_reused_across_processes(
    compose_config, tracking_uri, tmp_path, monkeypatch
):
    from src.runs import pyfunc_model

    monkeypatch.setattr(sys, "path", list(sys.path))  # loading a model puts its code first on the path
    builds = []
    original = pyfunc_model._build_template
    monkeypatch.setattr(pyfunc_model, "_build_template", lambda *args: builds.append(args) or original(*args))
    monkeypatch.setattr(pyfunc_model, "_TEMPLATES", {})
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    for name, days in (("unused", pyfunc_model.TEMPLATE_DAYS + 1), ("recent", pyfunc_model.TEMPLATE_DAYS - 1)):
        (pyfunc_model.template_cache() / name).mkdir(parents=True)
        then = time.time() - days * 86400
        os.utime(pyfunc_model.template_cache() / name, (then, then))
    first = train_and_track(compose_config("trainer.epochs=5", "tracking.log_figures=false"))
    pyfunc_model._TEMPLATES.clear()  # as in a new process
    second = train_and_track(compose_config("trainer.epochs=5", "tracking.log_figures=false", "trainer.seed=1"))
    assert len(builds) == 1
    client = MlflowClient(tracking_uri)
    uris = {client.get_run(s.run_id).data.tags["model_uri"] for s in (first, second)}
    assert len(uris) == 2 and all(uri.startswith("models:/m-") for uri in uris)
    cached = sorted(p.name for p in pyfunc_model.template_cache().iterdir())
    assert len(cached) == 2 and "recent" in cached and not any(p.startswith(("building-", "staging-")) for p in cached)
    # a local artifact store gets the model assembled in place: the template's files linked, the run's its own
    (template,) = (p / "model" for p in pyfunc_model.template_cache().iterdir() if p.name != "recent")
    for uri in uris:
        model = Path(client.get_logged_model(uri.removeprefix("models:/")).artifact_location)
        assert os.path.samefile(model / "conda.yaml", template / "conda.yaml")
        assert not os.path.samefile(model / "MLmodel", template / "MLmodel")
        probabilities = mlflow.pyfunc.load_model(uri).predict(np.array([[0.0, 1.0], [1.0, 1.0]]))
        assert probabilities.shape == (2, 2) and np.allclose(probabilities.sum(axis=1), 1)


def test_a_sqlite_store_commits_through_a_write_ahead_log(tracking_uri, tmp_path):
    import sqlite3

    client, _ = open_experiment(tracking_uri, "wal")
    with sqlite3.connect(tmp_path / "mlflow.db") as other:  # the mode is the database file's
        assert other.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    with client._tracking_client.store.engine.connect() as connection:  # and each connection syncs less
        assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL


def test_a_sqlite_store_on_a_network_file_system_keeps_sqlites_defaults(tmp_path, monkeypatch):
    import sqlite3

    from src.runs import tracking

    mounts = tmp_path / "mounts"
    escaped = str(tmp_path / "shared" / "my dir").replace(" ", "\\040")  # as the mount table writes a space
    table = ["/dev/vda1 / ext4 rw 0 0", f"server:/export {tmp_path / 'shared'} nfs4 rw 0 0"]
    mounts.write_text("\n".join([*table, f"me@host:/x {escaped} fuse.sshfs rw 0 0"]) + "\n")
    assert tracking.filesystem_type("/home/me", str(mounts)) == "ext4"
    assert tracking.filesystem_type(str(tmp_path / "shared" / "lab"), str(mounts)) == "nfs4"
    assert tracking.filesystem_type(str(tmp_path / "shared" / "my dir" / "a"), str(mounts)) == "sshfs"
    assert tracking.filesystem_type(str(tmp_path / "sharedx"), str(mounts)) == "ext4"
    assert tracking.filesystem_type("/", str(tmp_path / "absent")) is None

    (tmp_path / "shared").mkdir()
    monkeypatch.setattr(tracking, "filesystem_type", lambda directory: "nfs4" if "shared" in directory else "ext4")
    client, _ = open_experiment(f"sqlite:///{tmp_path / 'shared' / 'mlflow.db'}", "on-nfs")
    with sqlite3.connect(tmp_path / "shared" / "mlflow.db") as other:
        assert other.execute("PRAGMA journal_mode").fetchone() == ("delete",)
    with client._tracking_client.store.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL, sqlite's default


def test_bad_training_is_tagged_and_said(compose_config, tracking_uri, caplog):
    """Three overlapping blobs at SGD's default lr 1.0: the test loss doubles from epoch 16
    while the training loss keeps falling. With L2 and lr 0.1 (the README's example) it
    does not."""
    import logging

    from src.runs.tracked_run import training_warnings

    with caplog.at_level(logging.WARNING):
        overfit = train_and_track(compose_config("dataset=blobs3", "dataset.test_fraction=0.25"))
    client = MlflowClient(tracking_uri)
    tags = client.get_run(overfit.run_id).data.tags
    assert (tags["overfitting"], tags["unstable"]) == ("true", "false")
    assert f"{overfit.name}: OVERFITTING: the test loss rose" in caplog.text
    good = train_and_track(
        compose_config("dataset=blobs3", "dataset.test_fraction=0.25", "optimizer.lr=0.1", "trainer.l2=0.01")
    )
    assert client.get_run(good.run_id).data.tags["overfitting"] == "false"
    # the unstable rule on a made-up history: ended at 3 times its best
    assert set(training_warnings({"train_loss": [0.5, 0.1, 0.3]})) == {"unstable"}
    assert training_warnings({"train_loss": [0.5, 0.1, 0.19]}) == {}


def test_an_explicit_run_name_keeps_the_config_as_its_setting(compose_config, tracking_uri):
    summary = train_and_track(compose_config("tracking.run_name=mine", "trainer.epochs=3"))
    run = MlflowClient(tracking_uri).get_run(summary.run_id)
    assert run.info.run_name == "mine" and run.data.tags["setting"] == "xor-sgd-2x8-tanh-s0"


def test_git_tags_name_the_working_directorys_commit_branch_and_dirtiness(tmp_path, monkeypatch):
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q", "-b", "study", str(tmp_path)], check=True)
    (tmp_path / "a.txt").write_text("a")
    subprocess.run([*git, "-C", str(tmp_path), "add", "a.txt"], check=True)
    subprocess.run([*git, "-C", str(tmp_path), "commit", "-q", "-m", "a"], check=True)
    commit = subprocess.run(["git", "-C", str(tmp_path), "rev-parse", "HEAD"], capture_output=True, text=True)
    monkeypatch.chdir(tmp_path)
    expected = {"mlflow.source.git.commit": commit.stdout.strip(), "mlflow.source.git.branch": "study"}
    (tmp_path / "mine.db").write_text("an untracked file")
    assert git_tags.__wrapped__() == {**expected, "git_dirty": "false"}
    (tmp_path / "a.txt").write_text("b")
    assert git_tags.__wrapped__() == {**expected, "git_dirty": "true"}
    subprocess.run(["git", "-C", str(tmp_path), "checkout", "-q", "--detach"], check=True)
    assert "mlflow.source.git.branch" not in git_tags.__wrapped__()
    monkeypatch.chdir(tmp_path.parent)
    assert git_tags.__wrapped__() == {}  # not a checkout


def test_context_tags_are_mlflows_own_but_gits():
    tags = context_tags.__wrapped__()
    assert tags["mlflow.source.type"] == "LOCAL" and tags["mlflow.user"] and tags["mlflow.source.name"]
    assert not any(key.startswith("mlflow.source.git") for key in tags)


def test_a_run_outside_ipython_does_not_import_it():
    code = "from src.runs.tracking import context_tags; import sys; context_tags(); print('IPython' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.stdout.split() == ["False"], proc.stderr[-2000:]


def test_dataset_inputs_are_logged_once_more_after_a_conflict(compose_config, tracking_uri, monkeypatch):
    """Runs starting at once can race to insert the same dataset (MLflow looks it up, then
    inserts it): the run that lost logs its inputs again and links the dataset the other
    inserted; a store that refuses twice fails the run as before."""
    from mlflow.exceptions import MlflowException

    original = MlflowClient.log_inputs
    calls = []

    def racing(self, run_id, datasets=None, models=None):
        calls.append(run_id)
        if len(calls) == 1:
            raise MlflowException('duplicate key value violates unique constraint "dataset_pk"')
        return original(self, run_id, datasets=datasets, models=models)

    monkeypatch.setattr(MlflowClient, "log_inputs", racing)
    summary = train_and_track(compose_config("trainer.epochs=5", "tracking.log_figures=false"))
    run = MlflowClient(tracking_uri).get_run(summary.run_id)
    assert len(calls) == 2 and [d.dataset.name for d in run.inputs.dataset_inputs] == ["xor-train"]

    def refusing(self, run_id, datasets=None, models=None):
        raise MlflowException("the store refuses")

    monkeypatch.setattr(MlflowClient, "log_inputs", refusing)
    with pytest.raises(MlflowException, match="refuses"):
        train_and_track(compose_config("trainer.epochs=5", "tracking.log_figures=false", "trainer.seed=1"))


def test_a_run_uploads_its_artifacts_without_reading_itself_back(compose_config, tracking_uri, monkeypatch):
    """Artifacts go to the repository of the artifact URI ``create_run`` returned, not
    through a ``get_run`` of the whole run per upload."""
    from mlflow.tracking._tracking_service.client import TrackingServiceClient

    reads = []
    read = TrackingServiceClient.get_run
    monkeypatch.setattr(
        TrackingServiceClient, "get_run", lambda self, run_id: reads.append(run_id) or read(self, run_id)
    )
    summary = train_and_track(compose_config("trainer.epochs=20"))
    assert reads == []
    client = MlflowClient(tracking_uri)
    assert {a.path for a in client.list_artifacts(summary.run_id)} == ARTIFACTS | EVOLUTION
    looked_up = RunArtifacts(client, summary.run_id)  # without the URI: read once
    assert reads == [summary.run_id]
    assert looked_up.repository.artifact_uri == client.get_run(summary.run_id).info.artifact_uri
