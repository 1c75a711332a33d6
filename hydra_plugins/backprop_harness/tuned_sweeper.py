"""``hydra/sweeper=tuned``: tune one hyperparameter per setting on a few seeds, then report
each setting at its chosen value on fresh seeds (``src.runs.tuning``).

Hydra imports this module at every start-up to find its plugins, so it imports nothing
of the harness until a sweep starts (and, loaded outside ``sys.modules``, it cannot use
``from __future__ import annotations`` with a dataclass).
"""

from dataclasses import dataclass, field
from typing import Any

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.config_store import ConfigStore


@dataclass
class TunedSweeperConf:
    _target_: str = "hydra_plugins.backprop_harness.tuned_sweeper.TunedSweeper"
    max_batch_size: int | None = None
    #: Swept like the basic sweeper's params: the settings compared (and the datasets).
    params: dict[str, str] | None = None
    tune_key: str | None = None  # the key tuned per setting, e.g. optimizer.lr
    tune_values: list[Any] = field(default_factory=list)  # its grid
    tune_seeds: list[int] = field(default_factory=lambda: [0, 1, 2])  # seeds the choice is made on
    report_seeds: list[int] = field(default_factory=lambda: list(range(100, 110)))  # fresh seeds of the report


ConfigStore.instance().store(group="hydra/sweeper", name="tuned", node=TunedSweeperConf, provider="backprop-harness")


class TunedSweeper(BasicSweeper):
    def __init__(
        self,
        max_batch_size: int | None,
        params: dict[str, str] | None,
        tune_key: str | None,
        tune_values: list[Any],
        tune_seeds: list[int],
        report_seeds: list[int],
    ) -> None:
        super().__init__(max_batch_size=max_batch_size, params=params)
        self.tune_key, self.tune_values = tune_key, list(tune_values)
        self.tune_seeds, self.report_seeds = list(tune_seeds), list(report_seeds)

    def sweep(self, arguments: list[str]) -> Any:
        from src.runs.tuning import tune_then_report

        return tune_then_report(self, arguments)
