"""Hydra callback that gives a multirun one MLflow parent run.

``on_multirun_start`` validates the base config, creates the tracking store and the
experiment once (before any job can race to create a fresh sqlite store), opens the
parent run and writes its id to ``<sweep dir>/mlflow_parent_run_id``, where every job
of the sweep (in this process or another launcher's) finds it. ``on_multirun_end``
marks the parent FINISHED; if the sweep ends with an error the parent is marked FAILED.

Hydra instantiates this callback for single runs too, so MLflow is imported only when a
sweep starts.
"""

from __future__ import annotations

import atexit
import logging
import sys
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from src.runs import figure_worker
from src.runs.config import ConfigError, validate
from src.runs.contract import PARENT_RUN_FILE, TAG_OVERRIDES, TAG_SWEEP, TAG_SWEEP_DIR
from src.runs.tracking import ensure_experiment, git_tags, resolve_tracking_uri

log = logging.getLogger(__name__)


def read_parent_run_id(sweep_dir: str | Path) -> str | None:
    path = Path(sweep_dir) / PARENT_RUN_FILE
    return path.read_text().strip() if path.exists() else None


class MlflowParentRun(Callback):
    def __init__(self) -> None:
        self.client = None
        self.parent_run_id: str | None = None

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        try:
            run = validate(config)
        except ConfigError as err:
            sys.exit(f"error: invalid config: {err}")
        from mlflow.tracking import MlflowClient

        self.client = MlflowClient(resolve_tracking_uri(run.tracking.uri))
        experiment_id = ensure_experiment(self.client, run.tracking.experiment)
        sweep_dir = Path(config.hydra.sweep.dir)
        overrides = " ".join(config.hydra.overrides.task)
        parent = self.client.create_run(
            experiment_id,
            run_name=f"sweep {sweep_dir.name}",
            tags={**git_tags(), TAG_SWEEP_DIR: str(sweep_dir), TAG_OVERRIDES: overrides, TAG_SWEEP: "true"},
        )
        self.parent_run_id = parent.info.run_id
        sweep_dir.mkdir(parents=True, exist_ok=True)
        (sweep_dir / PARENT_RUN_FILE).write_text(self.parent_run_id)
        atexit.register(self._finish, "FAILED")
        figure_worker.sweep_starts()
        log.info("MLflow parent run %s for sweep %s", self.parent_run_id, sweep_dir)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        figure_worker.close_shared()
        self._finish("FINISHED")

    def _finish(self, status: str) -> None:
        if self.parent_run_id is None:
            return
        self.client.set_terminated(self.parent_run_id, status)
        self.parent_run_id = None
