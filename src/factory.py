"""Build the objects of one run (data, network, optimizer, loss) from a validated config.

One ``numpy.random.Generator`` seeded with ``trainer.seed`` is the only source of
randomness; it is split (``Generator.spawn``) into independent streams for the data,
the initial weights and the batch order, so changing e.g. the batch size does not
change the initial weights.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from src.config import OPTIMIZER_KINDS, ConfigError, RunConfig
from src.datasets import Dataset, load_dataset
from src.initializers import initialize
from src.losses import get_loss
from src.network import MLP
from src.objective import Objective
from src.optimizers import Optimizer, build_optimizer


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
        hidden_activation=m.activation,
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


def build(run: RunConfig) -> RunParts:
    """Data, initialised network, optimizer and objective; raises ``ConfigError`` when
    ``model.init_from`` does not fit the network."""
    data_rng, init_rng, shuffle_rng = random_streams(run.trainer.seed)
    data = load_dataset(run.dataset, data_rng)
    net = build_network(run)
    if run.model.init_from is None:
        initialize(net, run.model.init, init_rng)
    else:
        try:
            net.load(run.model.init_from)
        except (ValueError, OSError) as err:
            raise ConfigError(f"model.init_from: {run.model.init_from!r} does not fit the model: {err}") from None
    hyperparameters = {k: v for k, v in asdict(run.optimizer).items() if k != "name"}
    if "betas" in hyperparameters:
        hyperparameters["betas"] = tuple(hyperparameters["betas"])
    optimizer = build_optimizer(OPTIMIZER_KINDS[run.optimizer.name], net.params, net.grads, **hyperparameters)
    return RunParts(data, net, optimizer, build_objective(run), shuffle_rng)
