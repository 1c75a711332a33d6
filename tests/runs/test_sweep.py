"""End-to-end: the README's multirun, launched as a subprocess into a temporary store."""

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from mlflow.tracking import MlflowClient
from omegaconf import OmegaConf

from src.engine.encoding import predict_labels
from src.runs.build import build_dataset, load_network
from src.runs.config import validate
from src.runs.sweep import SweepPlan

REPO = Path(__file__).resolve().parents[2]
FIGURES = {"learning_curve.png", "decision_boundary.png", "ground_truth_vs_prediction.png"}


@pytest.mark.slow
def test_optimizer_sweep_is_tracked_as_parent_and_children(tmp_path, tracking_uri, train_cli, sweep_runs):
    epochs = 40
    proc = train_cli("optimizer=sgd,momentum,adagrad,adam", f"trainer.epochs={epochs}", "trainer.loss_threshold=null")
    assert proc.returncode == 0, proc.stderr[-3000:]
    console = proc.stdout + proc.stderr
    # MLflow's own chatter stays below WARNING, and the model needs no installed pip
    assert " INFO mlflow" not in console and "WARNING mlflow" not in console, console[-3000:]
    client, (parent,), children = sweep_runs()
    assert parent.info.status == "FINISHED"
    assert (tmp_path / "multirun" / "mlflow_parent_run_id").read_text() == parent.info.run_id
    assert sorted(r.data.params["optimizer.name"] for r in children) == ["adagrad", "adam", "momentum", "sgd"]
    assert sorted(r.data.tags["job_num"] for r in children) == ["0", "1", "2", "3"]

    for run in children:
        run_id = run.info.run_id
        assert run.info.status == "FINISHED"
        assert run.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert run.data.params["trainer.epochs"] == str(epochs) and "model.activation" in run.data.params
        for key in ("train_loss", "train_accuracy"):
            assert len(client.get_metric_history(run_id, key)) == epochs == run.data.metrics["epochs_run"]
        artifacts = {a.path for a in client.list_artifacts(run_id)}
        assert FIGURES | {"weights.npz", "config.yaml"} <= artifacts

        # Reload the weights with the logged config: they reproduce the logged accuracy.
        local = tmp_path / "download" / run_id
        local.mkdir(parents=True)
        logged = validate(
            OmegaConf.create(yaml.safe_load(open(client.download_artifacts(run_id, "config.yaml", str(local)))))
        )
        net = load_network(logged, client.download_artifacts(run_id, "weights.npz", str(local)))
        data = build_dataset(logged)
        accuracy = np.mean(predict_labels(net.predict(data.x_train)) == data.y_train)
        assert accuracy == run.data.metrics["final_train_accuracy"]
        assert (
            OmegaConf.to_container(OmegaConf.structured(logged))["optimizer"]["name"]
            == run.data.params["optimizer.name"]
        )


