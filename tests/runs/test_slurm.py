"""Sweeps through the submitit launcher: in local subprocesses (``submitit_local``), and
through a real SLURM cluster's ``sbatch`` (``hydra/launcher=slurm``) where one answers."""

import shutil
import subprocess

import pytest
from hydra import compose, initialize_config_dir

from src.runs.config import CONF_DIR

EPOCHS = 30
QUICK = [f"trainer.epochs={EPOCHS}", "trainer.loss_threshold=null", "tracking.log_figures=false"]


def _check_sweep(tmp_path, sweep_runs, optimizers):
    """Every job of the sweep went through submitit, is a FINISHED child of the sweep's
    parent and stored every epoch."""
    client, (parent,), children = sweep_runs()
    assert parent.info.status == "FINISHED"
    assert sorted(r.data.params["optimizer.name"] for r in children) == sorted(optimizers)
    for run in children:
        assert run.info.status == "FINISHED" and run.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert len(client.get_metric_history(run.info.run_id, "train_loss")) == EPOCHS
    assert len(list((tmp_path / "multirun" / ".submitit").glob("*/*_result.pkl"))) == len(optimizers)


def test_slurm_preset_extends_the_submitit_launcher():
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        launcher = compose("config", ["hydra/launcher=slurm"], return_hydra_config=True).hydra.launcher
    assert launcher._target_ == "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher"
    assert (launcher.cpus_per_task, launcher.tasks_per_node, launcher.nodes) == (1, 1, 1)
    assert "OPENBLAS_NUM_THREADS=$SLURM_CPUS_PER_TASK" in launcher.setup[0]


@pytest.mark.slow
def test_submitit_local_sweep_links_every_child(tmp_path, tracking_uri, train_cli, sweep_runs):
    proc = train_cli("hydra/launcher=submitit_local", "optimizer=sgd,adam", *QUICK, "tracking.log_model=false")
    assert proc.returncode == 0, proc.stderr[-3000:]
    _check_sweep(tmp_path, sweep_runs, ["sgd", "adam"])


@pytest.fixture
def slurm_cluster():
    """Skips the test unless a SLURM cluster answers here (``.ci/slurm-one-node start`` makes one)."""
    if shutil.which("sbatch") is None:
        pytest.skip("no SLURM here: sbatch absent")
    try:
        answered = subprocess.run(["sinfo", "-h"], capture_output=True, timeout=5).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        answered = False
    if not answered:
        pytest.skip("no SLURM cluster answers here: sinfo fails")


@pytest.mark.slow
@pytest.mark.slurm
def test_sbatch_sweep_links_every_child(slurm_cluster, tmp_path, tracking_uri, train_cli, sweep_runs):
    proc = train_cli("hydra/launcher=slurm", "optimizer=sgd,adam", *QUICK, "tracking.log_model=false")
    assert proc.returncode == 0, proc.stderr[-3000:]
    _check_sweep(tmp_path, sweep_runs, ["sgd", "adam"])
