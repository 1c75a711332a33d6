"""Every job of a multirun checked before the sweep starts, so that invalid values are
reported at once and a sweep with no valid job creates nothing.

``check_sweep(config)`` is called by the sweep's callback (``src.runs.sweep``) before
its parent run exists. It expands the sweep as the sweeper will: the basic sweeper's
grid of ``hydra.sweeper.params`` and the command line, or, with ``hydra/sweeper=tuned``,
the tuning jobs (every setting at every grid value on every tuning seed; the report
seeds are checked as values, and the sweeper's own settings by
``src.runs.tuning.refusals``). Then it validates in the two stages of
``src.runs.config``, cheaply enough for sweeps of thousands of jobs:

1. each combination of swept config groups (``optimizer=sgd,adam``) is composed once, as
   its jobs will be, and each swept value is checked once against it, alone in its
   section (type, unknown keys, the field's own rule);
2. each job is then put together from those checked values, without composing it
   again, and checked against the rules that tie fields together and the memory guard.

Each failing job is printed as one line: its number, its swept values and the first
problem. When no job is valid, or a value cannot be composed at all (Hydra would refuse
the whole sweep), the command stops with exit status 1 before anything is created.
Otherwise the valid jobs run and the invalid ones fail at their start, without a run.
What only the job itself can find (a test split that leaves a class of its seed's data
without training points, an unreadable ``model.init_from``) fails that job alone, with
one line, when it starts.
"""

from __future__ import annotations

import itertools
import sys
from dataclasses import dataclass, fields, replace

from omegaconf import DictConfig, OmegaConf

from src.runs.config import TOP_LEVEL, ConfigError, RunConfig, check_run, typed_section, validate
from src.runs.contract import PARAM_PHASE, PARAM_SEED

BASIC_SWEEPER = "hydra._internal.core_plugins.basic_sweeper.BasicSweeper"
TUNED_SWEEPER = "hydra_plugins.backprop_harness.tuned_sweeper.TunedSweeper"


class Refused(Exception):
    """A value Hydra cannot compose: the sweeper would refuse the whole sweep."""


@dataclass(frozen=True)
class Axis:
    """One key of the sweep and its ``key=value`` overrides, in the sweeper's order."""

    key: str
    overrides: list[str]
    #: Set by the tuned sweeper (its key and seeds): named in every job, even with one value.
    tuned: bool = False

    @property
    def group(self) -> bool:
        """A config group (``optimizer=adam``), not a value: a key without a dot."""
        return "." not in self.key

    @property
    def swept(self) -> bool:
        return self.tuned or len(self.overrides) > 1


def _parser():
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.override_parser.overrides_parser import OverridesParser

    return OverridesParser.create(config_loader=GlobalHydra.instance().config_loader())


def sweep_axes(config: DictConfig) -> tuple[list[Axis], list[str]]:
    """The sweep's axes as its sweeper expands them into jobs (the basic sweeper's rules: a
    later override of a key replaces an earlier one in its place), and the overrides of
    the other values the sweep will use (the tuned sweeper's report seeds)."""
    sweeper = config.hydra.sweeper
    params = [f"{key}={value}" for key, value in (sweeper.get("params") or {}).items()]
    axes: dict[str, Axis] = {}
    for override in _parser().parse_overrides(params + list(config.hydra.overrides.task)):
        key = override.get_key_element()
        if override.is_sweep_override():
            if not override.is_discrete_sweep():
                raise Refused(f"{override.input_line}: only lists and ranges can be swept")
            values = list(override.sweep_string_iterator())
        else:
            values = [override.get_value_element_as_str()]
        axes[key] = Axis(key, [f"{key}={value}" for value in values])
    extra: list[str] = []
    if sweeper.get("tune_key"):
        key = sweeper.tune_key
        axes[key] = Axis(key, [f"{key}={value}" for value in sweeper.tune_values], tuned=True)
        axes[PARAM_SEED] = Axis(PARAM_SEED, [f"{PARAM_SEED}={seed}" for seed in sweeper.tune_seeds], tuned=True)
        axes[PARAM_PHASE] = Axis(PARAM_PHASE, [f"{PARAM_PHASE}=tune"])
        extra = [f"{PARAM_SEED}={seed}" for seed in sweeper.report_seeds]
    return list(axes.values()), extra


def _compose(config: DictConfig, fixed: list[str], choice: tuple[str, ...]) -> DictConfig:
    """The config of the jobs with the swept groups' ``choice``, as the launcher composes it
    (the sweep's other overrides ``fixed`` composed already when the sweep started)."""
    from hydra.core.global_hydra import GlobalHydra

    try:
        return GlobalHydra.instance().config_loader().load_sweep_config(config, [*fixed, *choice])
    except Exception as err:  # Hydra's composition errors (a missing option, a key not in struct)
        raise Refused(f"{' '.join(choice)}: {str(err).splitlines()[0]}") from None


#: A checked value: ``(section, field, typed value)``, a problem (str) or ``None`` (a
#: value the first stage cannot check alone, e.g. ``optimizer.name``; its jobs are
#: checked when they start).
Checked = tuple | str | None


