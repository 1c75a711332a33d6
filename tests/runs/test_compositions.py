"""Each shape of sweep job is composed once: the sweeper's check and the launcher derive
every other job from that composition, equal to Hydra's own node by node."""

import pytest
from hydra import initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.plugins.sweeper import Sweeper as HydraSweeper
from hydra.types import RunMode

from src.runs import compositions
from src.runs.config import CONF_DIR


class Sweeper:
    """Stands for a sweeper: Hydra's check reads only its config loader and master config."""

    def __init__(self, loader, config):
        self.hydra_context = type("Context", (), {"config_loader": loader})()
        self.config = config

    def validate_batch_is_legal(self, batch):
        return HydraSweeper.validate_batch_is_legal(self, batch)


def test_the_sweepers_check_and_the_launcher_compose_each_shape_once(monkeypatch):
    compositions.install()
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        loader = GlobalHydra.instance().config_loader()
        master = loader.load_configuration("config", ["optimizer=sgd,adam"], RunMode.MULTIRUN)
        composed = []
        original = type(loader).load_configuration
        monkeypatch.setattr(
            type(loader), "load_configuration", lambda self, *a, **k: composed.append(a) or original(self, *a, **k)
        )
        Sweeper(loader, master).validate_batch_is_legal([["optimizer=sgd"], ["optimizer=adam"]])
        assert len(composed) == 2  # two config groups: neither job is derived from the other
        first = loader.load_sweep_config(master, ["optimizer=sgd"])
        second = loader.load_sweep_config(master, ["optimizer=adam"])
        assert (first.optimizer.name, second.optimizer.name) == ("sgd", "adam")
        assert len(composed) == 2  # the launcher's loads are derived from the check's compositions
        again = loader.load_sweep_config(master, ["optimizer=sgd"])
        assert again is not first and again == first and len(composed) == 2


def _nodes(config, path: str = "") -> list[tuple]:
    """Every node of ``config``: (path, node type, flags, value)."""
    from omegaconf import DictConfig, ListConfig, OmegaConf

    rows = [(path, type(config).__name__, OmegaConf.is_struct(config), OmegaConf.is_readonly(config))]
    keys = range(len(config)) if isinstance(config, ListConfig) else list(config.keys())
    for key in keys:
        node = config._get_node(key)
        if isinstance(node, (DictConfig, ListConfig)):
            rows += _nodes(node, f"{path}.{key}")
        else:
            rows.append((f"{path}.{key}", type(node).__name__, node._get_flag("readonly"), node._value()))
    return rows


#: (a sweep, its number of jobs, the number of them Hydra composes: one per config group
#: choice, list value and ``+``/``~`` override; the others are derived)
SWEEPS = [
    (("optimizer.lr=0.1,0.5", "trainer.seed=0,3"), 4, 1),
    (("optimizer=sgd,adam", "optimizer.lr=0.01,0.2", "trainer.loss_threshold=null,0.05"), 8, 2),
    (("model.activations=[relu,tanh],null", "tracking.run_name=a,'b c'", "+extra=1,x", "model.width=3"), 8, 4),
    (("dataset=moons", "dataset.noise=0.1,0.3", "trainer.epochs=10,${trainer.seed}", "~trainer.log_every"), 4, 1),
]


@pytest.mark.parametrize(("sweep", "jobs", "templates"), SWEEPS, ids=[" ".join(s[0]) for s in SWEEPS])
def test_a_derived_job_equals_its_composition_node_by_node(sweep, jobs, templates):
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    compositions.install()
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        loader = GlobalHydra.instance().config_loader()
        master = loader.load_configuration("config", list(sweep), RunMode.MULTIRUN)
        (batch,) = BasicSweeper.split_arguments(OverridesParser.create().parse_overrides(list(sweep)), None)
        assert len(batch) == jobs
        composing = type(loader).load_sweep_config.__wrapped__  # Hydra's own
        derived = [loader.load_sweep_config(master, job) for job in batch]
        assert len(compositions._templates) == templates
        for job, config in zip(batch, derived, strict=True):
            assert _nodes(config) == _nodes(composing(loader, master, job)), job


def test_an_override_hydra_refuses_is_still_refused_with_its_message():
    from hydra.errors import ConfigCompositionException

    compositions.install()
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        loader = GlobalHydra.instance().config_loader()
        master = loader.load_configuration("config", ["trainer.epochs=10,20"], RunMode.MULTIRUN)
        assert loader.load_sweep_config(master, ["trainer.epochs=10"]).trainer.epochs == 10
        assert loader.load_sweep_config(master, ["trainer.epochs=20"]).trainer.epochs == 20
        with pytest.raises(ConfigCompositionException, match="Could not override 'trainer.epochz'"):
            loader.load_sweep_config(master, ["trainer.epochz=20"])
