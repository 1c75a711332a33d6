"""The command line: ``python -m src.train [overrides]`` trains one configuration,
``python -m src.train -m optimizer=sgd,adam ...`` sweeps a grid (see README).

Hydra composes ``conf/config.yaml`` with the overrides; ``main`` hands the result and
the job's place in the sweep to ``src.runs.tracked_run.train_and_track``; a sweep's job
finds its parent run in its own config (``hydra.job.env_set``, set by ``src.runs.sweep``).
Ctrl-C and SIGTERM stop a job as an interrupt (``src.runs.interrupts``). MLflow's own
log lines are kept to warnings and errors.
"""

from __future__ import annotations

import atexit
import functools
import logging
import os
import re
import sys
import threading
from pathlib import Path

import hydra
from hydra._internal.hydra import Hydra
from hydra.core.hydra_config import HydraConfig
from hydra.errors import CompactHydraException
from hydra.types import RunMode
from omegaconf import DictConfig

from src.runs import compositions, figure_worker, interrupts
from src.runs.config import CONF_DIR, ConfigError, RunConfig, validate
from src.runs.contract import (
    PARENT_RUN_ENV,
    SWEEP_INTERRUPTED_FILE,
    TAG_DESCRIPTION,
    TAG_JOB_NUM,
    TAG_OUTPUT_DIR,
    TAG_OVERRIDES,
    TAG_SWEEP_DIR,
)
from src.runs.store import StoreUnavailable
from src.runs.sweep import SweepPlan, read_plan

#: MLflow's own messages at WARNING and above (set MLFLOW_LOGGING_LEVEL=INFO to see its
#: INFO lines); read by MLflow when it is imported, here and in launched workers.
os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
#: A Databricks-only lookup MLflow makes at every ``start_run`` (it imports IPython to ask
#: for a notebook widget: 0.2 s of a run's start-up).
os.environ.setdefault("MLFLOW_ENABLE_SGC_RUN_RESUMPTION_FOR_DATABRICKS_JOBS", "false")
#: Nothing leaves the machine but what goes to the tracking store: MLflow's usage
#: telemetry is off (set MLFLOW_DISABLE_TELEMETRY=false to let MLflow send it). On a
#: machine without a way out its thread also tries to fetch its config at every start
#: (about 0.1 s of a single run's start-up).
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
log = logging.getLogger(__name__)

#: Config lines that could set ``hydra.mode`` (or add a config source that could).
_MODE_LINE = re.compile(r"^\s*(mode|searchpath)\s*:", re.MULTILINE)
#: The config sources of ``python -m src.train``: Hydra's own, this project's, the config store.
_OWN_SOURCES = {("hydra", "pkg://hydra.conf"), ("main", str(CONF_DIR)), ("schema", "structured://")}


@functools.cache
def _configs_set_mode() -> bool:
    return any(_MODE_LINE.search(path.read_text()) for path in CONF_DIR.rglob("*.yaml"))


def _mode_unless_set(get_mode):
    """Hydra composes the whole config once only to read ``hydra.mode``, and then again
    for the run: a quarter of a second of every start. Only a config or an override can
    set ``hydra.mode``; when none can (no override of ``hydra.mode`` or
    ``hydra.searchpath``, no extra config directory, no ``mode:`` or ``searchpath:`` line
    in ``conf/``), the mode is unset (``-m`` alone chooses) and Hydra's own answer is not
    needed."""

    @functools.wraps(get_mode)
    def mode(self: Hydra, config_name: str | None, overrides: list[str]):
        sources = {(path.provider, path.path) for path in self.config_loader.get_search_path().get_path()}
        keys = (override.lstrip("+~").split("=", 1)[0] for override in overrides)
        if sources <= _OWN_SOURCES and not _configs_set_mode():
            if not any(key.startswith(("hydra.mode", "hydra.searchpath")) for key in keys):
                return None
        return get_mode(self, config_name, overrides)

    return mode


Hydra.get_mode = _mode_unless_set(Hydra.get_mode)
compositions.install()


