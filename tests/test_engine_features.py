"""float32 training, L1/L2 penalties, initial weights from a file, the gradient-check
feature, and a property-based gradient check over random architectures."""

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from mlflow.tracking import MlflowClient

from src.activations import HIDDEN_ACTIVATIONS, Tanh
from src.config import ConfigError, validate
from src.factory import build
from src.gradcheck import check_gradients
from src.initializers import initialize
from src.losses import get_loss
from src.network import MLP
from src.objective import Objective
from src.runner import GradientCheckError, run_training
from src.trainer import encode_targets, train


def _batch(n_out, n=9, seed=3):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 2))
    return x, encode_targets(rng.integers(0, max(n_out, 2), size=n), n_out, np.float64)


def _train_parts(parts, run):
    t = run.trainer
    return train(parts.net, parts.optimizer, parts.objective, parts.data, t.epochs, parts.shuffle_rng,
                 batch_size=t.batch_size, loss_threshold=t.loss_threshold)


# --- float32 ----------------------------------------------------------------------------


@pytest.mark.parametrize("optimizer", ["sgd", "nesterov", "rmsprop", "adamw"])
def test_float32_runs_end_to_end_in_float32(compose_config, optimizer):
    run = validate(compose_config("trainer.dtype=float32", f"optimizer={optimizer}"))
    parts = build(run)
    assert parts.net.params.dtype == parts.net.grads.dtype == np.float32
    state = [v for v in vars(parts.optimizer).values() if isinstance(v, np.ndarray)]
    assert state and all(a.dtype == np.float32 for a in state)
    result = _train_parts(parts, run)
    assert parts.net.params.dtype == np.float32
    assert parts.net.predict(parts.data.x_train.astype(np.float32)).dtype == np.float32
    assert result.epochs_to_threshold is not None and result.history["train_accuracy"][-1] == 1.0


def test_float32_and_float64_runs_agree_to_float32_precision(compose_config):
    losses = {}
    for dtype in ("float32", "float64"):
        run = validate(compose_config(f"trainer.dtype={dtype}", "trainer.epochs=50", "trainer.loss_threshold=null"))
        losses[dtype] = np.array(_train_parts(build(run), run).history["train_loss"])
    np.testing.assert_allclose(losses["float32"], losses["float64"], rtol=1e-4)


# --- L1 / L2 ----------------------------------------------------------------------------


@pytest.mark.parametrize("l1, l2", [(0.01, 0.0), (0.0, 0.1), (0.02, 0.05)])
def test_penalties_are_in_the_loss_and_the_gradient(l1, l2):
    net = MLP([2, 4, 3, 1], "tanh", "sigmoid")
    initialize(net, "normal", np.random.default_rng(0))
    x, y = _batch(1)
    plain, penalised = Objective(get_loss("bce")), Objective(get_loss("bce"), l1=l1, l2=l2)
    expected_penalty = sum(l1 * np.abs(w).sum() + 0.5 * l2 * (w**2).sum() for w in net.weights)
    assert penalised.value(net, x, y)[0] == pytest.approx(plain.value(net, x, y)[0] + expected_penalty, rel=1e-14)
    assert check_gradients(net, penalised, x, y) < 1e-6
    plain.value_and_gradient(net, x, y)
    bias_grads = [b.copy() for b in net.bias_grads]
    penalised.value_and_gradient(net, x, y)
    for before, after in zip(bias_grads, net.bias_grads):
        np.testing.assert_array_equal(before, after)  # biases are not penalised


def test_l2_shrinks_the_weights(compose_config):
    norms = {}
    for l2 in (0.0, 0.05):
        run = validate(compose_config(f"trainer.l2={l2}", "trainer.loss_threshold=null", "trainer.epochs=300",
                                      "optimizer=adam"))
        parts = build(run)
        _train_parts(parts, run)
        norms[l2] = sum(float((w**2).sum()) for w in parts.net.weights)
    assert norms[0.05] < 0.5 * norms[0.0]


# --- initial weights from a file -----------------------------------------------------


def test_init_from_loads_the_file(compose_config, tmp_path):
    source = build(validate(compose_config("trainer.seed=5"))).net
    source.save(tmp_path / "w.npz")
    parts = build(validate(compose_config(f"model.init_from={tmp_path / 'w.npz'}")))
    np.testing.assert_array_equal(parts.net.params, source.params)


