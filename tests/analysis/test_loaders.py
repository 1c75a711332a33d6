"""The notebooks' data layer and the Studies report, against a tiny real sweep of every preset."""

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from src.analysis.loaders import list_sweeps, load_history, load_runs, load_trained, parse_param, varying_params
from src.analysis.report import BEGIN, END, studies_table, update_readme
from src.analysis.studies import all_studies, markdown_table

STUDIES = all_studies()

REPO = Path(__file__).resolve().parents[2]


def test_params_are_typed():
    assert parse_param("0.01") == 0.01 and parse_param("3") == 3 and parse_param("None") is None
    assert parse_param("True") is True and parse_param("[4, 2]") == [4, 2] and parse_param("xor") == "xor"
    assert parse_param("1e+30") == 1e30 and parse_param("sqlite:///x.db") == "sqlite:///x.db"


def test_load_runs_gives_one_typed_row_per_run(study_store):
    uri, _ = study_store
    every = load_runs("study-optimizers", tracking_uri=uri)
    assert len(every) == 8 and set(every["study.phase"]) == {"tune", "report"}
    runs = STUDIES["optimizers"].judged(every)
    assert len(runs) == 4 and set(runs["status"]) == {"FINISHED"}
    assert sorted(runs["optimizer.name"]) == ["adam", "adam", "sgd", "sgd"]
    assert runs["optimizer.lr"].dtype == float and runs["trainer.seed"].dtype.kind == "i"
    assert runs["diverged"].dtype == bool and runs["parent_run_id"].nunique() == 1
    for column in ("final_train_accuracy", "epochs_run", "epochs_to_threshold", "epochs_to_full_accuracy"):
        assert column in runs
    assert runs["epochs_to_threshold"].dtype == float  # NaN where the threshold was not reached
    assert set(varying_params(runs)) >= {"optimizer.name", "optimizer.lr", "trainer.seed"}


def test_sweeps_are_selected_by_latest_id_or_directory(study_store):
    uri, sweep_root = study_store
    sweeps = list_sweeps("study-capacity", tracking_uri=uri)
    assert len(sweeps) == 1 and sweeps["sweep_dir"][0] == str(sweep_root / "capacity")
    assert sweeps["launcher"][0] == "stacked"  # the preset's, not on the command line
    latest = load_runs("study-capacity", tracking_uri=uri)
    by_id = load_runs("study-capacity", sweep=sweeps["parent_run_id"][0], tracking_uri=uri)
    by_dir = load_runs("study-capacity", sweep="multirun/capacity", tracking_uri=uri)
    everything = load_runs("study-capacity", sweep="all", tracking_uri=uri)
    assert len(latest) == len(by_id) == len(by_dir) == len(everything) == 8
    with pytest.raises(ValueError, match="no sweep"):
        load_runs("study-capacity", sweep="nowhere", tracking_uri=uri)
    with pytest.raises(ValueError, match="no experiment named"):
        load_runs("study-nothing", tracking_uri=uri)


def test_history_is_long_and_joined_with_the_swept_params(study_store):
    uri, _ = study_store
    runs = load_runs("study-optimizers", tracking_uri=uri)
    history = load_history(runs, metrics=["train_loss", "train_accuracy"], tracking_uri=uri)
    assert list(history.columns[:4]) == ["run_id", "epoch", "metric", "value"]
    assert {"dataset.name", "trainer.seed", "optimizer.name"} <= set(history.columns)
    counts = history[history["metric"] == "train_loss"].groupby("run_id").size()
    assert counts.to_dict() == runs.set_index("run_id")["epochs_run"].astype(int).to_dict()


def test_history_falls_back_to_metric_history_without_the_artifact(study_store):
    uri, _ = study_store
    runs = load_runs("study-losses", tracking_uri=uri)
    first = runs.iloc[[0]]
    from_artifact = load_history(first, tracking_uri=uri)
    artifact = Path(first["artifact_uri"].iloc[0].removeprefix("file://")) / "history.parquet"
    backup = artifact.with_suffix(".bak")
    shutil.move(artifact, backup)
    try:
        from_metrics = load_history(first, tracking_uri=uri)
    finally:
        shutil.move(backup, artifact)
    pd.testing.assert_frame_equal(from_artifact, from_metrics)


