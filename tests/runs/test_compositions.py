"""Each sweep job is composed once: the sweeper's check keeps its compositions for a
launcher that composes in this process, and none for one that composes in its workers."""

import pytest
from hydra import initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.plugins.sweeper import Sweeper as HydraSweeper
from hydra.types import RunMode

from src.runs import compositions
from src.runs.config import CONF_DIR


class Launcher:
    """Stands for a launcher class of the given name (only its name is read)."""


class Sweeper:
    def __init__(self, loader, config, launcher_name: str):
        self.hydra_context = type("Context", (), {"config_loader": loader})()
        self.config = config
        self.launcher = type(launcher_name, (Launcher,), {})()

    def validate_batch_is_legal(self, batch):
        return HydraSweeper.validate_batch_is_legal(self, batch)  # as patched by ``install``


@pytest.mark.parametrize(("launcher", "kept"), [("BasicLauncher", True), ("JoblibLauncher", False)])
def test_the_launcher_takes_the_compositions_the_sweeper_made_to_check_the_jobs(monkeypatch, launcher, kept):
    compositions.install()
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        loader = GlobalHydra.instance().config_loader()
        master = loader.load_configuration("config", ["optimizer.lr=0.1,0.5"], RunMode.MULTIRUN)
        composed = []
        original = type(loader).load_configuration
        monkeypatch.setattr(
            type(loader), "load_configuration", lambda self, *a, **k: composed.append(a) or original(self, *a, **k)
        )
        Sweeper(loader, master, launcher).validate_batch_is_legal([["optimizer.lr=0.1"], ["optimizer.lr=0.5"]])
        assert len(composed) == 2
        first = loader.load_sweep_config(master, ["optimizer.lr=0.1"])
        second = loader.load_sweep_config(master, ["optimizer.lr=0.5"])
        assert (first.optimizer.lr, second.optimizer.lr) == (0.1, 0.5)
        assert len(composed) == (2 if kept else 4)
        again = loader.load_sweep_config(master, ["optimizer.lr=0.1"])  # a kept composition is handed over once
        assert len(composed) == (3 if kept else 5) and again is not first
