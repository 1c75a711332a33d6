"""Command-line entry point: ``python -m src.train [overrides]`` trains one configuration,
``python -m src.train -m optimizer=sgd,adam ...`` sweeps a grid (see README)."""

from __future__ import annotations

import sys

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from src.config import ConfigError
from src.runner import JobContext, run_training
from src.sweep_callback import read_parent_run_id


def job_context() -> JobContext:
    """Parent run and tags of the current Hydra job."""
    hydra_cfg = HydraConfig.get()
    tags = {"hydra_overrides": " ".join(hydra_cfg.overrides.task), "output_dir": hydra_cfg.runtime.output_dir}
    if hydra_cfg.mode != RunMode.MULTIRUN:
        return JobContext(tags=tags)
    tags.update(sweep_dir=hydra_cfg.sweep.dir, job_num=str(hydra_cfg.job.num))
    return JobContext(parent_run_id=read_parent_run_id(hydra_cfg.sweep.dir), tags=tags)


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> float:
    """Train and track one configuration; returns the final training loss (for sweepers).

    An invalid config ends a single run with exit status 1 and a one-line message; in a
    multirun the error fails only that job (Hydra reports it when the sweep ends).
    """
    job = job_context()
    try:
        return run_training(cfg, job).final_metrics["final_train_loss"]
    except ConfigError as err:
        if HydraConfig.get().mode == RunMode.MULTIRUN:
            raise
        sys.exit(f"error: invalid config: {err}")


if __name__ == "__main__":
    main()
