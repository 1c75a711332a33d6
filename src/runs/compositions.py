"""Each job of a sweep composed once.

Hydra's sweepers compose every job of a batch to check it before launching it
(``Sweeper.validate_batch_is_legal``), and a launcher that runs the jobs in this process
(the basic one, ``hydra/launcher=stacked``) then composes each job again: about 70 ms a
job. ``install()`` makes the check keep its compositions, keyed by the config
loader, the sweep's master config and the job's overrides, and the loader's
``load_sweep_config`` hand a kept one over (once) instead of composing it again. Launchers
that compose in their workers (joblib, submitit) keep nothing, so their parent holds no
configs.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

from hydra._internal.config_loader_impl import ConfigLoaderImpl
from hydra.plugins.sweeper import Sweeper
from omegaconf import DictConfig

#: Launchers that compose each job in this process (by class name).
IN_PROCESS_LAUNCHERS = frozenset({"BasicLauncher", "StackedLauncher"})
#: (id of the loader, id of the master config, the job's overrides) -> its composed config
_kept: dict[tuple[int, int, tuple[str, ...]], DictConfig] = {}


def _keeping_checks(validate):
    @functools.wraps(validate)
    def checked(self: Sweeper, batch: Sequence[Sequence[str]]) -> None:
        launcher = getattr(self, "launcher", None)
        if type(launcher).__name__ not in IN_PROCESS_LAUNCHERS:
            return validate(self, batch)
        loader = self.hydra_context.config_loader
        for overrides in batch:
            config = loader.load_sweep_config(master_config=self.config, sweep_overrides=list(overrides))
            _kept[(id(loader), id(self.config), tuple(overrides))] = config

    return checked


def _taking_kept(load_sweep_config):
    @functools.wraps(load_sweep_config)
    def load(self: ConfigLoaderImpl, master_config: DictConfig, sweep_overrides: list[str]) -> DictConfig:
        kept = _kept.pop((id(self), id(master_config), tuple(sweep_overrides)), None)
        return kept if kept is not None else load_sweep_config(self, master_config, sweep_overrides)

    return load


def install() -> None:
    """Patch Hydra's sweeper check and config loader (once per process)."""
    if not getattr(Sweeper.validate_batch_is_legal, "keeps_compositions", False):
        Sweeper.validate_batch_is_legal = _keeping_checks(Sweeper.validate_batch_is_legal)
        Sweeper.validate_batch_is_legal.keeps_compositions = True
        ConfigLoaderImpl.load_sweep_config = _taking_kept(ConfigLoaderImpl.load_sweep_config)
