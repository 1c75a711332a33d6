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
