"""Typed schemas for the composed Hydra config, and the checks run before training.

``validate(cfg)`` merges each section of a composed ``DictConfig`` into its
structured-config schema (OmegaConf enforces types and rejects unknown keys), then
checks values and cross-field consistency. Any problem raises ``ConfigError`` with
the dotted key and the offending value, before anything is trained or tracked.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Optional

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from src.activations import HIDDEN_ACTIVATIONS, OUTPUT_ACTIVATIONS
from src.initializers import INIT_SCHEMES
from src.losses import LOSSES


DTYPES = ("float64", "float32")


class ConfigError(ValueError):
    """A config value is missing, mistyped or out of range; the message names the key."""


# --- datasets -------------------------------------------------------------------------


@dataclass
class LinearDataset:
    name: str = "linear"
    n_samples: int = 100
    test_fraction: float = 0.0


@dataclass
class XorDataset:
    name: str = "xor"
    n_points: int = 11
    test_fraction: float = 0.0


@dataclass
class MoonsDataset:
    name: str = "moons"
    n_samples: int = 200
    noise: float = 0.2
    test_fraction: float = 0.0


@dataclass
class BlobsDataset:
    name: str = "blobs"
    n_samples: int = 200
    n_classes: int = 2
    cluster_std: float = 1.0
    test_fraction: float = 0.0


DATASET_SCHEMAS = {s.name: s for s in (LinearDataset, XorDataset, MoonsDataset, BlobsDataset)}


# --- optimizers -----------------------------------------------------------------------


@dataclass
class SGDOptimizer:
    name: str = "sgd"
    lr: float = 0.1
    momentum: float = 0.0
    dampening: float = 0.0
    nesterov: bool = False
    weight_decay: float = 0.0


@dataclass
class MomentumOptimizer(SGDOptimizer):
    name: str = "momentum"
    momentum: float = 0.9


@dataclass
class NesterovOptimizer(SGDOptimizer):
    name: str = "nesterov"
    momentum: float = 0.9
    nesterov: bool = True


@dataclass
class AdagradOptimizer:
    name: str = "adagrad"
    lr: float = 0.01
    lr_decay: float = 0.0
    weight_decay: float = 0.0
    initial_accumulator_value: float = 0.0
    eps: float = 1e-10


@dataclass
class AdamOptimizer:
    name: str = "adam"
    lr: float = 0.001
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    eps: float = 1e-8
    weight_decay: float = 0.0
    amsgrad: bool = False


@dataclass
class RMSpropOptimizer:
    name: str = "rmsprop"
    lr: float = 0.01
    alpha: float = 0.99
    eps: float = 1e-8
    weight_decay: float = 0.0
    momentum: float = 0.0
    centered: bool = False


@dataclass
class AdamWOptimizer(AdamOptimizer):
    name: str = "adamw"
    weight_decay: float = 0.01


OPTIMIZER_SCHEMAS = {
    s.name: s
    for s in (
        SGDOptimizer,
        MomentumOptimizer,
        NesterovOptimizer,
        AdagradOptimizer,
        RMSpropOptimizer,
        AdamOptimizer,
        AdamWOptimizer,
    )
}
#: Which update rule (``src.optimizers.OPTIMIZERS`` key) each optimizer config uses.
OPTIMIZER_KINDS = {
    "sgd": "sgd",
    "momentum": "sgd",
    "nesterov": "sgd",
    "adagrad": "adagrad",
    "rmsprop": "rmsprop",
    "adam": "adam",
    "adamw": "adamw",
}


# --- model, loss, trainer, tracking ---------------------------------------------------


@dataclass
class ModelConfig:
    depth: int = 2
    width: int = 8
    widths: Optional[list[int]] = None
    activation: str = "tanh"
    leaky_slope: float = 0.01
    output_activation: str = "sigmoid"
    init: str = "xavier"
    init_from: Optional[str] = None
    bias: bool = True

    @property
    def hidden_widths(self) -> list[int]:
        """Per-layer hidden widths: ``widths`` when given, else ``depth`` times ``width``."""
        return list(self.widths) if self.widths is not None else [self.width] * self.depth


@dataclass
class LossConfig:
    name: str = "mse"


@dataclass
class TrainerConfig:
    epochs: int = 2000
    batch_size: Optional[int] = None
    shuffle: bool = True
    seed: int = 0
    loss_threshold: Optional[float] = None
    log_every: int = 200
    dtype: str = "float64"
    l1: float = 0.0
    l2: float = 0.0
    gradcheck: bool = False
    gradcheck_tolerance: float = 1e-6


@dataclass
class TrackingConfig:
    uri: Optional[str] = None
    experiment: str = "backprop"
    run_name: Optional[str] = None
    log_figures: bool = True
    log_model: bool = True


@dataclass
class RunConfig:
    """The validated config of one training run."""

    dataset: Any
    model: ModelConfig
    optimizer: Any
    loss: LossConfig
    trainer: TrainerConfig
    tracking: TrackingConfig

    @property
    def n_classes(self) -> int:
        return getattr(self.dataset, "n_classes", 2)

    @property
    def n_outputs(self) -> int:
        """One sigmoid-style output for binary problems, one unit per class otherwise."""
        if self.n_classes == 2 and self.loss.name != "cross_entropy":
            return 1
        return self.n_classes

    def to_dict(self) -> dict:
        return OmegaConf.to_container(OmegaConf.structured(self), resolve=True)


SECTIONS = {"model": ModelConfig, "loss": LossConfig, "trainer": TrainerConfig, "tracking": TrackingConfig}


def _typed(section: str, schema: type, node: Any):
    """Merge ``node`` into ``schema`` (type checks, unknown keys) and build the dataclass."""
    try:
        merged = OmegaConf.merge(OmegaConf.structured(schema), node)
        return OmegaConf.to_object(merged)
    except OmegaConfBaseException as err:
        key = f"{section}.{err.full_key}" if getattr(err, "full_key", None) else section
        reason = str(err.msg).splitlines()[0]
        raise ConfigError(f"{key}: {reason}") from None


def _by_name(section: str, schemas: dict, node: Any):
    if not isinstance(node, DictConfig) or "name" not in node:
        raise ConfigError(f"{section}.name: missing; expected one of {sorted(schemas)}")
    name = node.name
    if name not in schemas:
        raise ConfigError(f"{section}.name: unknown value {name!r}; expected one of {sorted(schemas)}")
    return _typed(section, schemas[name], node)


def validate(cfg: DictConfig) -> RunConfig:
    """Type-check and value-check a composed config; raise ``ConfigError`` naming the key."""
    missing = [s for s in ("dataset", "optimizer", *SECTIONS) if s not in cfg]
    if missing:
        raise ConfigError(f"{missing[0]}: missing config section")
    sections = {name: _typed(name, schema, cfg[name]) for name, schema in SECTIONS.items()}
    run = RunConfig(
        dataset=_by_name("dataset", DATASET_SCHEMAS, cfg.dataset),
        optimizer=_by_name("optimizer", OPTIMIZER_SCHEMAS, cfg.optimizer),
        **sections,
    )
    for key, value, ok, expectation in _value_checks(run):
        if not ok:
            raise ConfigError(f"{key}: invalid value {value!r}; {expectation}")
    return run


def _value_checks(run: RunConfig):
    """Yield ``(key, value, ok, expectation)`` for every value rule."""
    d, m, o, t = run.dataset, run.model, run.optimizer, run.trainer

    if hasattr(d, "n_samples"):
        yield "dataset.n_samples", d.n_samples, d.n_samples >= 2, "expected an integer >= 2"
    if hasattr(d, "n_points"):
        yield "dataset.n_points", d.n_points, d.n_points >= 2, "expected an integer >= 2"
    if hasattr(d, "noise"):
        yield "dataset.noise", d.noise, d.noise >= 0, "expected a number >= 0"
    if hasattr(d, "cluster_std"):
        yield "dataset.cluster_std", d.cluster_std, d.cluster_std > 0, "expected a number > 0"
    if hasattr(d, "n_classes"):
        yield "dataset.n_classes", d.n_classes, d.n_classes >= 2, "expected an integer >= 2"
    yield "dataset.test_fraction", d.test_fraction, 0 <= d.test_fraction < 1, "expected 0 <= fraction < 1"

    yield "model.depth", m.depth, m.depth >= 0, "expected an integer >= 0 (0 = no hidden layer)"
    yield "model.width", m.width, m.width >= 1, "expected an integer >= 1"
    if m.widths is not None:
        yield "model.widths", m.widths, all(w >= 1 for w in m.widths), "expected a list of integers >= 1"
    yield "model.activation", m.activation, m.activation in HIDDEN_ACTIVATIONS, f"expected one of {list(HIDDEN_ACTIVATIONS)}"
    yield (
        "model.output_activation",
        m.output_activation,
        m.output_activation in OUTPUT_ACTIVATIONS,
        f"expected one of {list(OUTPUT_ACTIVATIONS)}",
    )
    yield "model.leaky_slope", m.leaky_slope, math.isfinite(m.leaky_slope), "expected a finite number"
    yield "model.init", m.init, m.init in INIT_SCHEMES, f"expected one of {list(INIT_SCHEMES)}"
    if m.init_from is not None:
        yield "model.init_from", m.init_from, Path(m.init_from).is_file(), "no such file"

    yield "loss.name", run.loss.name, run.loss.name in LOSSES, f"expected one of {sorted(LOSSES)}"
    if run.loss.name in LOSSES:
        required = LOSSES[run.loss.name].required_output
        yield (
            "model.output_activation",
            m.output_activation,
            required is None or m.output_activation == required,
            f"loss {run.loss.name!r} needs model.output_activation={required}",
        )
    if run.loss.name == "bce":
        yield "dataset.n_classes", run.n_classes, run.n_classes == 2, "loss 'bce' needs a binary dataset (use cross_entropy)"
    if m.output_activation == "softmax":
        yield (
            "model.output_activation",
            m.output_activation,
            run.n_outputs > 1,
            "softmax needs more than one output unit (use sigmoid for a binary problem, or loss=cross_entropy)",
        )

    yield "optimizer.lr", o.lr, math.isfinite(o.lr) and o.lr > 0, "expected a number > 0"
    yield "optimizer.weight_decay", o.weight_decay, o.weight_decay >= 0, "expected a number >= 0"
    names = {f.name for f in fields(o)}
    if "momentum" in names:
        yield "optimizer.momentum", o.momentum, 0 <= o.momentum < 1, "expected 0 <= momentum < 1"
    if "dampening" in names:
        yield "optimizer.dampening", o.dampening, 0 <= o.dampening <= 1, "expected 0 <= dampening <= 1"
        yield (
            "optimizer.nesterov",
            o.nesterov,
            not o.nesterov or (o.momentum > 0 and o.dampening == 0),
            "Nesterov momentum needs optimizer.momentum > 0 and optimizer.dampening = 0",
        )
    if "alpha" in names:
        yield "optimizer.alpha", o.alpha, 0 <= o.alpha < 1, "expected 0 <= alpha < 1"
    if "betas" in names:
        yield (
            "optimizer.betas",
            o.betas,
            len(o.betas) == 2 and all(0 <= b < 1 for b in o.betas),
            "expected two numbers in [0, 1)",
        )
    if "eps" in names:
        yield "optimizer.eps", o.eps, o.eps > 0, "expected a number > 0"
    if "lr_decay" in names:
        yield "optimizer.lr_decay", o.lr_decay, o.lr_decay >= 0, "expected a number >= 0"
        yield (
            "optimizer.initial_accumulator_value",
            o.initial_accumulator_value,
            o.initial_accumulator_value >= 0,
            "expected a number >= 0",
        )

    yield "trainer.epochs", t.epochs, t.epochs >= 1, "expected an integer >= 1"
    yield "trainer.batch_size", t.batch_size, t.batch_size is None or t.batch_size >= 1, "expected null (full batch) or an integer >= 1"
    yield (
        "trainer.loss_threshold",
        t.loss_threshold,
        t.loss_threshold is None or t.loss_threshold > 0,
        "expected null (no early stop) or a number > 0",
    )
    yield "trainer.log_every", t.log_every, t.log_every >= 1, "expected an integer >= 1"
    yield "trainer.seed", t.seed, t.seed >= 0, "expected an integer >= 0"
    yield "trainer.dtype", t.dtype, t.dtype in DTYPES, f"expected one of {list(DTYPES)}"
    yield "trainer.l1", t.l1, t.l1 >= 0, "expected a number >= 0"
    yield "trainer.l2", t.l2, t.l2 >= 0, "expected a number >= 0"
    yield "trainer.gradcheck_tolerance", t.gradcheck_tolerance, t.gradcheck_tolerance > 0, "expected a number > 0"
    yield "tracking.experiment", run.tracking.experiment, bool(run.tracking.experiment.strip()), "expected a non-empty name"
