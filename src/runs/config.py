"""Typed schemas for the composed Hydra config, and the checks run before training.

The values, defaults included, live only in the YAML files of ``conf/``; the schemas
here hold the types and one declarative rule per field (``src.runs.constraints``) and
no default, so a value missing from the YAML is an error, never a silent second default.

``validate(cfg)`` runs two stages. ``typed_section`` merges one section of a composed
``DictConfig`` into its schema (OmegaConf enforces types and rejects unknown keys) and
checks each field's own rule; ``check_run`` then applies the rules that tie fields
together: the test split and the batch size against the number of points, the memory a
run needs (``memory_estimate``) against ``trainer.max_memory_gib``, and, for a run about to
train here, that the sqlite store's directory exists. Any problem raises ``ConfigError``
naming the dotted key and the value, before anything is trained or tracked. A sweep checks
each swept value with the first stage once and every job with the second
(``src.runs.sweep_check``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from src.engine.activations import HIDDEN_ACTIVATIONS, OUTPUT_ACTIVATIONS
from src.engine.initializers import INIT_SCHEMES
from src.engine.losses import LOSSES
from src.runs.constraints import (
    Each,
    ExistingFile,
    Interval,
    OneOf,
    Text,
    TrackingUri,
    constrained,
    shown,
    sqlite_path,
    violations,
)
from src.runs.contract import OUTCOMES

#: The Hydra config tree (``config.yaml`` and its groups).
CONF_DIR = Path(__file__).resolve().parents[2] / "conf"
DTYPES = ("float64", "float32")
#: MLflow's limits on an experiment name, a run name and a param value (every config
#: value is logged as a param).
MAX_EXPERIMENT_NAME, MAX_RUN_NAME, MAX_PARAM_VALUE = 500, 250, 6000
#: Tracking URI schemes MLflow stores runs under.
TRACKING_SCHEMES = ("sqlite", "postgresql", "mysql", "mssql", "http", "https", "file", "databricks")

POSITIVE = Interval(0, None, closed="neither")
NON_NEGATIVE = Interval(0, None, closed="left")
UNIT = Interval(0, 1, closed="left")  # [0, 1)


class ConfigError(ValueError):
    """A config value is missing, mistyped or out of range; the message names the key."""


# --- datasets -------------------------------------------------------------------------


@dataclass
class DatasetConfig:
    name: str = constrained()
    test_fraction: float = constrained(UNIT)

    #: The key that sets the number of points (named when there are too many or too few).
    size_key = "n_samples"

    @property
    def n_points(self) -> int:
        """How many points the generator draws."""
        return self.n_samples

    @property
    def n_test(self) -> int:
        """How many of them the test split takes (``src.runs.datasets.load_dataset``)."""
        return int(round(self.test_fraction * self.n_points))


@dataclass
class LinearDataset(DatasetConfig):
    n_samples: int = constrained(Interval(2, integer=True))


@dataclass
class XorDataset(DatasetConfig):
    points_per_diagonal: int = constrained(Interval(2, integer=True))

    size_key = "points_per_diagonal"

    @property
    def n_points(self) -> int:
        return 2 * self.points_per_diagonal - 1


@dataclass
class MoonsDataset(DatasetConfig):
    n_samples: int = constrained(Interval(2, integer=True))
    noise: float = constrained(NON_NEGATIVE)


@dataclass
class BlobsDataset(DatasetConfig):
    n_samples: int = constrained(Interval(2, integer=True))
    n_classes: int = constrained(Interval(2, integer=True))
    cluster_std: float = constrained(POSITIVE)


DATASET_SCHEMAS = {"linear": LinearDataset, "xor": XorDataset, "moons": MoonsDataset, "blobs": BlobsDataset}


# --- optimizers -----------------------------------------------------------------------


@dataclass
class OptimizerConfig:
    name: str = constrained()
    lr: float = constrained(POSITIVE)
    weight_decay: float = constrained(NON_NEGATIVE)


@dataclass
class SGDConfig(OptimizerConfig):
    momentum: float = constrained(UNIT)
    dampening: float = constrained(Interval(0, 1, closed="both"))
    nesterov: bool = constrained()


@dataclass
class AdagradConfig(OptimizerConfig):
    lr_decay: float = constrained(NON_NEGATIVE)
    initial_accumulator_value: float = constrained(NON_NEGATIVE)
    eps: float = constrained(POSITIVE)


@dataclass
class RMSpropConfig(OptimizerConfig):
    alpha: float = constrained(UNIT)
    eps: float = constrained(POSITIVE)
    momentum: float = constrained(UNIT)
    centered: bool = constrained()


@dataclass
class AdamConfig(OptimizerConfig):
    betas: list[float] = constrained(Each(UNIT, length=2))
    eps: float = constrained(POSITIVE)
    amsgrad: bool = constrained()


#: ``optimizer.name`` -> (schema, update rule of ``src.engine.optimizers.OPTIMIZERS``).
OPTIMIZERS = {
    "sgd": (SGDConfig, "sgd"),
    "momentum": (SGDConfig, "sgd"),
    "nesterov": (SGDConfig, "sgd"),
    "adagrad": (AdagradConfig, "adagrad"),
    "rmsprop": (RMSpropConfig, "rmsprop"),
    "adam": (AdamConfig, "adam"),
    "adamw": (AdamConfig, "adamw"),
    "adam_lab000": (AdamConfig, "adam_lab000"),
    "adam_lab001": (AdamConfig, "adam_lab001"),
}


# --- model, loss, trainer, tracking, study --------------------------------------------


@dataclass
class ModelConfig:
    depth: int = constrained(Interval(0, integer=True))
    width: int = constrained(Interval(1, integer=True))
    widths: list[int] | None = constrained(Each(Interval(1, integer=True)), nullable=True)
    activation: str = constrained(OneOf(HIDDEN_ACTIVATIONS))
    activations: list[str] | None = constrained(Each(OneOf(HIDDEN_ACTIVATIONS)), nullable=True)
    leaky_slope: float = constrained(Interval())
    output_activation: str = constrained(OneOf(OUTPUT_ACTIVATIONS))
    init: str = constrained(OneOf(INIT_SCHEMES))
    init_from: str | None = constrained(ExistingFile(), nullable=True)
    bias: bool = constrained()

    @property
    def hidden_widths(self) -> list[int]:
        """Per-layer hidden widths: ``widths`` when given, else ``depth`` times ``width``."""
        return list(self.widths) if self.widths is not None else [self.width] * self.depth

    @property
    def hidden_activations(self) -> list[str]:
        """Per-layer hidden activations: ``activations`` when given, else ``activation`` for each."""
        return list(self.activations) if self.activations is not None else [self.activation] * len(self.hidden_widths)


@dataclass
class LossConfig:
    name: str = constrained(OneOf(tuple(LOSSES)))


@dataclass
class TrainerConfig:
    epochs: int = constrained(Interval(1, integer=True))
    batch_size: int | None = constrained(Interval(1, integer=True), nullable=True)
    shuffle: bool = constrained()
    seed: int = constrained(Interval(0, integer=True))
    loss_threshold: float | None = constrained(POSITIVE, nullable=True)
    threshold_patience: int = constrained(Interval(0, integer=True))
    log_every: int = constrained(Interval(1, integer=True))
    dtype: str = constrained(OneOf(DTYPES))
    l1: float = constrained(NON_NEGATIVE)
    l2: float = constrained(NON_NEGATIVE)
    gradcheck: bool = constrained()
    gradcheck_tolerance: float = constrained(POSITIVE)
    #: The memory a run may need (``memory_estimate``); a larger model or dataset is refused.
    max_memory_gib: float = constrained(POSITIVE)


#: When the snapshots' figures are drawn: in every run, in single runs only, never.
EVOLUTION_FIGURES = ("always", "single", "never")


@dataclass
class TrackingConfig:
    uri: str | None = constrained(TrackingUri(TRACKING_SCHEMES), nullable=True)
    experiment: str = constrained(Text(MAX_EXPERIMENT_NAME))
    run_name: str | None = constrained(Text(MAX_RUN_NAME), nullable=True)
    log_figures: bool = constrained()
    log_model: bool = constrained()
    snapshots: int = constrained(Interval(0, 50, closed="both", integer=True))
    evolution: str = constrained(OneOf(EVOLUTION_FIGURES))
    #: Seconds: the store's check before a run or a sweep, and each request to a tracking server.
    timeout: int = constrained(Interval(1, integer=True))
    #: Seconds a run retries a store that stopped answering before it ends locally.
    outage_wait: float = constrained(NON_NEGATIVE)


@dataclass
class StudyConfig:
    """Set by the study presets of ``conf/experiment/``: the question a sweep answers and
    the summary metric it is judged on (read by ``src.analysis.studies``)."""

    question: str | None = constrained(Text(MAX_PARAM_VALUE), nullable=True)
    outcome: str | None = constrained(OneOf(OUTCOMES), nullable=True)
    #: A numeric factor whose product with the epoch count is reported too (lr x epochs).
    scale_by: str | None = constrained(nullable=True)
    #: Set by ``hydra/sweeper=tuned`` (``src.runs.tuning``): a tuning or a reporting job.
    phase: str | None = constrained(OneOf(("tune", "report")), nullable=True)


@dataclass
class RunConfig:
    """The validated config of one training run."""

    dataset: Any
    model: ModelConfig
    optimizer: Any
    loss: LossConfig
    trainer: TrainerConfig
    tracking: TrackingConfig
    study: StudyConfig

    @property
    def n_classes(self) -> int:
        return getattr(self.dataset, "n_classes", 2)

    @property
    def n_outputs(self) -> int:
        """One sigmoid-style output for binary problems, one unit per class otherwise."""
        if self.n_classes == 2 and self.loss.name != "cross_entropy":
            return 1
        return self.n_classes

    @property
    def optimizer_rule(self) -> str:
        """The update rule (``src.engine.optimizers.OPTIMIZERS`` key) of ``optimizer.name``."""
        return OPTIMIZERS[self.optimizer.name][1]

    def to_dict(self) -> dict:
        """Every section as nested plain dicts (what ``validate`` reads back)."""
        return asdict(self)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


SECTIONS = {
    "model": ModelConfig,
    "loss": LossConfig,
    "trainer": TrainerConfig,
    "tracking": TrackingConfig,
    "study": StudyConfig,
}
TOP_LEVEL = ("dataset", "optimizer", *SECTIONS)


def _typed(section: str, schema: type, node: Any):
    """Merge ``node`` into ``schema`` (type checks, unknown keys) and build the dataclass."""
    try:
        merged = OmegaConf.merge(OmegaConf.structured(schema), node)
        return OmegaConf.to_object(merged)
    except OmegaConfBaseException as err:
        key = f"{section}.{err.full_key}" if getattr(err, "full_key", None) else section
        reason = str(err.msg).splitlines()[0]
        raise ConfigError(f"{key}: {reason}") from None


def _by_name(section: str, schemas: dict[str, type], node: Any):
    if not isinstance(node, DictConfig) or "name" not in node:
        raise ConfigError(f"{section}.name: missing; expected one of {sorted(schemas)}")
    name = node.name
    if name not in schemas:
        raise ConfigError(f"{section}.name: invalid value {shown(name)}; expected one of {sorted(schemas)}")
    return _typed(section, schemas[name], node)


def typed_section(section: str, node: Any, for_training: bool = True):
    """The first stage of ``validate`` for one section: its dataclass, each field of type
    and within its own rule (``for_training=False``: rules that check this machine, such
    as ``model.init_from`` existing, are skipped)."""
    if section == "dataset":
        typed = _by_name(section, DATASET_SCHEMAS, node)
    elif section == "optimizer":
        typed = _by_name(section, {name: schema for name, (schema, _) in OPTIMIZERS.items()}, node)
    else:
        typed = _typed(section, SECTIONS[section], node)
    for problem in violations(section, typed, local=for_training):
        raise ConfigError(problem)
    return typed


def validate(cfg: DictConfig, for_training: bool = True) -> RunConfig:
    """Type-check and value-check a composed config; raise ``ConfigError`` naming the key.
    ``for_training=False`` reads a config logged elsewhere (``load_run_config``,
    ``src.runs.build.load_network``): what only a run about to train here needs (its
    ``init_from`` file, its store's directory, the memory limit) is not checked."""
    for key in cfg:
        if key not in TOP_LEVEL and key != "hydra":
            raise ConfigError(f"{key}: unknown config section; expected one of {list(TOP_LEVEL)}")
    for section in TOP_LEVEL:
        if section not in cfg:
            raise ConfigError(f"{section}: missing config section")
    run = RunConfig(**{section: typed_section(section, cfg[section], for_training) for section in TOP_LEVEL})
    return check_run(run, for_training)


def check_run(run: RunConfig, for_training: bool = True) -> RunConfig:
    """The second stage of ``validate``: the rules that tie fields together (and, for
    training, the memory guard and the store's directory); returns ``run``."""
    for key, value, ok, expectation in _cross_field_rules(run, for_training):
        if not ok:
            raise ConfigError(f"{key}: invalid value {shown(value)}; {expectation}")
    return run


#: Bytes per parameter, in units of its dtype: the parameters, their gradients, up to three
#: optimizer state buffers (Adam with AMSGrad, centred RMSprop with momentum) and one
#: temporary of the update.
PARAMETER_COPIES = 6
#: Per point and unit of every layer: pre-activation, activation, upstream gradient and
#: delta of a training pass over the whole training set.
ACTIVATION_COPIES = 4
GIB = 2**30


@dataclass(frozen=True)
class MemoryEstimate:
    """What a run needs in memory: its parameters (with their gradients and optimizer
    state) and its activations over the dataset, in bytes."""

    parameters: int
    parameter_bytes: int
    activation_bytes: int

    @property
    def total_bytes(self) -> int:
        return self.parameter_bytes + self.activation_bytes


def memory_estimate(run: RunConfig) -> MemoryEstimate:
    """The memory ``run`` needs: an upper bound of the training loop's arrays."""
    sizes = [2, *run.model.hidden_widths, run.n_outputs]
    parameters = sum(
        (fan_in + int(run.model.bias)) * fan_out for fan_in, fan_out in zip(sizes[:-1], sizes[1:], strict=True)
    )
    itemsize = 8 if run.trainer.dtype == "float64" else 4
    units = sum(sizes[1:])
    return MemoryEstimate(
        parameters,
        itemsize * PARAMETER_COPIES * parameters,
        itemsize * ACTIVATION_COPIES * units * run.dataset.n_points,
    )


def _memory_rule(run: RunConfig):
    """``(key, value, ok, expectation)`` of the memory guard, naming the model's width when
    the parameters dominate and the dataset's size otherwise."""
    need = memory_estimate(run)
    limit = run.trainer.max_memory_gib
    if need.parameter_bytes >= need.activation_bytes:
        key = "model.widths" if run.model.widths is not None else "model.width"
        value = run.model.widths if run.model.widths is not None else run.model.width
    else:
        key, value = f"dataset.{run.dataset.size_key}", getattr(run.dataset, run.dataset.size_key)
    return (
        key,
        value,
        need.total_bytes <= limit * GIB,
        f"the run needs about {need.total_bytes / GIB:.3g} GiB ({need.parameters:,} parameters with their "
        f"gradients and optimizer state, activations over {run.dataset.n_points:,} points), more than "
        f"trainer.max_memory_gib={limit:g}",
    )


def load_run_config(path) -> RunConfig:
    """A run's logged ``config.yaml``, validated. A run logged before a key existed lacks
    it; the key then takes its default from ``conf/`` (``config.yaml``, and
    ``model/mlp.yaml`` for the model). That rebuilds the run's network and data exactly:
    every key added since either keeps the old behaviour at its default
    (``model.activations``) or does not shape the network or the data (the trainer's
    stopping rule, the study's labels)."""
    logged = OmegaConf.load(path)
    current = OmegaConf.load(CONF_DIR / "config.yaml")
    base = {section: current[section] for section in ("trainer", "tracking", "study") if section in logged}
    if "model" in logged:
        base["model"] = OmegaConf.load(CONF_DIR / "model" / "mlp.yaml")
    return validate(OmegaConf.merge(OmegaConf.create(base), logged), for_training=False)


def _cross_field_rules(run: RunConfig, for_training: bool):
    """``(key, value, ok, expectation)`` for each rule that ties two fields together."""
    m, o, d, t = run.model, run.optimizer, run.dataset, run.trainer
    n_train = d.n_points - d.n_test
    yield (
        f"dataset.{d.size_key}",
        getattr(d, d.size_key),
        d.n_points >= run.n_classes,
        f"{d.n_points} points cannot hold {run.n_classes} classes",
    )
    yield (
        "dataset.test_fraction",
        d.test_fraction,
        n_train >= run.n_classes,
        f"leaves {n_train} of {d.n_points} points for training, fewer than the {run.n_classes} classes",
    )
    yield (
        "trainer.batch_size",
        t.batch_size,
        t.batch_size is None or t.batch_size <= n_train,
        f"more than the {n_train} training points (null trains on the full batch)",
    )
    required = LOSSES[run.loss.name].required_output
    yield (
        "model.output_activation",
        m.output_activation,
        required is None or m.output_activation == required,
        f"loss {run.loss.name!r} needs model.output_activation={required}",
    )
    yield (
        "dataset.n_classes",
        run.n_classes,
        LOSSES[run.loss.name].max_classes is None or run.n_classes <= LOSSES[run.loss.name].max_classes,
        f"loss {run.loss.name!r} needs a binary dataset (use cross_entropy)",
    )
    yield (
        "model.output_activation",
        m.output_activation,
        m.output_activation != "softmax" or run.n_outputs > 1,
        "softmax needs more than one output unit (use sigmoid for a binary problem, or loss=cross_entropy)",
    )
    yield (
        "model.activations",
        m.activations,
        m.activations is None or len(m.activations) == len(m.hidden_widths),
        f"one activation per hidden layer ({len(m.hidden_widths)})",
    )
    if isinstance(o, SGDConfig):
        yield (
            "optimizer.nesterov",
            o.nesterov,
            not o.nesterov or (o.momentum > 0 and o.dampening == 0),
            "Nesterov momentum needs optimizer.momentum > 0 and optimizer.dampening = 0",
        )
    if for_training:
        yield _memory_rule(run)
        database = sqlite_path(run.tracking.uri or "")
        yield (
            "tracking.uri",
            run.tracking.uri,
            database is None or Path(database).parent.is_dir(),
            "the directory of the sqlite database does not exist",
        )
