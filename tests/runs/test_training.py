"""The training loop on the real datasets, without tracking."""

import warnings

import numpy as np
import pytest

from src.runs.build import assemble
from src.runs.config import validate
from src.runs.loop import fit


@pytest.fixture
def train(compose_config, fit_run):
    """``train(*overrides)`` -> ``(TrainResult, RunParts)`` of the composed config, untracked."""

    def _train(*overrides):
        run = validate(compose_config(*overrides))
        parts = assemble(run)
        return fit_run(parts, run), parts

    return _train


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adagrad", "adam"])
def test_default_sweep_solves_xor(train, optimizer):
    result, _ = train(f"optimizer={optimizer}")
    assert result.epochs_to_threshold is not None and result.epochs_to_threshold < 1000
    assert result.history["train_accuracy"][-1] == 1.0
    # Training stops once the loss has stayed below the threshold for the patience (20 epochs).
    losses = result.history["train_loss"]
    assert len(losses) == result.epochs_run == result.epochs_to_threshold + 20
    assert result.first_below_threshold == result.epochs_to_threshold
    assert max(losses[result.epochs_to_threshold - 1 :]) < 0.01 <= losses[result.epochs_to_threshold - 2]


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
def test_configurations_learn(train, overrides):
    result, _ = train(*overrides)
    assert result.epochs_to_threshold is not None, result.history["train_loss"][-1]
    assert result.history["train_accuracy"][-1] >= 0.9


def test_no_activation_network_cannot_solve_xor(train):
    """Identity hidden layers make the network a logistic model: XOR stays unsolved."""
    result, _ = train("model=no_activation", "optimizer=adam", "trainer.epochs=1500")
    assert result.epochs_to_threshold is None
    assert max(result.history["train_accuracy"]) < 0.8


def test_same_seed_same_run_other_seed_other_run(train):
    args = ["trainer.batch_size=3", "trainer.epochs=50", "trainer.loss_threshold=null", "dataset=linear"]
    a, pa = train(*args)
    b, pb = train(*args)
    c, pc = train(*args, "trainer.seed=1")
    assert a.history == b.history
    np.testing.assert_array_equal(pa.net.params, pb.net.params)
    assert a.history != c.history


def test_per_sample_updates_take_one_step_per_point(train):
    result, parts = train("trainer.batch_size=1", "trainer.epochs=3", "trainer.loss_threshold=null")
    assert parts.optimizer.t == 3 * 21 and result.epochs_run == 3


def test_mini_batches_cover_the_epoch(train):
    _, parts = train("trainer.batch_size=8", "trainer.epochs=2", "trainer.loss_threshold=null")
    assert parts.optimizer.t == 2 * 3  # 21 points: batches of 8, 8, 5


@pytest.mark.parametrize("batch_size", ["null", "1", "8"])
def test_history_is_the_training_set_loss_after_each_epoch(compose_config, batch_size):
    """Full batch or not, an epoch's ``train_loss`` and ``train_accuracy`` are those of the
    whole training set under the weights the epoch ended with."""
    from src.runs.loop import evaluate

    run = validate(compose_config(f"trainer.batch_size={batch_size}", "trainer.loss_threshold=null"))
    parts = assemble(run)
    for epochs in (1, 2, 3):
        result = fit(
            parts.net, parts.optimizer, parts.objective, parts.data, 1, parts.shuffle_rng, run.trainer.batch_size
        )
        loss, accuracy = evaluate(parts.net, parts.objective, parts.data.x_train, parts.data.y_train)
        assert result.history["train_loss"] == [loss], epochs
        assert result.history["train_accuracy"] == [accuracy], epochs
        assert ("train_loss_running" in result.history) == (batch_size != "null")


def test_mini_batch_running_loss_is_the_mean_of_the_batch_losses(compose_config):
    run = validate(compose_config("trainer.batch_size=8", "trainer.shuffle=false", "trainer.loss_threshold=null"))
    parts = assemble(run)
    twin = assemble(run)
    result = fit(parts.net, parts.optimizer, parts.objective, parts.data, 1, parts.shuffle_rng, 8, shuffle=False)
    x, y = twin.data.x_train, twin.data.y_train
    total = 0.0
    for begin in range(0, len(y), 8):
        batch, _ = twin.objective.value_and_gradient(
            twin.net, x[begin : begin + 8], y[begin : begin + 8].reshape(-1, 1).astype(float)
        )
        twin.optimizer.step()
        total += batch * len(y[begin : begin + 8])
    assert result.history["train_loss_running"] == [total / len(y)]
    np.testing.assert_array_equal(parts.net.params, twin.net.params)


def test_a_dip_below_the_threshold_is_not_counted_as_reaching_it(compose_config, fit_run):
    """SGD at lr 50 on linear oscillates: its loss dips below 0.01, rises again and settles
    later. ``epochs_to_threshold`` is the epoch from which it stayed below (for the
    patience); ``first_below_threshold`` records the dip. Without a patience the dip
    would have stopped training and counted as reached."""
    overrides = ["dataset=linear", "model.activation=sigmoid", "optimizer.lr=50", "trainer.epochs=3000"]
    for seed in range(5):
        run = validate(compose_config(*overrides, f"trainer.seed={seed}"))
        result = fit_run(assemble(run), run)
        if result.epochs_to_threshold is not None and result.first_below_threshold < result.epochs_to_threshold:
            break
    else:
        pytest.fail("no seed dipped below the threshold before settling")
    losses = np.array(result.history["train_loss"])
    assert losses[result.first_below_threshold - 1] < 0.01
    assert losses[result.first_below_threshold : result.epochs_to_threshold - 1].max() >= 0.01
    assert (losses[result.epochs_to_threshold - 1 :] < 0.01).all()
    run = validate(compose_config(*overrides, f"trainer.seed={seed}", "trainer.threshold_patience=0"))
    eager = fit_run(assemble(run), run)
    assert eager.epochs_to_threshold == eager.epochs_run == eager.first_below_threshold == result.first_below_threshold


def test_divergence_stops_cleanly(train):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result, _ = train("optimizer.lr=1e30", "model.output_activation=identity", "trainer.epochs=200")
    assert result.diverged
    assert result.epochs_run < 200
    assert all(np.isfinite(result.history["train_loss"]))


def test_test_split_is_evaluated_every_epoch(train):
    result, parts = train(
        "dataset=moons", "dataset.test_fraction=0.25", "trainer.epochs=20", "trainer.loss_threshold=null"
    )
    assert parts.data.has_test
    assert len(result.history["test_loss"]) == len(result.history["test_accuracy"]) == 20


def test_l2_shrinks_the_weights(train):
    norms = {}
    for l2 in (0.0, 0.05):
        _, parts = train(f"trainer.l2={l2}", "trainer.loss_threshold=null", "trainer.epochs=300", "optimizer=adam")
        norms[l2] = sum(float((w**2).sum()) for w in parts.net.weights)
    assert norms[0.05] < 0.5 * norms[0.0]


def test_one_activation_per_hidden_layer_builds_and_names_the_network(compose_config):
    from src.runs.tracking import config_name

    run = validate(compose_config("model.activations=[identity,relu]", "model.width=4"))
    parts = assemble(run)
    assert [a.name for a in parts.net.activations] == ["identity", "relu", "sigmoid"]
    assert config_name(run) == "xor-sgd-2x4-identity-relu-s0"
    same = validate(compose_config("model.activations=[relu,relu]", "model.activation=relu"))
    assert config_name(same) == "xor-sgd-2x8-relu-s0"