class InvalidJob(CompactHydraException):
    """A sweep's job that does not run (an invalid config, or a sweep interrupted before
    the job's turn): Hydra reports it by its one-line message."""


def job_context(plan: SweepPlan | None):
    """Parent run, name and tags of the current Hydra job (``plan``: its sweep's; None for
    a single run)."""
    from src.runs.tracked_run import JobContext
    from src.runs.tracking import sweep_run_name

    hydra_cfg = HydraConfig.get()
    overrides = " ".join(hydra_cfg.overrides.task)
    tags = {TAG_OVERRIDES: overrides, TAG_OUTPUT_DIR: hydra_cfg.runtime.output_dir}
    if hydra_cfg.mode != RunMode.MULTIRUN:
        return JobContext(tags={**tags, TAG_DESCRIPTION: f"python -m src.train {overrides}".rstrip()})
    tags.update({TAG_SWEEP_DIR: hydra_cfg.sweep.dir, TAG_JOB_NUM: str(hydra_cfg.job.num)})
    tags[TAG_DESCRIPTION] = f"Job {hydra_cfg.job.num} of the sweep in {hydra_cfg.sweep.dir}: {overrides}"
    name = sweep_run_name(hydra_cfg.overrides.task, plan.swept)
    return JobContext(parent_run_id=hydra_cfg.job.env_set.get(PARENT_RUN_ENV), run_name=name, tags=tags)


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="config")
def main(cfg: DictConfig) -> dict[str, float]:
    """Train and track one configuration; returns its summary metrics (read by sweepers
    such as ``hydra/sweeper=tuned``)."""
    return run_job(cfg)


def run_job(cfg: DictConfig, trained=None, run: RunConfig | None = None) -> dict[str, float]:
    """The body of a Hydra job: ``main``'s, or the stacked launcher's with the job's
    ``trained`` stack result (``src.runs.loop.StackResult``) and its validated ``run``.

    An invalid config or a store that does not answer ends a single run with exit status
    1 and a one-line message; in a multirun it fails only that job, with one line (and
    Hydra names the job again when the sweep ends, with exit status 1).

    The figure worker (``src.runs.figure_worker``) starts once the config is valid and
    before MLflow is imported, so that it imports matplotlib on the other core meanwhile.
    """
    interrupts.install()
    single = HydraConfig.get().mode != RunMode.MULTIRUN
    worker, close_after = None, False
    try:
        run = run or validate(cfg)  # a bad value stops here, before the figure worker starts
        worker, close_after = figure_worker.for_job(run, single)
        from src.runs.tracked_run import train_and_track

        hydra_cfg = HydraConfig.get()
        if not single and trained is None and (Path(hydra_cfg.sweep.dir) / SWEEP_INTERRUPTED_FILE).exists():
            raise InvalidJob("not started: the sweep was interrupted")  # (a stack's jobs log what they reached)
        plan = None if single else read_plan(hydra_cfg.sweep.dir)
        metrics = train_and_track(run, job_context(plan), worker, trained).final_metrics
        if plan is not None:
            log.info("%s", plan.progress(hydra_cfg.job.num))
        return metrics
    except ConfigError as err:
        if not single:
            log.error("invalid config: %s", err)
            raise InvalidJob(f"invalid config: {err}") from None
        sys.exit(f"error: invalid config: {err}")
    except StoreUnavailable as err:
        if not single:
            raise
        sys.exit(f"error: {err}")
    finally:
        if close_after:
            worker.close()


def exit_now() -> None:
    """End a command that succeeded without Python's interpreter teardown, which frees the
    300 000 objects of MLflow's, SQLAlchemy's and Hydra's modules one by one (a quarter of
    a second, a tenth of a short run's start-up): first every ``atexit`` handler runs and
    the log handlers and standard streams are flushed, so nothing is lost. While another
    thread that is not a daemon still runs (a launcher's pool), the process exits the usual
    way instead."""
    if any(not thread.daemon for thread in threading.enumerate() if thread is not threading.main_thread()):
        return
    atexit._run_exitfuncs()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