def test_load_trained_rebuilds_the_network_and_its_data(study_store):
    uri, _ = study_store
    runs = load_runs("study-capacity", tracking_uri=uri)
    run = runs.iloc[0]
    net, data = load_trained(run, tracking_uri=uri)
    from src.engine.encoding import predict_labels

    accuracy = np.mean(predict_labels(net.predict(data.x_test)) == data.y_test)
    assert accuracy == run["final_test_accuracy"]


def test_every_study_summarises_its_runs(study_store):
    uri, _ = study_store
    for study in STUDIES.values():
        runs = load_runs(study.experiment, tracking_uri=uri)
        table = study.summary(runs)
        assert table["runs"].sum() == len(study.judged(runs))
        if study.tuned:  # one tuning seed per value and setting, two report seeds per setting
            assert len(study.tuning(runs)) == len(runs) - len(study.judged(runs)) == 2 * len(table)
            assert study.tuning(runs)["chosen"].sum() == len(table)
        assert study.headline(runs)
        assert markdown_table(table).count("\n") == len(table) + 1


def test_studies_table_is_written_into_the_readme(study_store, tmp_path):
    uri, _ = study_store
    table = studies_table(uri)
    assert table.count("\n") == len(STUDIES) + 1
    assert "python -m src.train -m +experiment=capacity" in table and "not run yet" not in table
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{BEGIN}\nold\n{END}\noutro\n")
    update_readme(readme, table)
    assert readme.read_text() == f"intro\n{BEGIN}\n{table}\n{END}\noutro\n"
    assert BEGIN in (REPO / "README.md").read_text() and END in (REPO / "README.md").read_text()


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory):
    """A real ``mlflow server`` on a free loopback port, with its own store and artifacts."""
    import os
    import signal
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    root = tmp_path_factory.mktemp("server")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    command = [
        sys.executable,
        "-m",
        "mlflow",
        "server",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
        "--backend-store-uri",
        f"sqlite:///{root / 'server.db'}",
        "--artifacts-destination",
        str(root / "artifacts"),
    ]
    server = subprocess.Popen(
        command, cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(f"{url}/health", timeout=1)
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError("mlflow server did not start") from None
                time.sleep(0.25)
        yield url
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


@pytest.mark.slow
def test_loaders_work_against_an_mlflow_server(mlflow_server, compose_config, tmp_path, monkeypatch):
    from mlflow.tracking import MlflowClient

    from src.runs.tracked_run import train_and_track

    monkeypatch.chdir(tmp_path)
    for seed in (0, 1):
        train_and_track(
            compose_config(
                f"tracking.uri={mlflow_server}",
                "tracking.experiment=served",
                f"trainer.seed={seed}",
                "trainer.epochs=25",
                "trainer.loss_threshold=null",
                "tracking.log_figures=false",
            )
        )
    runs = load_runs("served", sweep="all", tracking_uri=mlflow_server)
    assert len(runs) == 2 and all(uri.startswith("mlflow-artifacts:") for uri in runs["artifact_uri"])
    history = load_history(runs, tracking_uri=mlflow_server)
    client = MlflowClient(mlflow_server)
    for run_id in runs["run_id"]:
        logged = [m.value for m in sorted(client.get_metric_history(run_id, "train_loss"), key=lambda m: m.step)]
        mine = history[(history["run_id"] == run_id) & (history["metric"] == "train_loss")].sort_values("epoch")
        assert mine["value"].tolist() == logged
    net, data = load_trained(runs.iloc[0], tracking_uri=mlflow_server)
    assert net.sizes == [2, 8, 8, 1] and len(data.y_train) == 21
    assert not list(tmp_path.iterdir())  # nothing was written to a local store
