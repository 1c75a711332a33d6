"""Fair comparisons (``hydra/sweeper=tuned``): every setting gets its own tuned value of
one hyperparameter, chosen on some seeds and reported on fresh ones.

The protocol of Schmidt, Schneider & Hennig (2021), "Descending through a Crowded
Valley": an optimizer run at someone else's learning rate is not compared fairly. For a
study preset with

    hydra:
      sweeper:
        params: {dataset: xor,linear, optimizer: sgd,adam}
        tune_key: optimizer.lr
        tune_values: [0.001, 0.01, 0.1, 1, 10]
        tune_seeds: [0, 1, 2]
        report_seeds: [100, 101, ..., 109]

``tune_then_report`` runs two phases in one multirun, under one parent run:

1. *tune*: every setting (a combination of ``params`` and the command line's sweeps)
   at every grid value on each tuning seed, with ``study.phase=tune``;
2. *report*: every setting at its chosen value on each report seed, with
   ``study.phase=report``. The analysis judges the settings on these runs only.

The chosen value has the best median of the study's outcome (``study.outcome``) over the
tuning seeds: the fewest epochs to the event, a run that never got there counting as
infinite; or the highest final accuracy. Ties go to the lower median final training
loss. The choices are logged and written to ``<sweep dir>/tuning.yaml``.

A job's return value is its summary metrics (``src.runs.cli.run_job``).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from pathlib import Path

import yaml
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.utils import JobReturn, JobStatus

from src.runs.config import ConfigError
from src.runs.contract import FINAL_TEST_ACCURACY, FINAL_TRAIN_ACCURACY, FINAL_TRAIN_LOSS, PARAM_PHASE, PARAM_SEED

log = logging.getLogger(__name__)
TUNING_FILE = "tuning.yaml"


def score(metrics: dict[str, float] | None, outcome: str) -> tuple[float, float]:
    """``(outcome to minimise, final training loss)`` of one job; a failed job, or one that
    never reached an ``epochs_to_*`` event, scores infinity."""
    if metrics is None:
        return math.inf, math.inf
    loss = metrics.get(FINAL_TRAIN_LOSS, math.inf)
    loss = loss if math.isfinite(loss) else math.inf
    if outcome.startswith("epochs_to_"):
        return float(metrics.get(outcome, math.inf)), loss
    return -float(metrics.get(FINAL_TEST_ACCURACY, metrics.get(FINAL_TRAIN_ACCURACY, 0.0))), loss


def median(values: Sequence[float]) -> float:
    """The order statistic ``v_(ceil(n/2))``: finite when at least half are finite."""
    ordered = sorted(values)
    return ordered[math.ceil(len(ordered) / 2) - 1]


def choose(scores: dict[str, list[tuple[float, float]]]) -> str:
    """The grid value (as written) with the best median outcome, then median loss."""
    return min(scores, key=lambda value: (median([s[0] for s in scores[value]]), median([s[1] for s in scores[value]])))


def _setting(overrides: Sequence[str], key: str) -> tuple[str, ...]:
    """A job's overrides without the tuned key, the seed and the phase: its setting."""
    return tuple(o for o in overrides if o.split("=", 1)[0].lstrip("+") not in (key, PARAM_SEED, PARAM_PHASE))


def _value(overrides: Sequence[str], key: str) -> str:
    return next(o.split("=", 1)[1] for o in overrides if o.split("=", 1)[0] == key)


def _launch(sweeper, jobs: list[list[str]], first_index: int) -> list[JobReturn]:
    size = sweeper.max_batch_size or max(len(jobs), 1)
    results: list[JobReturn] = []
    for start in range(0, len(jobs), size):
        batch = jobs[start : start + size]
        sweeper.validate_batch_is_legal(batch)
        results += sweeper.launcher.launch(batch, initial_job_idx=first_index + start)
    return results


