"""The training loop on the real datasets, without tracking."""

import warnings

import numpy as np
import pytest

from src.config import validate
from src.factory import build
from src.trainer import train


def _train(compose_config, *overrides):
    run = validate(compose_config(*overrides))
    parts = build(run)
    t = run.trainer
    result = train(
        parts.net, parts.optimizer, parts.objective, parts.data, t.epochs, parts.shuffle_rng,
        batch_size=t.batch_size, shuffle=t.shuffle, loss_threshold=t.loss_threshold,
    )
    return result, parts


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adagrad", "adam"])
def test_default_sweep_solves_xor(compose_config, optimizer):
    result, _ = _train(compose_config, f"optimizer={optimizer}")
    assert result.epochs_to_threshold is not None and result.epochs_to_threshold < 1000
    assert result.history["train_accuracy"][-1] == 1.0
    assert len(result.history["train_loss"]) == result.epochs_run == result.epochs_to_threshold


@pytest.mark.parametrize(
    "overrides",
    [
        ["dataset=linear", "optimizer=adam"],
        ["dataset=moons", "optimizer=adam", "trainer.loss_threshold=0.05", "trainer.epochs=3000"],
        ["dataset=blobs", "dataset.n_classes=3", "loss=cross_entropy", "optimizer=adam", "trainer.loss_threshold=0.05"],
        ["loss=bce", "optimizer=adam"],
        ["model.activation=relu", "model.init=he", "optimizer=adam"],
        ["model.activation=sigmoid", "model.init=uniform", "optimizer=adam"],
        ["trainer.batch_size=1", "optimizer=sgd", "optimizer.lr=0.1"],
        ["trainer.batch_size=4", "optimizer=momentum", "optimizer.lr=0.05"],
    ],
    ids=lambda o: " ".join(o),
)
def test_configurations_learn(compose_config, overrides):
    result, _ = _train(compose_config, *overrides)
    assert result.epochs_to_threshold is not None, result.history["train_loss"][-1]
    assert result.history["train_accuracy"][-1] >= 0.9


def test_no_activation_network_cannot_solve_xor(compose_config):
    """Identity hidden layers make the network a logistic model: XOR stays unsolved."""
    result, _ = _train(compose_config, "model=no_activation", "optimizer=adam", "trainer.epochs=1500")
    assert result.epochs_to_threshold is None
    assert max(result.history["train_accuracy"]) < 0.8


def test_same_seed_same_run_other_seed_other_run(compose_config):
    args = ["trainer.batch_size=3", "trainer.epochs=50", "trainer.loss_threshold=null", "dataset=linear"]
    a, pa = _train(compose_config, *args)
    b, pb = _train(compose_config, *args)
    c, pc = _train(compose_config, *args, "trainer.seed=1")
    assert a.history == b.history
    np.testing.assert_array_equal(pa.net.params, pb.net.params)
    assert a.history != c.history


def test_per_sample_updates_take_one_step_per_point(compose_config):
    result, parts = _train(compose_config, "trainer.batch_size=1", "trainer.epochs=3", "trainer.loss_threshold=null")
    assert parts.optimizer.t == 3 * 21 and result.epochs_run == 3


def test_mini_batches_cover_the_epoch(compose_config):
    _, parts = _train(compose_config, "trainer.batch_size=8", "trainer.epochs=2", "trainer.loss_threshold=null")
    assert parts.optimizer.t == 2 * 3  # 21 points: batches of 8, 8, 5


def test_full_batch_history_is_the_loss_before_each_update(compose_config):
    from src.trainer import evaluate

    run = validate(compose_config("trainer.epochs=1", "trainer.loss_threshold=null"))
    parts = build(run)
    before, _ = evaluate(parts.net, parts.objective, parts.data.x_train, parts.data.y_train)
    result = train(parts.net, parts.optimizer, parts.objective, parts.data, 1, parts.shuffle_rng)
    assert result.history["train_loss"] == [before]


def test_divergence_stops_cleanly(compose_config):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result, _ = _train(
            compose_config, "optimizer.lr=1e30", "model.output_activation=identity", "trainer.epochs=200"
        )
    assert result.diverged
    assert result.epochs_run < 200
    assert all(np.isfinite(result.history["train_loss"]))


def test_test_split_is_evaluated_every_epoch(compose_config):
    result, parts = _train(
        compose_config, "dataset=moons", "dataset.test_fraction=0.25", "trainer.epochs=20", "trainer.loss_threshold=null"
    )
    assert parts.data.has_test
    assert len(result.history["test_loss"]) == len(result.history["test_accuracy"]) == 20
