"""``hydra/launcher=stacked``: the jobs of a sweep that share a network shape, dataset
size and batch schedule train as one stacked computation (``src.runs.stacked_launcher``).

Hydra imports this module at every start-up to find its plugins, so it imports nothing
of the harness until a sweep is launched (and, loaded outside ``sys.modules``, it
cannot use ``from __future__ import annotations`` with a dataclass).
"""

from collections.abc import Sequence
from dataclasses import dataclass

from hydra.core.config_store import ConfigStore
from hydra.core.utils import JobReturn
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig


@dataclass
class StackedLauncherConf:
    _target_: str = "hydra_plugins.backprop_harness.stacked_launcher.StackedLauncher"
    max_stack: int = 256  # most networks trained in one stack


ConfigStore.instance().store(
    group="hydra/launcher", name="stacked", node=StackedLauncherConf, provider="backprop-harness"
)


class StackedLauncher(Launcher):
    def __init__(self, max_stack: int) -> None:
        self.max_stack = max_stack
        self.config: DictConfig | None = None
        self.task_function: TaskFunction | None = None
        self.hydra_context: HydraContext | None = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.config, self.hydra_context, self.task_function = config, hydra_context, task_function

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        from src.runs.stacked_launcher import launch

        return launch(self, job_overrides, initial_job_idx)