def refusals(sweeper_cfg, outcome: str | None, overrides: Sequence[str]) -> list[str]:
    """Why ``hydra/sweeper=tuned`` cannot run a sweep, one line each naming the key (empty
    when it can): ``sweeper_cfg`` is the sweeper's config (``hydra.sweeper``), ``outcome``
    the study's and ``overrides`` its params and the command line's overrides. Checked
    before the sweep starts (``src.runs.sweep_check``) and again by ``tune_then_report``."""
    key, values = sweeper_cfg.tune_key, list(sweeper_cfg.tune_values)
    found = []
    if not key:
        found.append(f"hydra.sweeper.tune_key: invalid value {key!r}; the key to tune, e.g. optimizer.lr")
    if not values:
        found.append("hydra.sweeper.tune_values: invalid value []; the values to tune over")
    for name in ("tune_seeds", "report_seeds"):
        if not list(sweeper_cfg[name]):
            found.append(f"hydra.sweeper.{name}: invalid value []; at least one seed")
    if outcome is None:
        found.append("study.outcome: invalid value None; hydra/sweeper=tuned chooses by the study's outcome")
    for override in overrides:
        name = override.split("=", 1)[0].lstrip("+~")
        if name in (key, PARAM_SEED, PARAM_PHASE):
            found.append(f"{override}: the tuned sweeper sets {key}, {PARAM_SEED} and {PARAM_PHASE} itself")
    return found


def tune_then_report(sweeper, arguments: list[str]) -> list[Sequence[JobReturn]]:
    """The tuned sweeper's ``sweep`` (see the module docstring)."""
    config = sweeper.config
    key, outcome = sweeper.tune_key, config.study.outcome
    base = sweeper._parse_config() + list(arguments)
    for problem in refusals(config.hydra.sweeper, outcome, base):
        raise ConfigError(problem)
    parser = OverridesParser.create(config_loader=sweeper.hydra_context.config_loader)
    (settings,) = sweeper.split_arguments(parser.parse_overrides(base), None)
    tune_jobs = [
        [*setting, f"{key}={value}", f"{PARAM_SEED}={seed}", f"{PARAM_PHASE}=tune"]
        for setting in settings
        for value in sweeper.tune_values
        for seed in sweeper.tune_seeds
    ]
    sweep_dir = Path(config.hydra.sweep.dir)
    sweep_dir.mkdir(parents=True, exist_ok=True)
    log.info(
        "Tuning %s over %s on seeds %s (%d jobs), then reporting on seeds %s",
        key,
        sweeper.tune_values,
        sweeper.tune_seeds,
        len(tune_jobs),
        sweeper.report_seeds,
    )
    tuned = _launch(sweeper, tune_jobs, 0)

    scores: dict[tuple[str, ...], dict[str, list[tuple[float, float]]]] = {}
    for job in tuned:
        metrics = job.return_value if job.status == JobStatus.COMPLETED else None
        per_value = scores.setdefault(_setting(job.overrides, key), {})
        per_value.setdefault(_value(job.overrides, key), []).append(score(metrics, outcome))
    chosen = {setting: choose(per_value) for setting, per_value in scores.items()}
    record = {}
    for setting, value in chosen.items():
        medians = {v: median([s[0] for s in scores[setting][v]]) for v in scores[setting]}
        log.info("\t%s: %s=%s (median %s per value: %s)", " ".join(setting), key, value, outcome, medians)
        record[" ".join(setting)] = {"chosen": value, f"median {outcome}": {v: float(m) for v, m in medians.items()}}
    (sweep_dir / TUNING_FILE).write_text(yaml.safe_dump({"key": key, "outcome": outcome, "settings": record}))

    report_jobs = [
        [*setting, f"{key}={value}", f"{PARAM_SEED}={seed}", f"{PARAM_PHASE}=report"]
        for setting, value in chosen.items()
        for seed in sweeper.report_seeds
    ]
    reported = _launch(sweeper, report_jobs, len(tune_jobs))
    for job in [*tuned, *reported]:
        _ = job.return_value  # a failed job fails the sweep at the end, as on the basic sweeper
    return [tuned, reported]
