"""Every config option composes and validates; bad values fail early, naming the key."""

from pathlib import Path

import pytest

from src.config import ConfigError, validate
from src.runner import run_training

CONF = Path(__file__).resolve().parents[1] / "conf"


def _options(group):
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


def test_every_group_has_its_options():
    assert _options("dataset") == ["blobs", "blobs3", "linear", "moons", "xor"]
    assert set(_options("optimizer")) >= {"sgd", "momentum", "adagrad", "adam"}
    assert _options("loss") == ["bce", "cross_entropy", "mse"]
    assert "mlp" in _options("model")


@pytest.mark.parametrize("group", ["dataset", "model", "optimizer", "loss"])
def test_every_option_composes_and_validates(compose_config, group):
    for option in _options(group):
        run = validate(compose_config(f"{group}={option}"))
        if group in ("dataset", "optimizer", "loss"):
            assert getattr(run, group).name == option.rstrip("0123456789")  # blobs3 is blobs


def test_defaults(compose_config):
    run = validate(compose_config())
    assert (run.dataset.name, run.optimizer.name, run.loss.name) == ("xor", "sgd", "mse")
    assert run.model.hidden_widths == [8, 8] and run.model.output_activation == "sigmoid"
    assert run.n_outputs == 1


def test_loss_group_sets_the_output_activation(compose_config):
    run = validate(compose_config("loss=cross_entropy", "dataset=blobs", "dataset.n_classes=4"))
    assert run.model.output_activation == "softmax" and run.n_outputs == 4
    assert validate(compose_config("loss=cross_entropy")).n_outputs == 2


@pytest.mark.parametrize(
    "override",
    [
        "model.activation=leaky_relu",
        "model.activation=identity",
        "model=no_activation",
        "model.widths=[4,2,1]",
        "model.depth=0",
        "model.init=uniform",
        "model.init=normal",
        "model.init=he",
        "model.bias=false",
        "trainer.batch_size=1",
        "trainer.batch_size=5",
        "trainer.loss_threshold=null",
        "dataset.test_fraction=0.2",
        "loss=mse model.output_activation=tanh",
        "loss=bce",
        "tracking.run_name=custom",
    ],
)
def test_options_validate(compose_config, override):
    validate(compose_config(*override.split()))


@pytest.mark.parametrize(
    "overrides, key, fragment",
    [
        (["optimizer.lr=-0.1"], "optimizer.lr", "-0.1"),
        (["optimizer.lr=0"], "optimizer.lr", "0.0"),
        (["model.width=0"], "model.width", "0"),
        (["model.widths=[4,0]"], "model.widths", "[4, 0]"),
        (["model.activation=swish"], "model.activation", "swish"),
        (["model.init=zeros"], "model.init", "zeros"),
        (["trainer.epochs=abc"], "trainer.epochs", "abc"),
        (["trainer.epochs=0"], "trainer.epochs", "0"),
        (["trainer.batch_size=0"], "trainer.batch_size", "0"),
        (["trainer.loss_threshold=-1"], "trainer.loss_threshold", "-1"),
        (["optimizer=momentum", "optimizer.momentum=1.5"], "optimizer.momentum", "1.5"),
        (["optimizer=adam", "optimizer.betas=[0.9,1.0]"], "optimizer.betas", "1.0"),
        (["optimizer=sgd", "optimizer.nesterov=true"], "optimizer.nesterov", "momentum"),
        (["optimizer=sgd", "+optimizer.betas=[0.9,0.99]"], "optimizer.betas", "not in"),
        (["optimizer.name=rmsprop2"], "optimizer.name", "rmsprop2"),
        (["dataset=moons", "dataset.noise=-0.1"], "dataset.noise", "-0.1"),
        (["dataset.test_fraction=1.0"], "dataset.test_fraction", "1.0"),
        (["dataset=blobs", "dataset.n_classes=1"], "dataset.n_classes", "1"),
        (["loss=bce", "model.output_activation=tanh"], "model.output_activation", "bce"),
        (["loss=cross_entropy", "model.output_activation=sigmoid"], "model.output_activation", "softmax"),
        (["dataset=blobs", "dataset.n_classes=3", "loss=bce"], "dataset.n_classes", "binary"),
        (["loss=mse", "model.output_activation=softmax"], "model.output_activation", "softmax"),
    ],
)
def test_bad_values_fail_naming_the_key_and_create_no_run(compose_config, tracking_uri, tmp_path, overrides, key, fragment):
    cfg = compose_config(*overrides)
    with pytest.raises(ConfigError) as err:
        run_training(cfg)
    message = str(err.value)
    assert message.startswith(f"{key}:") and fragment in message
    # The tracking store was never touched: no database, no artifact directory.
    assert list(tmp_path.iterdir()) == []
