"""Build the objects of one run (data, network, optimizer, objective) from a validated config.

One ``numpy.random.Generator`` seeded with ``trainer.seed`` is the only source of
randomness; it is split (``Generator.spawn``) into independent streams for the data,
the initial weights and the batch order, so changing e.g. the batch size does not
change the initial weights.

``load_network(config, weights)`` is the one way back from a run's ``config.yaml`` and
``weights.npz`` to the trained network.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from os import PathLike

import numpy as np
from omegaconf import OmegaConf

from src.engine.initializers import initialize
from src.engine.losses import get_loss
from src.engine.network import MLP
from src.engine.objective import Objective
from src.engine.optimizers import Optimizer, build_optimizer
from src.runs.config import ConfigError, RunConfig, validate
from src.runs.datasets import Dataset, load_dataset


@dataclass
class RunParts:
    data: Dataset
    net: MLP
    optimizer: Optimizer
    objective: Objective
    shuffle_rng: np.random.Generator


def build_network(run: RunConfig) -> MLP:
    """An uninitialised network with sizes ``[2, *hidden_widths, n_outputs]`` in ``trainer.dtype``."""
    m = run.model
    return MLP(
        [2, *m.hidden_widths, run.n_outputs],
        hidden_activation=m.hidden_activations,
        output_activation=m.output_activation,
        bias=m.bias,
        leaky_slope=m.leaky_slope,
        dtype=run.trainer.dtype,
    )


def build_objective(run: RunConfig) -> Objective:
    return Objective(get_loss(run.loss.name), l1=run.trainer.l1, l2=run.trainer.l2)


def random_streams(seed: int) -> tuple[np.random.Generator, np.random.Generator, np.random.Generator]:
    """Independent generators for the data, the initial weights and the batch order."""
    data_rng, init_rng, shuffle_rng = np.random.default_rng(seed).spawn(3)
    return data_rng, init_rng, shuffle_rng


def build_dataset(run: RunConfig) -> Dataset:
    """The run's dataset, exactly as it was trained on (regenerated from the seed)."""
    return load_dataset(run.dataset, random_streams(run.trainer.seed)[0])


def load_network(config: RunConfig | str | PathLike, weights: str | PathLike) -> MLP:
    """The trained network of a run: its config (a ``RunConfig`` or the path of its
    ``config.yaml``, read as is: a pyfunc model carries the code that wrote it, and no
    ``conf/``; ``src.runs.config.load_run_config`` reads older runs' configs) and its
    ``weights.npz``."""
    run = config if isinstance(config, RunConfig) else validate(OmegaConf.load(config), for_training=False)
    net = build_network(run)
    net.load(weights)
    return net


def _check_training_split(run: RunConfig, data: Dataset) -> None:
    """Every class was drawn and keeps at least one training point after the test split."""
    d = run.dataset
    classes = set(range(data.n_classes))
    undrawn = sorted(classes - set(np.unique(np.concatenate([data.y_train, data.y_test])).tolist()))
    if undrawn:
        raise ConfigError(
            f"dataset.{d.size_key}: invalid value {getattr(d, d.size_key)!r}; draws no point of class {undrawn[0]} "
            f"with trainer.seed={run.trainer.seed}"
        )
    missing = sorted(classes - set(np.unique(data.y_train).tolist()))
    if missing:
        raise ConfigError(
            f"dataset.test_fraction: invalid value {d.test_fraction!r}; leaves no training point "
            f"of class {missing[0]} ({len(data.y_train)} of {len(data.y_train) + len(data.y_test)} points train)"
        )


def _initial_weights(run: RunConfig, net: MLP) -> None:
    """Load ``model.init_from`` into ``net``: a weights archive of the model's shapes, every
    value finite."""
    path = run.model.init_from
    try:
        net.load(path)
    except (ValueError, OSError) as err:
        raise ConfigError(f"model.init_from: invalid value {path!r}; {err}") from None
    bad = [name for name, values in net.views(net.params).items() if not np.isfinite(values).all()]
    if bad:
        raise ConfigError(f"model.init_from: invalid value {path!r}; {bad[0]} holds NaN or infinite weights")


def assemble(run: RunConfig) -> RunParts:
    """Data, initialised network, optimizer and objective; raises ``ConfigError`` when the
    data leave a class without training points or ``model.init_from`` does not fit the
    network."""
    data_rng, init_rng, shuffle_rng = random_streams(run.trainer.seed)
    data = load_dataset(run.dataset, data_rng)
    _check_training_split(run, data)
    net = build_network(run)
    if run.model.init_from is None:
        initialize(net, run.model.init, init_rng)
    else:
        _initial_weights(run, net)
    hyperparameters = {k: v for k, v in asdict(run.optimizer).items() if k != "name"}
    if "betas" in hyperparameters:
        hyperparameters["betas"] = tuple(hyperparameters["betas"])
    optimizer = build_optimizer(run.optimizer_rule, net.params, net.grads, **hyperparameters)
    return RunParts(data, net, optimizer, build_objective(run), shuffle_rng)
