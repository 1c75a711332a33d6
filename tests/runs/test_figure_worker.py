"""The figure worker: figures drawn by a child process land in their run, and a dead
child loses nothing."""

import pytest
from mlflow.tracking import MlflowClient

from src.runs import contract as c
from src.runs.build import assemble
from src.runs.config import validate
from src.runs.figure_worker import FigureJob, FigureWorker
from src.runs.tracking import RunArtifacts

FIGURES = {c.LEARNING_CURVE_FILE, c.DECISION_BOUNDARY_FILE, c.PREDICTION_FILE}


@pytest.fixture
def jobs(compose_config, fit_run):
    """Two runs' figure jobs of different layouts (xor; three blobs with a test split)."""
    found = []
    for overrides in (["trainer.epochs=30"], ["dataset=blobs3", "dataset.test_fraction=0.25", "trainer.epochs=30"]):
        run = validate(compose_config(*overrides, "trainer.loss_threshold=null"))
        parts = assemble(run)
        result = fit_run(parts, run)
        found.append(FigureJob(" ".join(overrides), result.history, parts.net.copy(), parts.data))
    return found


def _runs(tracking_uri, count):
    client = MlflowClient(tracking_uri)
    experiment_id = client.create_experiment("figures")
    return client, [client.create_run(experiment_id).info.run_id for _ in range(count)]


def test_the_worker_uploads_each_runs_figures(tracking_uri, jobs):
    client, run_ids = _runs(tracking_uri, 3)
    worker = FigureWorker()
    for run_id, job in zip(run_ids, [*jobs, jobs[0]], strict=True):
        worker.submit(RunArtifacts(client, run_id), job)
    worker.close()
    for run_id in run_ids:
        assert {a.path for a in client.list_artifacts(run_id)} == FIGURES


def test_a_dead_worker_loses_no_figure(tracking_uri, jobs):
    client, run_ids = _runs(tracking_uri, 2)
    worker = FigureWorker()
    worker.submit(RunArtifacts(client, run_ids[0]), jobs[0])
    worker._child.kill()
    worker._child.wait()
    worker.submit(RunArtifacts(client, run_ids[1]), jobs[1])
    worker.close()
    for run_id in run_ids:
        assert {a.path for a in client.list_artifacts(run_id)} == FIGURES


def test_a_single_runs_worker_rehearses_its_figures_and_draws_the_run_alike(tracking_uri, jobs, compose_config):
    from src.runs.figure_worker import rehearse
    from src.runs.snapshots import snapshot_epochs

    run = validate(compose_config("dataset=blobs3", "dataset.test_fraction=0.25", "trainer.epochs=30"))
    rehearsal = rehearse(run)
    assert (
        set(rehearsal.history) == set(jobs[1].history) == {"train_loss", "train_accuracy", "test_loss", "test_accuracy"}
    )
    assert rehearsal.snapshots.epochs == snapshot_epochs(30, run.tracking.snapshots)  # as planned
    assert rehearsal.data.x_train.shape == jobs[1].data.x_train.shape
    assert rehearse(validate(compose_config("tracking.evolution=never"))).snapshots is None
    client, (run_id,) = _runs(tracking_uri, 1)
    worker = FigureWorker(rehearsal)
    worker.submit(RunArtifacts(client, run_id), jobs[1])
    worker.close()
    assert {a.path for a in client.list_artifacts(run_id)} == FIGURES