def test_init_from_checks_shapes_and_existence(compose_config, tmp_path):
    build(validate(compose_config("model.width=4"))).net.save(tmp_path / "small.npz")
    with pytest.raises(ConfigError, match=r"^model.init_from: .*W0 has shape \(2, 4\), the model expects \(2, 8\)"):
        build(validate(compose_config(f"model.init_from={tmp_path / 'small.npz'}")))
    with pytest.raises(ConfigError, match=r"^model.init_from: .*parameter names"):
        build(validate(compose_config(f"model.init_from={tmp_path / 'small.npz'}", "model.bias=false",
                                      "model.width=4")))
    with pytest.raises(ConfigError, match=r"^model.init_from: invalid value .*no such file"):
        validate(compose_config(f"model.init_from={tmp_path / 'missing.npz'}"))


def test_init_from_round_trips_a_runs_weights_artifact(compose_config, tracking_uri, tmp_path):
    first = run_training(compose_config("optimizer=adam", "trainer.loss_threshold=null", "trainer.epochs=80"))
    weights = MlflowClient(tracking_uri).download_artifacts(first.run_id, "weights.npz", str(tmp_path))
    second = run_training(compose_config("optimizer=adam", f"model.init_from={weights}", "trainer.epochs=1",
                                         "trainer.loss_threshold=null"))
    # The second run starts exactly where the first ended.
    assert second.result.history["train_loss"][0] == first.final_metrics["final_train_loss"]


# --- gradient check as a feature -----------------------------------------------------


def test_gradcheck_is_logged_at_start_and_end(compose_config, tracking_uri):
    summary = run_training(compose_config("optimizer=rmsprop", "trainer.gradcheck=true"))
    history = MlflowClient(tracking_uri).get_metric_history(summary.run_id, "gradcheck_max_rel_error")
    assert sorted(m.step for m in history) == [0, summary.result.epochs_run]
    assert all(m.value < 1e-6 for m in history)


def test_wrong_backprop_fails_the_gradcheck_and_the_run(compose_config, tracking_uri, monkeypatch):
    monkeypatch.setattr(Tanh, "backward", lambda self, grad_a, z, a: grad_a * (1.0 - a))  # wrong derivative
    with pytest.raises(GradientCheckError, match="max relative error"):
        run_training(compose_config("trainer.gradcheck=true"))
    client = MlflowClient(tracking_uri)
    (run,) = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert run.info.status == "FAILED" and run.data.tags["gradcheck"] == "failed"
    assert run.data.metrics["gradcheck_max_rel_error"] > 1e-2


def test_gradcheck_runs_in_float64_for_float32_models():
    net = MLP([2, 5, 1], "sigmoid", "sigmoid", dtype=np.float32)
    initialize(net, "xavier", np.random.default_rng(1))
    x, y = _batch(1)
    assert check_gradients(net, Objective(get_loss("mse")), x, y) < 1e-6


# --- property-based gradient check -----------------------------------------------------

OUTPUT_SETUPS = [("mse", "sigmoid", 1), ("mse", "identity", 1), ("mse", "tanh", 2), ("mse", "softmax", 3),
                 ("bce", "sigmoid", 1), ("cross_entropy", "softmax", 2), ("cross_entropy", "softmax", 4)]


@settings(max_examples=60, deadline=None, derandomize=True)
@given(
    widths=st.lists(st.integers(1, 6), min_size=0, max_size=3),
    hidden=st.sampled_from(HIDDEN_ACTIVATIONS),
    setup=st.sampled_from(OUTPUT_SETUPS),
    bias=st.booleans(),
    l2=st.sampled_from([0.0, 0.1]),
    seed=st.integers(0, 2**16),
)
def test_random_networks_pass_the_gradient_check(widths, hidden, setup, bias, l2, seed):
    loss_name, output, n_out = setup
    net = MLP([2, *widths, n_out], hidden, output, bias=bias, leaky_slope=0.2)
    initialize(net, "xavier", np.random.default_rng(seed))
    x, y = _batch(n_out, seed=seed + 1)
    # Finite differences are meaningless at a kink of (leaky) ReLU, e.g. the exact zeros
    # a dead unit passes on: stay at least 1e-3 away from them.
    zs, _ = net.forward(x)
    assume(hidden not in ("relu", "leaky_relu") or all(np.abs(z).min() > 1e-3 for z in zs[:-1]))
    assert check_gradients(net, Objective(get_loss(loss_name), l2=l2), x, y) < 1e-6
