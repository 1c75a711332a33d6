"""Hydra callback that gives a multirun one MLflow parent run.

``on_multirun_start`` validates the base config, creates the tracking store and the
experiment once (before any job can race to create a fresh sqlite store), opens the
parent run and writes its id to ``<sweep dir>/mlflow_parent_run_id`` and its plan (the
keys it varies, its job count, its start) to ``<sweep dir>/sweep_plan.yaml``, where every
job of the sweep (in this process or another launcher's) finds them: a job is named by
its swept values and ends with the sweep's progress (job k/N, time left). The
parent is named by the swept keys and the job count, and its description holds the
command line. When the sweep ends (``on_multirun_end``: FINISHED; at exit after an error:
FAILED) the parent gets the sweep's report (``src.runs.sweep_report``) and the console
its ranked table.

Hydra instantiates this callback for single runs too, so MLflow is imported only when a
sweep starts.
"""

from __future__ import annotations

import atexit
import logging
import math
import shlex
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from src.runs import figure_worker
from src.runs.config import ConfigError, validate
from src.runs.contract import (
    PARAM_PHASE,
    PARAM_SEED,
    PARENT_RUN_FILE,
    SWEEP_PLAN_FILE,
    TAG_DESCRIPTION,
    TAG_OVERRIDES,
    TAG_SWEEP,
    TAG_SWEEP_DIR,
)
from src.runs.store import StoreUnavailable, check_store, one_line
from src.runs.tracking import ensure_experiment, git_tags, resolve_tracking_uri, sweep_name

log = logging.getLogger(__name__)


def read_parent_run_id(sweep_dir: str | Path) -> str | None:
    path = Path(sweep_dir) / PARENT_RUN_FILE
    return path.read_text().strip() if path.exists() else None


@dataclass(frozen=True)
class SweepPlan:
    """What every job of a sweep knows about it: the keys it varies, its job count (None
    when it is not known in advance) and when it started (seconds since the epoch)."""

    swept: list[str] = field(default_factory=list)
    jobs: int | None = None
    started: float = 0.0

    def progress(self, job_num: int) -> str:
        """``job 3/16, sweep 12 s in, about 52 s left`` after job ``job_num`` (0-based)."""
        done, elapsed = job_num + 1, time.time() - self.started
        if not self.jobs:
            return f"job {done}, sweep {elapsed:.0f} s in"
        left = elapsed / done * max(self.jobs - done, 0)
        return f"job {done}/{self.jobs}, sweep {elapsed:.0f} s in, about {left:.0f} s left"


def read_plan(sweep_dir: str | Path) -> SweepPlan:
    path = Path(sweep_dir) / SWEEP_PLAN_FILE
    return SweepPlan(**yaml.safe_load(path.read_text())) if path.exists() else SweepPlan()


def swept_axes(config: DictConfig) -> tuple[list[str], int | None]:
    """The keys a multirun varies, in the order its sweeper lists them (the preset's
    ``hydra.sweeper.params``, then the command line, a later value replacing an earlier
    one as in Hydra's basic sweeper), and the number of jobs it launches. With
    ``hydra/sweeper=tuned`` the tuned key, the phase and the seed are swept too."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    sweeper = config.hydra.sweeper
    params = [f"{key}={value}" for key, value in (sweeper.get("params") or {}).items()]
    try:
        overrides = OverridesParser.create().parse_overrides(params + list(config.hydra.overrides.task))
        counts: dict[str, int] = {}
        for override in overrides:
            key = override.key_or_group
            counts[key] = len(list(override.sweep_string_iterator())) if override.is_sweep_override() else 1
    except Exception:  # a sweep the parser cannot expand without the config loader (glob)
        return [], None
    swept = [key for key, count in counts.items() if count > 1]
    jobs = math.prod(counts.values())
    if sweeper.get("tune_key"):
        swept += [sweeper.tune_key, PARAM_PHASE, PARAM_SEED]
        jobs *= len(sweeper.tune_values) * len(sweeper.tune_seeds) + len(sweeper.report_seeds)
    return swept, jobs


class MlflowParentRun(Callback):
    def __init__(self) -> None:
        self.client = None
        self.parent_run_id: str | None = None
        self.experiment_id: str | None = None
        self.swept: list[str] = []

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        try:
            run = validate(config)
            uri = resolve_tracking_uri(run.tracking.uri)
            check_store(uri, run.tracking.timeout)
        except (ConfigError, StoreUnavailable) as err:
            sys.exit(f"error: {'invalid config: ' if isinstance(err, ConfigError) else ''}{err}")
        from mlflow.exceptions import MlflowException
        from mlflow.tracking import MlflowClient

        sweep_dir = Path(config.hydra.sweep.dir)
        overrides = " ".join(config.hydra.overrides.task)
        swept, jobs = swept_axes(config)
        command = shlex.join(["python", "-m", "src.train", *sys.argv[1:]])
        self.client = MlflowClient(uri)
        try:
            experiment_id = ensure_experiment(self.client, run.tracking.experiment)
            parent = self.client.create_run(
                experiment_id,
                run_name=sweep_name(swept, jobs, sweep_dir.name),
                tags={
                    **git_tags(),
                    TAG_SWEEP_DIR: str(sweep_dir),
                    TAG_OVERRIDES: overrides,
                    TAG_SWEEP: "true",
                    TAG_DESCRIPTION: command,
                },
            )
        except MlflowException as err:  # no job starts without its parent
            sys.exit(f"error: tracking store {uri}: the sweep's parent run could not be created: {one_line(err)}")
        self.parent_run_id, self.experiment_id, self.swept = parent.info.run_id, experiment_id, swept
        sweep_dir.mkdir(parents=True, exist_ok=True)
        plan = {"swept": swept, "jobs": jobs, "started": time.time()}
        (sweep_dir / SWEEP_PLAN_FILE).write_text(yaml.safe_dump(plan))
        (sweep_dir / PARENT_RUN_FILE).write_text(self.parent_run_id)
        atexit.register(self._finish, "FAILED")
        figure_worker.sweep_starts()
        log.info("MLflow parent run %s for sweep %s", self.parent_run_id, sweep_dir)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        figure_worker.close_shared()
        self._finish("FINISHED")

    def _finish(self, status: str) -> None:
        """Write the sweep's report on the parent (``src.runs.sweep_report``), print its
        ranked table and where to look, and close the parent with ``status``."""
        if self.parent_run_id is None:
            return
        parent_run_id, self.parent_run_id = self.parent_run_id, None
        from src.runs.sweep_report import write_report

        try:
            table = write_report(self.client, self.experiment_id, parent_run_id, self.swept)
            log.info(
                "Sweep %s:\n%s\n%s",
                status.lower(),
                table,
                where_to_look(self.client, self.experiment_id, parent_run_id),
            )
        except Exception as err:  # the children are whole; only the summary is missing
            log.warning("the sweep's report could not be written: %s: %s", type(err).__name__, err)
        finally:
            self.client.set_terminated(parent_run_id, status)


def where_to_look(client, experiment_id: str, run_id: str) -> str:
    """The ``mlflow ui`` command for the store and the run's address in it."""
    uri = client.tracking_uri
    if uri.startswith(("http://", "https://")):
        return f"Browse: {uri.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}"
    return (
        f"Browse: uv run mlflow ui --backend-store-uri {uri}\n"
        f"then http://127.0.0.1:5000/#/experiments/{experiment_id}/runs/{run_id}"
    )
