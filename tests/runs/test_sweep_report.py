"""A sweep's parent run is its report: swept values as params, job counts as metrics, the
summary table and the overlay figure as artifacts, and a ranked table on the console."""

import csv


def test_the_parent_holds_the_report_and_the_console_ranks_every_setting(tmp_path, train_cli, sweep_runs):
    proc = train_cli(
        "optimizer=sgd,adam",
        "optimizer.lr=0.01,0.1",
        "trainer.seed=0,1,2",
        "trainer.epochs=200",
        "tracking.log_figures=false",
        "tracking.log_model=false",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    client, (parent,), children = sweep_runs()
    assert parent.info.status == "FINISHED" and len(children) == 12
    assert parent.data.params == {"optimizer": "sgd, adam", "optimizer.lr": "0.01, 0.1", "trainer.seed": "0, 1, 2"}
    reached = sum("epochs_to_threshold" in r.data.metrics for r in children)
    assert parent.data.metrics == {
        "jobs_finished": 12,
        "jobs_failed": 0,
        "jobs_diverged": 0,
        "jobs_reached_threshold": reached,
    }
    # two swept numbers besides the seed? only optimizer.lr is numeric here: no heatmap
    assert {a.path for a in client.list_artifacts(parent.info.run_id)} == {
        "sweep_summary.csv",
        "sweep_learning_curves.png",
    }
    with open(client.download_artifacts(parent.info.run_id, "sweep_summary.csv", str(tmp_path))) as handle:
        rows = list(csv.DictReader(handle))
    assert sorted(row["run_name"] for row in rows) == sorted(r.info.run_name for r in children)
    assert {row["optimizer.lr"] for row in rows} == {"0.01", "0.1"}
    # the closing table: 4 settings of 3 seeds, adam at lr 0.1 first, plain SGD not there
    console = proc.stdout + proc.stderr
    table = console[console.index("Sweep finished:") :]
    lines = table.splitlines()[1:6]
    assert lines[0].split()[:2] == ["rank", "setting"]
    assert "optimizer=adam lr=0.1" in lines[1] and lines[1].split()[-7:-3] == ["3", "3", "0", "0"]
    assert all("not reached" in line for line in lines[3:5])
    assert "Browse: uv run mlflow ui --backend-store-uri" in table
    assert f"/runs/{parent.info.run_id}?workflowType=machine_learning" in table  # the UI's model-training view


def test_a_failed_sweep_reports_what_finished(train_cli, sweep_runs):
    proc = train_cli(
        "trainer.gradcheck=true",
        "trainer.gradcheck_tolerance=1e-30,1e-3",
        "trainer.epochs=20",
        "tracking.log_figures=false",
        "tracking.log_model=false",
    )
    assert proc.returncode == 1
    client, (parent,), children = sweep_runs()
    assert parent.info.status == "FAILED"
    assert parent.data.metrics["jobs_failed"] == 1 and parent.data.metrics["jobs_finished"] == 1
    assert "Sweep failed:" in proc.stdout + proc.stderr


def test_two_numeric_swept_keys_get_a_heatmap(train_cli, sweep_runs):
    proc = train_cli(
        "optimizer.lr=0.1,1",
        "model.width=2,8",
        "trainer.epochs=300",
        "tracking.log_figures=false",
        "tracking.log_model=false",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    client, (parent,), _ = sweep_runs()
    assert "sweep_heatmap.png" in {a.path for a in client.list_artifacts(parent.info.run_id)}


def test_the_report_figures_are_drawn_by_the_sweeps_figure_worker(compose_config, tracking_uri, monkeypatch):
    """With a figure worker (jobs in this process, figures on) the sweep's process draws
    no report figure: the worker draws them and they reach the parent when it closes."""
    from mlflow.tracking import MlflowClient

    from src.runs import figure_worker, sweep_report
    from src.runs.tracked_run import JobContext, train_and_track
    from src.runs.tracking import open_experiment

    client, experiment_id = open_experiment(tracking_uri, "backprop")
    parent = client.create_run(experiment_id).info.run_id
    for lr in (0.1, 1.0):
        cfg = compose_config(f"optimizer.lr={lr}", "trainer.epochs=30", "tracking.log_figures=false")
        train_and_track(cfg, JobContext(parent_run_id=parent, tags={"job_num": str(int(lr))}))

    def not_here(self, out_dir):
        raise AssertionError("the report's figures were drawn in the sweep's process")

    monkeypatch.setattr(sweep_report.SweepFigures, "draw", not_here)
    monkeypatch.setattr(figure_worker, "_shared", None)
    monkeypatch.setattr(figure_worker, "_sweep_in_this_process", False)
    figure_worker.sweep_starts(draws=True)
    worker = figure_worker.running()
    assert worker is not None
    sweep_report.write_report(client, experiment_id, parent, ["optimizer.lr"])
    assert {a.path for a in MlflowClient(tracking_uri).list_artifacts(parent)} == {"sweep_summary.csv"}
    figure_worker.close_shared()
    assert figure_worker.running() is None
    assert {a.path for a in client.list_artifacts(parent)} == {"sweep_summary.csv", "sweep_learning_curves.png"}