def _check_value(base: DictConfig, override: str, parser) -> Checked:
    """The first stage for one ``key=value`` override applied to ``base``."""
    from hydra._internal.config_loader_impl import ConfigLoaderImpl

    parsed = parser.parse_overrides([override])[0]
    section, _, field = parsed.key_or_group.partition(".")
    if parsed.is_delete() or section not in TOP_LEVEL or not field or "." in field or field == "name":
        return None
    node = OmegaConf.masked_copy(base, [section])
    OmegaConf.set_struct(node, True)
    try:
        ConfigLoaderImpl._apply_overrides_to_config([parsed], node)
    except Exception as err:  # as Hydra composes it: a key not in struct, an append over a key
        raise Refused(f"{override}: {str(err).splitlines()[0]}") from None
    try:
        return section, field, getattr(typed_section(section, node[section]), field)
    except ConfigError as err:
        return str(err)


@dataclass
class Group:
    """The jobs sharing one choice of the swept config groups: the typed sections of their
    composed config (or the problem that fails them all) and each swept value checked."""

    run: RunConfig | str
    values: dict[str, Checked]


def _group(
    config: DictConfig, fixed: list[str], choice: tuple, value_axes: list[Axis], extra: list[str], parser
) -> Group:
    composed = _compose(config, fixed, choice)
    try:
        run: RunConfig | str = RunConfig(**{s: typed_section(s, composed[s]) for s in TOP_LEVEL})
    except ConfigError as err:
        return Group(str(err), {})
    checked = {o: _check_value(composed, o, parser) for axis in value_axes for o in axis.overrides}
    for override in extra:
        checked[override] = _check_value(composed, override, parser)
        if isinstance(checked[override], str):
            raise Refused(f"{override}: {checked[override]}")
    return Group(run, checked)


def _job(group: Group, overrides: tuple[str, ...]) -> RunConfig | str | None:
    """A job's config put together from its checked values and checked with the second
    stage: the ``RunConfig``, the problem, or None when only the job itself can tell."""
    if isinstance(group.run, str):
        return group.run
    changes: dict[str, dict] = {}
    for override in overrides:
        checked = group.values[override]
        if checked is None:
            return None
        if isinstance(checked, str):
            return checked
        section, field, value = checked
        changes.setdefault(section, {})[field] = value
    run = RunConfig(
        **{
            f.name: replace(getattr(group.run, f.name), **changes[f.name])
            if f.name in changes
            else getattr(group.run, f.name)
            for f in fields(RunConfig)
        }
    )
    try:
        return check_run(run)
    except ConfigError as err:
        return str(err)


def _tuned_refusals(config: DictConfig) -> list[str]:
    from src.runs.tuning import refusals

    sweeper = config.hydra.sweeper
    overrides = [f"{k}={v}" for k, v in (sweeper.get("params") or {}).items()] + list(config.hydra.overrides.task)
    outcome = OmegaConf.select(config, "study.outcome")
    return refusals(sweeper, outcome, overrides)


def find_invalid_jobs(config: DictConfig) -> tuple[RunConfig, int, list[str]]:
    """``(a valid job's config, the number of jobs, one line per invalid job)``; exits
    with status 1 when no job can run (see the module docstring)."""
    target = config.hydra.sweeper.get("_target_")
    if target not in (BASIC_SWEEPER, TUNED_SWEEPER):  # another sweeper: it expands its jobs itself
        return _valid_or_exit(config), 1, []
    if target == TUNED_SWEEPER:
        problems = _tuned_refusals(config)
        if problems:
            sys.exit("\n".join(f"error: invalid config: {p}" for p in problems))
    parser = _parser()
    try:
        axes, extra = sweep_axes(config)
        fixed = [axis.overrides[0] for axis in axes if not axis.swept]
        group_axes = [axis for axis in axes if axis.group and axis.swept]
        value_axes = [axis for axis in axes if not axis.group and axis.swept]
        groups = {
            choice: _group(config, fixed, choice, value_axes, extra, parser)
            for choice in itertools.product(*[axis.overrides for axis in group_axes])
        }
    except Refused as err:
        sys.exit(f"error: invalid config: {err}")
    swept = [i for i, axis in enumerate(axes) if axis.swept]
    is_group = [axes[i].group for i in swept]
    lines, valid, jobs = [], None, 0
    for number, combination in enumerate(itertools.product(*[axes[i].overrides for i in swept])):
        jobs += 1
        choice = tuple(o for o, g in zip(combination, is_group, strict=True) if g)
        values = tuple(o for o, g in zip(combination, is_group, strict=True) if not g)
        group = groups[choice]
        found = _job(group, values)
        if isinstance(found, str):
            lines.append(f"error: invalid config: job {number} ({' '.join(combination) or 'no swept key'}): {found}")
        elif valid is None:
            valid = found if found is not None else group.run
    if valid is None:
        sys.exit("\n".join([*lines, f"error: none of the sweep's {jobs} jobs has a valid config; nothing was run"]))
    return valid, jobs, lines


def _valid_or_exit(config: DictConfig) -> RunConfig:
    try:
        return validate(config)
    except ConfigError as err:
        sys.exit(f"error: invalid config: {err}")


def check_sweep(config: DictConfig) -> RunConfig:
    """Check the sweep's jobs (see the module docstring); print one line per invalid job;
    return the config of a valid one (its store and experiment are the sweep's)."""
    run, jobs, lines = find_invalid_jobs(config)
    if lines:
        print("\n".join(lines), file=sys.stderr)
        print(
            f"warning: {len(lines)} of the sweep's {jobs} jobs have an invalid config (above); they fail at their "
            f"start, without a run, and the other {jobs - len(lines)} run",
            file=sys.stderr,
        )
    return run
