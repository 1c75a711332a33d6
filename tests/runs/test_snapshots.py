"""Training snapshots: which epochs, what is kept, the per-layer metrics and the
figures a tracked run logs from them."""

from pathlib import Path

import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from src.engine.encoding import encode_targets
from src.runs import contract as c
from src.runs.build import assemble
from src.runs.config import validate
from src.runs.snapshots import layer_statistics, snapshot_epochs
from src.runs.tracked_run import JobContext, train_and_track


def test_snapshot_epochs_are_log_spaced_from_the_initial_weights():
    assert snapshot_epochs(2000, 12) == [0, 1, 2, 5, 10, 21, 45, 96, 205, 437, 935, 2000]
    assert snapshot_epochs(100_000, 6) == [0, 1, 18, 316, 5623, 100_000]
    assert snapshot_epochs(5, 12) == [0, 1, 2, 3, 4, 5]
    assert snapshot_epochs(2000, 1) == [0] and snapshot_epochs(2000, 0) == []


@pytest.fixture
def trained(compose_config, fit_run):
    """``trained(*overrides)`` -> ``(parts, initial parameters, TrainResult)``: ``fit``
    with the run's settings, its training snapshots included."""

    def _trained(*overrides):
        run = validate(compose_config(*overrides))
        parts = assemble(run)
        initial = parts.net.params.copy()
        return parts, initial, fit_run(parts, run)

    return _trained


def test_snapshots_hold_the_initial_and_trained_weights_and_the_gradient_at_each(trained):
    parts, initial, result = trained("optimizer=adam")  # stops at the threshold
    snapshots = result.snapshots
    assert snapshots.epochs[0] == 0 and snapshots.epochs[-1] == result.epochs_run < 2000
    assert snapshots.epochs[1:-1] == [e for e in snapshot_epochs(2000, 12) if 0 < e < result.epochs_run]
    np.testing.assert_array_equal(snapshots.params[0], initial)
    np.testing.assert_array_equal(snapshots.params[-1], parts.net.params)
    net, data = parts.net.copy(), parts.data
    targets = encode_targets(data.y_train, net.sizes[-1], net.dtype)
    for params, grads in zip(snapshots.params, snapshots.grads, strict=True):
        net.params[...] = params
        parts.objective.value_and_gradient(net, data.x_train, targets)
        np.testing.assert_array_equal(grads, net.grads)


def test_a_diverged_run_keeps_only_the_snapshots_it_reached_with_finite_weights(trained):
    _, _, result = trained("optimizer.lr=1e30", "model.output_activation=identity", "trainer.epochs=100")
    assert result.diverged
    assert result.snapshots.epochs == [e for e in snapshot_epochs(100, 12) if e <= result.epochs_run]
    assert all(np.isfinite(p).all() for p in result.snapshots.params)


def test_layer_statistics_describe_each_layers_weights_and_gradient(trained):
    parts, _, result = trained("trainer.epochs=50", "trainer.loss_threshold=null", "tracking.snapshots=4")
    stats = layer_statistics(parts.net.layout, result.snapshots)
    assert sorted(stats) == sorted(c.layer_metric(i, s) for i in range(3) for s in c.LAYER_STATISTICS)
    views = parts.net.views(result.snapshots.params[-1])
    grad_views = parts.net.views(result.snapshots.grads[-1])
    epoch, norm = stats["layer1.weight_norm"][-1]
    assert epoch == 50 and norm == pytest.approx(np.linalg.norm(views["W1"]))
    assert stats["layer2.weight_max"][-1][1] == views["W2"].max()
    assert stats["layer0.grad_norm"][-1][1] == pytest.approx(np.linalg.norm(grad_views["W0"]))
    assert [e for e, _ in stats["layer0.weight_std"]] == result.snapshots.epochs == [0, 1, 7, 50]


def _artifacts(client, run_id, path=""):
    names = []
    for info in client.list_artifacts(run_id, path):
        names += _artifacts(client, run_id, info.path) if info.is_dir else [info.path]
    return names


def test_a_single_run_logs_layer_metrics_the_boundarys_evolution_and_stepped_images(compose_config, tracking_uri):
    summary = train_and_track(compose_config("optimizer=adam", "trainer.epochs=300"))
    client = MlflowClient(tracking_uri)
    run = client.get_run(summary.run_id)
    epochs = summary.result.snapshots.epochs
    history = client.get_metric_history(summary.run_id, "layer0.weight_norm")
    assert sorted(m.step for m in history) == epochs and len(epochs) >= 9
    assert run.data.tags[c.TAG_LOGGED_IMAGES] == "true"
    names = _artifacts(client, summary.run_id)
    assert {c.BOUNDARY_EVOLUTION_FILE, c.WEIGHT_DISTRIBUTIONS_FILE} <= set(names)
    images = [Path(n).name for n in names if n.startswith("images/")]
    steps = sorted(int(n.split("+step+")[1].split("+")[0]) for n in images if n.endswith(".png"))
    assert steps == epochs
    assert sorted(n.removesuffix(".png") for n in images if n.endswith(".png")) == sorted(
        n.removesuffix("+compressed.webp") for n in images if n.endswith(".webp")
    )


def test_a_sweeps_job_logs_layer_metrics_but_draws_no_evolution_by_default(compose_config, tracking_uri):
    client = MlflowClient(tracking_uri)
    experiment = client.create_experiment("backprop")
    parent = client.create_run(experiment).info.run_id
    summary = train_and_track(compose_config("trainer.epochs=100"), JobContext(parent_run_id=parent))
    names = _artifacts(client, summary.run_id)
    assert c.BOUNDARY_EVOLUTION_FILE not in names and not any(n.startswith("images/") for n in names)
    assert c.TAG_LOGGED_IMAGES not in client.get_run(summary.run_id).data.tags
    assert len(client.get_metric_history(summary.run_id, "layer2.grad_norm")) == len(summary.result.snapshots.epochs)
