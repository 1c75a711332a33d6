"""Stacked sweeps (``hydra/launcher=stacked``): a sweep's jobs that share a network
shape, dataset size and batch schedule train as one computation.

``launch`` takes every job's config (most of them derived: ``src.runs.compositions``),
validates it, groups the stackable jobs by ``stack_key`` and trains each group with
``src.runs.loop.fit_stacked`` on a ``StackedMLP``: parameters (m, fan_in, fan_out),
batched products, and per-job learning rates, optimizer hyperparameters, seeds (initial
weights and data) and early stops (a job that stops leaves the stack).
Then every job runs through Hydra's ``run_job`` like a basic-launcher job (its own
output directory, config files, callbacks and return value) and becomes its own MLflow
child run with its own metrics, figures and weights: the job logs the history and
parameters its network reached in the stack. Network j of a stack computes exactly
what it computes alone (see ``src.engine.stacked``), so a run's loss history,
``epochs_to_threshold`` and weights equal the basic launcher's.

What can vary within a stack: the seed, every numeric optimizer hyperparameter but
the betas, and the run name. A job runs on its own, as on the basic launcher, when it
trains on mini-batches (the batch order differs per seed), holds out a test split,
uses L1/L2 penalties or the gradient check, trains in float32, has an invalid config,
or is alone in its group; the launcher logs which jobs and why.

Ctrl-C or SIGTERM during a stack's training stops it at its current epoch: each of its
jobs becomes a KILLED child run with the epochs it reached, and the jobs of the stacks
not yet trained never start; then the interrupt goes on to the sweep.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np
import yaml
from hydra.core.utils import JobReturn, configure_log, filter_overrides, run_job, setup_globals
from omegaconf import DictConfig, open_dict

from src.engine.optimizers import build_optimizer
from src.engine.stacked import StackedMLP
from src.runs.build import assemble
from src.runs.config import ConfigError, RunConfig, validate
from src.runs.loop import StackResult, fit_stacked
from src.runs.snapshots import snapshot_epochs
from src.runs.sweep import pace_from_now

log = logging.getLogger(__name__)
#: Optimizer fields that must be equal across a stack (they decide buffers or are raised to powers).
STRUCTURAL = ("name", "betas", "nesterov", "centered", "amsgrad")


def unstackable(run: RunConfig) -> str | None:
    """Why the job must run on its own, or None."""
    t = run.trainer
    if t.batch_size is not None:
        return f"mini-batches (trainer.batch_size={t.batch_size})"
    if run.dataset.test_fraction > 0:
        return f"a test split (dataset.test_fraction={run.dataset.test_fraction})"
    if t.l1 or t.l2:
        return "L1/L2 penalties"
    if t.gradcheck:
        return "the gradient check"
    if t.dtype != "float64":
        # Per-network hyperparameters are arrays; in float32 their arithmetic (e.g. Adam's
        # lr / (1 - beta1**t)) would round differently from the Python floats of a lone run.
        return f"trainer.dtype={t.dtype} (stacks are float64)"
    return None


def stack_key(run: RunConfig) -> str:
    """Jobs with equal keys train in one stack: everything but the seed, the run name and
    the optimizer's numeric values (of which only whether each is zero counts)."""
    config = asdict(run)
    config["trainer"].pop("seed")
    config["tracking"].pop("run_name")
    config["optimizer"] = {
        key: value if key in STRUCTURAL else bool(value) for key, value in config["optimizer"].items()
    }
    return yaml.safe_dump(config, sort_keys=True)


def train_stack(runs: list[RunConfig]) -> list[StackResult]:
    """Train the networks of ``runs`` (one stack key) together."""
    parts = [assemble(run) for run in runs]
    stack = StackedMLP([p.net for p in parts])
    hyperparameters = {}
    for key, first in asdict(runs[0].optimizer).items():
        if key == "name":
            continue
        values = [getattr(run.optimizer, key) for run in runs]
        if key in STRUCTURAL:
            hyperparameters[key] = tuple(first) if key == "betas" else first
        elif all(value == first for value in values):
            hyperparameters[key] = first
        else:
            hyperparameters[key] = np.array(values, dtype=np.float64).reshape(-1, 1)
    optimizer = build_optimizer(runs[0].optimizer_rule, stack.params, stack.grads, **hyperparameters)
    t = runs[0].trainer
    datasets = [p.data for p in parts]
    return fit_stacked(
        stack,
        optimizer,
        parts[0].objective.loss,
        datasets,
        t.epochs,
        t.loss_threshold,
        t.threshold_patience,
        snapshot_epochs(t.epochs, runs[0].tracking.snapshots),
    )


