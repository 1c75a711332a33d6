"""Every config option composes and validates; every default lives in the YAML alone
(bad values: ``test_bad_inputs.py``)."""

import dataclasses
import inspect
from pathlib import Path

import pytest
import yaml
from omegaconf import MISSING

from src.engine.optimizers import OPTIMIZERS as UPDATE_RULES
from src.runs import config as schemas
from src.runs.config import validate

CONF = Path(__file__).resolve().parents[2] / "conf"


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
            assert getattr(run, group).name == {"blobs3": "blobs"}.get(option, option)


def _schemas():
    found = [schemas.RunConfig, *schemas.DATASET_SCHEMAS.values(), *schemas.SECTIONS.values()]
    found += [schema for schema, _ in schemas.OPTIMIZERS.values()]
    return sorted(set(found), key=lambda s: s.__name__)


@pytest.mark.parametrize("schema", _schemas(), ids=lambda s: s.__name__)
def test_schemas_hold_no_default_values(schema):
    """Values live in conf/ only: a schema field with a default would be a second copy."""
    for f in dataclasses.fields(schema):
        assert f.default in (MISSING, dataclasses.MISSING), f"{schema.__name__}.{f.name} = {f.default!r}"
        assert f.default_factory is dataclasses.MISSING, f"{schema.__name__}.{f.name} has a default factory"


@pytest.mark.parametrize("rule", sorted(UPDATE_RULES))
def test_optimizer_constructors_hold_no_default_values(rule):
    parameters = list(inspect.signature(UPDATE_RULES[rule]).parameters.values())[2:]  # after params, grads
    assert parameters and all(p.default is inspect.Parameter.empty for p in parameters)


@pytest.mark.parametrize("group", ["dataset", "optimizer"])
def test_every_yaml_option_sets_every_schema_field(group):
    """Each option of the group sets exactly the fields of its schema, no more, no fewer."""
    from omegaconf import OmegaConf

    for option in _options(group):
        values = OmegaConf.load(CONF / group / f"{option}.yaml")
        values.pop("defaults", None)
        schema = schemas.DATASET_SCHEMAS[values.name] if group == "dataset" else schemas.OPTIMIZERS[values.name][0]
        assert set(values) == {f.name for f in dataclasses.fields(schema)}, option


PRESET_OVERRIDES = [f"optimizer={o}" for o in _options("optimizer")] + ["model=no_activation", "loss=bce"]


@pytest.mark.parametrize("preset", _options("experiment"))
@pytest.mark.parametrize("override", PRESET_OVERRIDES)
def test_every_preset_composes_with_a_group_override(compose_config, preset, override):
    if preset == "capacity" and override == "loss=bce":
        override = "loss=mse"  # capacity's blobs3 has three classes
    run = validate(compose_config(f"+experiment={preset}", override))
    group, option = override.split("=")
    if group == "optimizer":
        assert run.optimizer.name == option
    assert run.study.question and run.study.outcome


def test_blobs3_trains_with_cross_entropy_unless_told_otherwise(compose_config):
    run = validate(compose_config("dataset=blobs3"))
    assert (run.loss.name, run.model.output_activation, run.n_outputs) == ("cross_entropy", "softmax", 3)
    run = validate(compose_config("dataset=blobs3", "loss=mse"))
    assert (run.loss.name, run.model.output_activation) == ("mse", "sigmoid")


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


def test_a_config_logged_before_newer_keys_existed_still_loads(compose_config, tmp_path):
    """Runs logged before model.activations, trainer.threshold_patience and study.scale_by/
    phase existed rebuild the same network and data."""
    from src.runs.config import load_run_config

    run = validate(compose_config("model.width=4", "optimizer=adam"))
    old = yaml.safe_load(run.to_yaml())
    del old["model"]["activations"], old["trainer"]["threshold_patience"]
    del old["study"]["scale_by"], old["study"]["phase"]
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(old))
    assert load_run_config(tmp_path / "config.yaml") == run
