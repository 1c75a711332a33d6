"""``python -m src.runs.stale``: runs left RUNNING by a process that is gone are found
and closed; runs whose process lives, or of another host within the age limit, are not."""

import os
import socket
import subprocess
import sys
import time

from mlflow.tracking import MlflowClient

from src.runs.stale import main


def test_stale_runs_are_listed_and_closed_with_the_reason(tracking_uri, capsys):
    client = MlflowClient(tracking_uri)
    experiment_id = client.create_experiment("backprop")
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    here, hour_ms = socket.gethostname(), 3_600_000
    now_ms = int(time.time() * 1000)
    runs = {
        "killed": {"host": here, "pid": gone.stdout.strip()},
        "alive": {"host": here, "pid": str(os.getpid())},
        "old elsewhere": {"host": "node-7", "pid": "1"},
        "recent elsewhere": {"host": "node-7", "pid": "1"},
    }
    ids = {}
    for name, tags in runs.items():
        start = now_ms - (48 if name == "old elsewhere" else 1) * hour_ms
        ids[name] = client.create_run(experiment_id, start_time=start, tags=tags, run_name=name).info.run_id
    finished = client.create_run(experiment_id, run_name="done").info.run_id
    client.set_terminated(finished, "FINISHED")

    assert main([]) == 0  # listing only
    listed = capsys.readouterr().out
    assert "4 RUNNING run(s)" in listed and f"process {gone.stdout.strip()} on {here} is gone" in listed
    assert {client.get_run(i).info.status for i in ids.values()} == {"RUNNING"}

    assert main(["--close", "--older-than", "24", "--status", "KILLED"]) == 0
    assert "4 RUNNING run(s), 2 closed as KILLED" in capsys.readouterr().out
    status = {name: client.get_run(i) for name, i in ids.items()}
    assert {name: run.info.status for name, run in status.items()} == {
        "killed": "KILLED",
        "alive": "RUNNING",
        "old elsewhere": "KILLED",
        "recent elsewhere": "RUNNING",
    }
    assert "is gone" in status["killed"].data.tags["closed_as_stale"]
    assert "48.0 h ago on node-7" in status["old elsewhere"].data.tags["closed_as_stale"]


def test_a_missing_store_is_one_line_and_not_created(tmp_path, capsys):
    uri = f"sqlite:///{tmp_path / 'none.db'}"
    assert main(["--uri", uri]) == 1
    assert capsys.readouterr().err == f"error: --uri: no sqlite store at {uri}\n"
    assert not (tmp_path / "none.db").exists()