@pytest.mark.slow
def test_joblib_sweep_links_every_child_and_lands_every_point(tmp_path, tracking_uri, train_cli, sweep_runs):
    from src.analysis.loaders import load_history, load_runs
    from src.runs.metric_writer import FULL_RESOLUTION_EPOCHS

    epochs = FULL_RESOLUTION_EPOCHS  # every epoch reaches MLflow's metric history
    proc = train_cli(
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
        "trainer.seed=range(4)",
        f"trainer.epochs={epochs}",
        "trainer.loss_threshold=null",
        "tracking.log_figures=false",
        "tracking.log_model=false",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    client, (parent,), children = sweep_runs()
    assert parent.info.status == "FINISHED" and len(children) == 4
    assert sorted(r.data.params["trainer.seed"] for r in children) == ["0", "1", "2", "3"]
    for run in children:
        assert run.info.status == "FINISHED" and run.data.tags["mlflow.parentRunId"] == parent.info.run_id
        for key in ("train_loss", "train_accuracy"):
            assert len(client.get_metric_history(run.info.run_id, key)) == epochs
    history = load_history(load_runs("backprop", tracking_uri=tracking_uri), tracking_uri=tracking_uri)
    assert history.groupby("run_id").size().tolist() == [2 * epochs] * 4


@pytest.mark.slow
def test_diverging_and_invalid_jobs_do_not_stop_the_sweep(tmp_path, tracking_uri, train_cli, sweep_runs):
    proc = train_cli("optimizer.lr=1e30,-1,0.5", "model.output_activation=identity", "trainer.epochs=30")
    assert proc.returncode != 0  # the invalid job is reported as an error at the end of the sweep
    assert "optimizer.lr: invalid value -1.0" in proc.stderr
    client, (parent,), children = sweep_runs()
    assert parent.info.status == "FAILED"
    by_lr = {r.data.params["optimizer.lr"]: r for r in children}
    assert set(by_lr) == {"1e+30", "0.5"}  # the invalid job created no run
    assert by_lr["1e+30"].data.tags["diverged"] == "true" and by_lr["1e+30"].info.status == "FINISHED"
    assert by_lr["0.5"].data.tags["diverged"] == "false" and by_lr["0.5"].info.status == "FINISHED"


@pytest.mark.slow
def test_invalid_single_run_prints_one_line_and_tracks_nothing(tmp_path, tracking_uri, train_cli):
    proc = train_cli("optimizer.lr=-1", multirun=False)
    assert proc.returncode == 1
    assert (
        proc.stderr.strip().splitlines()[-1]
        == "error: invalid config: optimizer.lr: invalid value -1.0; expected a number > 0"
    )
    assert not (tmp_path / "mlflow.db").exists() and not (tmp_path / "mlruns").exists()


@pytest.mark.slow
def test_logged_pyfunc_model_predicts_in_a_fresh_process(compose_config, tmp_path, tracking_uri):
    from src.runs.tracked_run import train_and_track

    summary = train_and_track(
        compose_config(
            "dataset=blobs",
            "dataset.n_classes=3",
            "loss=cross_entropy",
            "optimizer=adam",
            "trainer.epochs=300",
            "trainer.loss_threshold=null",
        )
    )
    client = MlflowClient(tracking_uri)
    model_uri = client.get_run(summary.run_id).data.tags["model_uri"]
    run = validate(
        OmegaConf.create(yaml.safe_load(open(client.download_artifacts(summary.run_id, "config.yaml", str(tmp_path)))))
    )
    data = build_dataset(run)
    np.save(tmp_path / "x.npy", data.x_train)
    # The package is installed (editable) from this checkout: hide it, so that the model
    # can only load with the code it carries.
    script = (
        "import os, sys\n"
        f"sys.path[:] = [p for p in sys.path if os.path.realpath(p or '.') != {str(REPO)!r}]\n"
        "import numpy as np, mlflow.pyfunc\n"
        f"model = mlflow.pyfunc.load_model({model_uri!r})\n"
        f"np.save({str(tmp_path / 'p.npy')!r}, np.asarray(model.predict(np.load({str(tmp_path / 'x.npy')!r}))))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    probabilities = np.load(tmp_path / "p.npy")
    assert probabilities.shape == (len(data.y_train), 3)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0)
    accuracy = np.mean(probabilities.argmax(axis=1) == data.y_train)
    assert accuracy == summary.final_metrics["final_train_accuracy"]


def test_the_time_left_is_paced_by_the_jobs_done_since_their_own_work_began():
    now = time.time()
    assert SweepPlan(jobs=64, started=now - 100).progress(0).endswith("about 6300 s left")
    # a stacked launcher trained every job's network in the first 98 s
    paced = SweepPlan(jobs=64, started=now - 100, paced_from=now - 2).progress(0)
    assert paced == "job 1/64, sweep 100 s in, about 126 s left"
    assert SweepPlan(started=now - 5).progress(2) == "job 3, sweep 5 s in"


def _ready() -> tuple[int, bool]:
    """This worker's pid, and whether it imported what a job runs and opened the store."""
    import os
    import sys

    imported = all(m in sys.modules for m in ("mlflow.tracking", "matplotlib", "src.runs.tracked_run"))
    from src.runs.tracking import _freeze_imported  # called once a store is open (``open_experiment``)

    return os.getpid(), imported and _freeze_imported.cache_info().currsize == 1


def test_joblib_workers_start_with_the_sweep_and_serve_its_jobs(tracking_uri):
    """The sweep starts the joblib launcher's workers while it creates its parent: they
    import what a job runs and open the store, and the launcher's ``Parallel`` (configured
    the same) reuses them."""
    from hydra import compose, initialize_config_dir
    from joblib import Parallel, delayed

    from src.runs.config import CONF_DIR
    from src.runs.sweep import joblib_settings, start_joblib_workers

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        basic = compose("config", ["hydra/launcher=basic"], return_hydra_config=True)
        assert start_joblib_workers(basic, tracking_uri, "backprop") is None
        # one worker: joblib runs the jobs in this process, which imports what they need itself
        single = compose("config", ["hydra/launcher=joblib", "hydra.launcher.n_jobs=1"], return_hydra_config=True)
        assert start_joblib_workers(single, tracking_uri, "backprop") is None
        config = compose("config", ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"], return_hydra_config=True)
    warming = start_joblib_workers(config, tracking_uri, "backprop")
    warming.join()
    assert not warming.daemon  # loky's threads take after it; a daemon's would hang the exit
    answers = Parallel(**joblib_settings(config))(delayed(_ready)() for _ in range(8))
    assert {ready for _, ready in answers} == {True} and len({pid for pid, _ in answers}) <= 2
    assert MlflowClient(tracking_uri).get_experiment_by_name("backprop") is not None
