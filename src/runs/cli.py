"""The command line: ``python -m src.train [overrides]`` trains one configuration,
``python -m src.train -m optimizer=sgd,adam ...`` sweeps a grid (see README).

Hydra composes ``conf/config.yaml`` with the overrides; ``main`` hands the result and
the job's place in the sweep to ``src.runs.tracked_run.train_and_track``. MLflow's own
log lines are kept to warnings and errors.
"""

from __future__ import annotations

import logging
import os
import sys

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from src.runs import figure_worker
from src.runs.config import CONF_DIR, ConfigError
from src.runs.contract import TAG_DESCRIPTION, TAG_JOB_NUM, TAG_OUTPUT_DIR, TAG_OVERRIDES, TAG_SWEEP_DIR
from src.runs.store import StoreUnavailable
from src.runs.sweep import SweepPlan, read_parent_run_id, read_plan

#: MLflow's own messages at WARNING and above (set MLFLOW_LOGGING_LEVEL=INFO to see its
#: INFO lines); read by MLflow when it is imported, here and in launched workers.
os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
log = logging.getLogger(__name__)


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
    return JobContext(parent_run_id=read_parent_run_id(hydra_cfg.sweep.dir), run_name=name, tags=tags)


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="config")
def main(cfg: DictConfig) -> dict[str, float]:
    """Train and track one configuration; returns its summary metrics (read by sweepers
    such as ``hydra/sweeper=tuned``)."""
    return run_job(cfg)


def run_job(cfg: DictConfig, trained=None) -> dict[str, float]:
    """The body of a Hydra job: ``main``'s, or the stacked launcher's with the job's
    ``trained`` stack result (``src.runs.loop.StackResult``).

    An invalid config or a store that does not answer ends a single run with exit status
    1 and a one-line message; in a multirun the error fails only that job (Hydra reports
    it when the sweep ends).

    The figure worker (``src.runs.figure_worker``) starts before MLflow is imported, so
    that it imports matplotlib on the other core meanwhile.
    """
    single = HydraConfig.get().mode != RunMode.MULTIRUN
    worker, close_after = figure_worker.for_job(single, bool(cfg.get("tracking", {}).get("log_figures", True)))
    try:
        from src.runs.tracked_run import train_and_track

        hydra_cfg = HydraConfig.get()
        plan = None if single else read_plan(hydra_cfg.sweep.dir)
        metrics = train_and_track(cfg, job_context(plan), worker, trained).final_metrics
        if plan is not None:
            log.info("%s", plan.progress(hydra_cfg.job.num))
        return metrics
    except ConfigError as err:
        if not single:
            raise
        sys.exit(f"error: invalid config: {err}")
    except StoreUnavailable as err:
        if not single:
            raise
        sys.exit(f"error: {err}")
    finally:
        if close_after:
            worker.close()