def plan(runs: list[RunConfig | None], max_stack: int) -> tuple[list[list[int]], dict[int, str]]:
    """``(stacks of job indices, {index of a job run on its own: why})``."""
    groups: dict[str, list[int]] = {}
    alone: dict[int, str] = {}
    for index, run in enumerate(runs):
        reason = "an invalid config" if run is None else unstackable(run)
        if reason:
            alone[index] = reason
        else:
            groups.setdefault(stack_key(run), []).append(index)
    stacks = []
    for members in groups.values():
        chunks = [members[i : i + max_stack] for i in range(0, len(members), max_stack)]
        for chunk in chunks:
            if len(chunk) == 1:
                alone[chunk[0]] = "no other job shares its network shape, data size and schedule"
            else:
                stacks.append(chunk)
    return stacks, alone


def launch(launcher, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> list[JobReturn]:
    """The stacked launcher's ``launch`` (see the module docstring)."""
    from src.runs.cli import run_job as job_body

    setup_globals()
    config, context = launcher.config, launcher.hydra_context
    configure_log(config.hydra.hydra_logging, config.hydra.verbose)
    Path(str(config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
    sweep_configs: list[DictConfig] = []
    runs: list[RunConfig | None] = []
    for offset, overrides in enumerate(job_overrides):
        sweep_config = context.config_loader.load_sweep_config(config, list(overrides))
        with open_dict(sweep_config):
            sweep_config.hydra.job.id = sweep_config.hydra.job.num = initial_job_idx + offset
        sweep_configs.append(sweep_config)
        try:
            runs.append(validate(sweep_config))
        except ConfigError:
            runs.append(None)
    stacks, alone = plan(runs, launcher.max_stack)
    log.info(
        "Launching %d jobs stacked: %d in %d stack(s) of %s, %d on their own",
        len(runs),
        sum(map(len, stacks)),
        len(stacks),
        [len(s) for s in stacks],
        len(alone),
    )
    for index, reason in sorted(alone.items()):
        log.info("\t#%d runs on its own: %s", initial_job_idx + index, reason)
    trained: dict[int, StackResult] = {}
    interrupted = False
    for members in stacks:
        results = train_stack([runs[i] for i in members])
        trained.update(zip(members, results, strict=True))
        if results[0].interrupted:
            interrupted = True
            log.warning("\tstack of %d interrupted: jobs %s", len(members), [initial_job_idx + i for i in members])
            break
        log.info("\tstack of %d trained: jobs %s", len(members), [initial_job_idx + i for i in members])
    if stacks:
        pace_from_now(config.hydra.sweep.dir)  # the stacks' training is behind every job
    returns = []
    for index, (overrides, sweep_config) in enumerate(zip(job_overrides, sweep_configs, strict=True)):
        if interrupted and index not in trained:
            continue
        log.info("\t#%d : %s", initial_job_idx + index, " ".join(filter_overrides(overrides)))
        if index in trained:

            def task_function(cfg: DictConfig, result: StackResult = trained[index], run=runs[index]) -> float:
                return job_body(cfg, result, run)

        else:
            task_function = launcher.task_function
        try:
            returns.append(
                run_job(
                    hydra_context=context,
                    task_function=task_function,
                    config=sweep_config,
                    job_dir_key="hydra.sweep.dir",
                    job_subdir_key="hydra.sweep.subdir",
                )
            )
        except KeyboardInterrupt:
            if not interrupted:
                raise
        configure_log(config.hydra.hydra_logging, config.hydra.verbose)
    if interrupted:
        raise KeyboardInterrupt
    return returns
