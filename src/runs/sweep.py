"""Hydra callback that gives a multirun one MLflow parent run.

``on_multirun_start`` checks every job of the sweep (``src.runs.sweep_check``: one line
per invalid job; nothing is created when none is valid), creates the tracking store and
the experiment once (under the store's lock, ``src.runs.tracking.open_experiment``),
opens the parent run and fixes the sweep's identity in the config every job is composed
from: the sweep directory, resolved once (``${launch_id:}``, a random id per launch,
keeps two sweeps started in the same second apart, and no other process re-resolves
``${now:}``), and the parent's id (``hydra.job.env_set``, see ``contract.PARENT_RUN_ENV``),
so a job finds its parent whichever launcher runs it, on whichever machine. The sweep
directory records the id (``mlflow_parent_run_id``) and holds the plan every job reads
(``sweep_plan.yaml``: the keys it varies, its job count, its start): a job is named by
its swept values and ends with the sweep's progress (job k/N, time left). The parent is
named by the swept keys and the job count, its ``launcher`` tag is the sweep's
``hydra/launcher`` choice, and its description holds the command line.

When the sweep ends (``on_multirun_end``: FINISHED; at exit after an error: FAILED; after
Ctrl-C or SIGTERM: KILLED) the parent gets the sweep's report (``src.runs.sweep_report``)
and the console its ranked table. An interrupted sweep also closes KILLED the children a
killed worker left RUNNING, and lists on its parent the jobs that never started.

Hydra instantiates this callback for single runs too, so MLflow is imported only when a
sweep starts.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import logging
import math
import os
import secrets
import shlex
import signal
import sys
import threading
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from hydra_plugins.backprop_harness.stacked_launcher import StackedLauncherConf
from src.runs import figure_worker, interrupts
from src.runs.config import RunConfig
from src.runs.contract import (
    JOBS_NOT_STARTED,
    JOBS_NOT_STARTED_FILE,
    PARAM_PHASE,
    PARAM_SEED,
    PARENT_RUN_ENV,
    PARENT_RUN_FILE,
    SWEEP_INTERRUPTED_FILE,
    SWEEP_PLAN_FILE,
    TAG_DESCRIPTION,
    TAG_INTERRUPTED,
    TAG_JOB_NUM,
    TAG_LAUNCHER,
    TAG_OVERRIDES,
    TAG_SWEEP,
    TAG_SWEEP_DIR,
)
from src.runs.store import StoreUnavailable, check_store, one_line
from src.runs.sweep_check import check_sweep
from src.runs.tracking import context_tags, git_tags, open_experiment, process_tags, resolve_tracking_uri, sweep_name

log = logging.getLogger(__name__)


@functools.cache
def launch_id() -> str:
    """A random id drawn once per process (``${launch_id:}`` in ``conf/config.yaml``)."""
    return secrets.token_hex(3)


OmegaConf.register_new_resolver("launch_id", launch_id, replace=True)


@dataclass(frozen=True)
class SweepPlan:
    """What every job of a sweep knows about it: the keys it varies, its job count (None
    when it is not known in advance), when it started and when its jobs' own work began
    (seconds since the epoch): a stacked launcher trains its stacks before the first
    job's bookkeeping, and the jobs' pace is measured from then on."""

    swept: list[str] = field(default_factory=list)
    jobs: int | None = None
    started: float = 0.0
    paced_from: float | None = None

    def progress(self, job_num: int) -> str:
        """``job 3/16, sweep 12 s in, about 52 s left`` after job ``job_num`` (0-based): the
        jobs left at the mean pace of the jobs done."""
        done, now = job_num + 1, time.time()
        elapsed = now - self.started
        if not self.jobs:
            return f"job {done}, sweep {elapsed:.0f} s in"
        left = (now - (self.paced_from or self.started)) / done * max(self.jobs - done, 0)
        return f"job {done}/{self.jobs}, sweep {elapsed:.0f} s in, about {left:.0f} s left"


def read_plan(sweep_dir: str | Path) -> SweepPlan:
    path = Path(sweep_dir) / SWEEP_PLAN_FILE
    return SweepPlan(**yaml.safe_load(path.read_text())) if path.exists() else SweepPlan()


def write_plan(sweep_dir: str | Path, plan: SweepPlan) -> None:
    (Path(sweep_dir) / SWEEP_PLAN_FILE).write_text(yaml.safe_dump(asdict(plan)))


def pace_from_now(sweep_dir: str | Path) -> None:
    """Record in the sweep's plan (when it has one) that its jobs' own work begins now."""
    if (Path(sweep_dir) / SWEEP_PLAN_FILE).exists():
        write_plan(sweep_dir, replace(read_plan(sweep_dir), paced_from=time.time()))


def _parsed_overrides(config: DictConfig) -> list:
    """The sweeper's overrides as Hydra parses them: the preset's ``hydra.sweeper.params``,
    then the command line (raises on a sweep the parser cannot expand without the config
    loader, such as ``glob``)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    params = [f"{key}={value}" for key, value in (config.hydra.sweeper.get("params") or {}).items()]
    return OverridesParser.create().parse_overrides(params + list(config.hydra.overrides.task))


def planned_jobs(config: DictConfig) -> list[list[str]] | None:
    """Each job's overrides in launch order (job k is item k) when Hydra's basic sweeper
    launches them; None with another sweeper or a sweep it cannot expand here."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper

    if config.hydra.sweeper.get("_target_") != f"{BasicSweeper.__module__}.{BasicSweeper.__name__}":
        return None
    try:
        return [job for batch in BasicSweeper.split_arguments(_parsed_overrides(config), None) for job in batch]
    except Exception:  # a sweep the parser cannot expand without the config loader (glob)
        return None


def swept_axes(config: DictConfig) -> tuple[list[str], int | None]:
    """The keys a multirun varies, in the order its sweeper lists them (the preset's
    ``hydra.sweeper.params``, then the command line, a later value replacing an earlier
    one as in Hydra's basic sweeper), and the number of jobs it launches. With
    ``hydra/sweeper=tuned`` the tuned key, the phase and the seed are swept too."""
    sweeper = config.hydra.sweeper
    try:
        counts: dict[str, int] = {}
        for override in _parsed_overrides(config):
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


#: Launchers that run a sweep's jobs in the sweep's own process.
IN_PROCESS_LAUNCHERS = ("hydra._internal.core_plugins.basic_launcher.BasicLauncher", StackedLauncherConf._target_)


def launcher_of(config: DictConfig) -> str | None:
    """The class (``_target_``) of the sweep's launcher."""
    return OmegaConf.select(config, "hydra.launcher._target_")


def jobs_run_here(config: DictConfig) -> bool:
    """Whether the sweep's launcher runs its jobs in this process."""
    return launcher_of(config) in IN_PROCESS_LAUNCHERS


JOBLIB_LAUNCHER = "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher"


def joblib_settings(config: DictConfig) -> dict:
    """The arguments the joblib launcher gives ``joblib.Parallel`` for this sweep."""
    from hydra_plugins.hydra_joblib_launcher._core import process_joblib_cfg

    settings = OmegaConf.to_container(config.hydra.launcher, resolve=True)
    settings.pop("_target_")
    settings["backend"] = "loky"  # as the launcher sets it
    process_joblib_cfg(settings)
    return settings


def start_joblib_workers(config: DictConfig, uri: str, experiment: str) -> threading.Thread | None:
    """For the joblib launcher: start its worker processes now, in a thread, each importing
    what a job needs and opening the store ``uri`` and its ``experiment``
    (``warm_up_worker``), so that they get ready while this process creates the parent
    run; the launcher's ``Parallel``, configured alike, then reuses them. Returns the
    thread (join it before the launcher starts), or None (another launcher, or a single
    worker: joblib then runs the jobs in this process)."""
    if launcher_of(config) != JOBLIB_LAUNCHER:
        return None
    from joblib import Parallel, delayed, effective_n_jobs

    settings = joblib_settings(config)
    workers = effective_n_jobs(settings["n_jobs"])
    if workers < 2:  # joblib runs the jobs in this process
        return None
    # what dispatching imports, imported here: no module is imported by two threads at once
    from joblib.externals.loky.backend import fork_exec, popen_loky_posix, synchronize  # noqa: F401

    def start() -> None:
        try:
            Parallel(**settings)(delayed(warm_up_worker)(uri, experiment) for _ in range(workers))
        except Exception as err:  # the launcher starts its workers itself
            log.debug("joblib workers not started ahead: %s", err)

    # not a daemon: loky's threads take after it, and the process exits the usual way (``src.runs.cli.exit_now``)
    thread = threading.Thread(target=start, name="joblib-warm-up", daemon=False)
    thread.start()
    return thread


def warm_up_worker(uri: str, experiment: str) -> None:
    """In a joblib worker: import what its jobs run (MLflow's client, the tracked run, the
    figures with matplotlib) and open the store as they do (``open_experiment``: its
    connection, schema check and experiment are then the process's)."""
    import src.runs.cli  # noqa: F401
    import src.runs.figures  # noqa: F401
    import src.runs.metric_writer  # noqa: F401
    import src.runs.tracked_run  # noqa: F401

    open_experiment(uri, experiment)


#: After Ctrl-C or SIGTERM, how long a sweep waits for its worker processes to close
#: their runs before it stops them.
WORKER_GRACE_SECONDS = 30.0


class MlflowParentRun(Callback):
    def __init__(self) -> None:
        self.client = None
        self.parent_run_id: str | None = None
        self.experiment_id: str | None = None
        self.swept: list[str] = []
        self.jobs: int | None = None
        self.planned: list[list[str]] | None = None
        self.sweep_dir: Path | None = None

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        run = check_sweep(config)
        uri = resolve_tracking_uri(run.tracking.uri)
        try:
            check_store(uri, run.tracking.timeout)
        except StoreUnavailable as err:
            sys.exit(f"error: {err}")
        # the figure worker (or the joblib launcher's workers) import while this process imports MLflow
        figure_worker.sweep_starts(draws=run.tracking.log_figures and jobs_run_here(config))
        warming = start_joblib_workers(config, uri, run.tracking.experiment)
        self._open(config, run, uri)
        if warming is not None:
            warming.join()

    def _open(self, config: DictConfig, run: RunConfig, uri: str) -> None:
        """Create the sweep's parent run and write its identity where its jobs find it."""
        from mlflow.exceptions import MlflowException

        interrupts.install()
        interrupts.before_raising(self._stop_workers)
        sweep_dir = Path(str(config.hydra.sweep.dir))
        overrides = " ".join(config.hydra.overrides.task)
        swept, jobs = swept_axes(config)
        command = shlex.join(["python", "-m", "src.train", *sys.argv[1:]])
        try:
            self.client, experiment_id = open_experiment(uri, run.tracking.experiment)
            parent = self.client.create_run(
                experiment_id,
                run_name=sweep_name(swept, jobs, sweep_dir.name),
                tags={
                    **context_tags(),
                    **git_tags(),
                    **process_tags(),
                    TAG_SWEEP_DIR: str(sweep_dir),
                    TAG_OVERRIDES: overrides,
                    TAG_LAUNCHER: str(config.hydra.runtime.choices.get("hydra/launcher")),
                    TAG_SWEEP: "true",
                    TAG_DESCRIPTION: command,
                },
            )
        except MlflowException as err:  # no job starts without its parent
            sys.exit(f"error: tracking store {uri}: the sweep's parent run could not be created: {one_line(err)}")
        self.parent_run_id, self.experiment_id, self.swept = parent.info.run_id, experiment_id, swept
        self.jobs, self.planned = jobs, planned_jobs(config)
        self.sweep_dir = sweep_dir
        fix_identity(config, sweep_dir, self.parent_run_id)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        write_plan(sweep_dir, SweepPlan(swept, jobs, time.time()))
        (sweep_dir / PARENT_RUN_FILE).write_text(self.parent_run_id)
        atexit.register(self._finish_at_exit)
        log.info("MLflow parent run %s for sweep %s", self.parent_run_id, sweep_dir)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        self._finish("FINISHED")

    def _finish_at_exit(self) -> None:
        """The parent of a sweep that did not end normally: KILLED after Ctrl-C or SIGTERM,
        with its RUNNING children closed and the jobs that never started listed; else FAILED."""
        if self.parent_run_id is None:
            return
        if interrupts.received() is None:
            self._finish("FAILED")
            return
        try:
            self._record_interrupt()
        finally:
            self._finish("KILLED")

    def _stop_workers(self, signum: int) -> None:
        """Forward the signal to the worker processes of the joblib launcher, if it runs
        the sweep, and wait (at most ``WORKER_GRACE_SECONDS``) until the child runs they
        were training are closed, with every epoch they reached."""
        if self.sweep_dir is not None:  # a job handed out from now on does not start
            (self.sweep_dir / SWEEP_INTERRUPTED_FILE).write_text(signal.Signals(signum).name)
        module = sys.modules.get("joblib.externals.loky.reusable_executor")
        executor = getattr(module, "_executor", None)
        if executor is None or self.parent_run_id is None:
            return
        from src.runs.sweep_report import children

        for process in list(getattr(executor, "_processes", {}).values()):
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signum)
        deadline = time.monotonic() + WORKER_GRACE_SECONDS
        while time.monotonic() < deadline:
            runs = children(self.client, self.experiment_id, self.parent_run_id)
            if all(run.info.status != "RUNNING" for run in runs):
                return
            time.sleep(0.2)

    def _record_interrupt(self) -> None:
        """Close KILLED the children a killed worker left RUNNING; log the jobs that never
        started (metric ``jobs_not_started`` and ``jobs_not_started.txt``) on the parent."""
        from src.runs.sweep_report import children

        runs = children(self.client, self.experiment_id, self.parent_run_id)
        for run in runs:
            if run.info.status == "RUNNING":
                self.client.set_tag(run.info.run_id, TAG_INTERRUPTED, "true")
                self.client.set_terminated(run.info.run_id, "KILLED")
        self.client.set_tag(self.parent_run_id, TAG_INTERRUPTED, "true")
        started = {int(run.data.tags[TAG_JOB_NUM]) for run in runs if TAG_JOB_NUM in run.data.tags}
        count = len(self.planned) if self.planned is not None else self.jobs or 0
        missing = [k for k in range(count) if k not in started]
        self.client.log_metric(self.parent_run_id, JOBS_NOT_STARTED, len(missing))
        if missing:
            lines = [f"#{k} {' '.join(self.planned[k])}" if self.planned else f"#{k}" for k in missing]
            self.client.log_text(self.parent_run_id, "\n".join(lines) + "\n", JOBS_NOT_STARTED_FILE)
        log.warning("Sweep interrupted (%s): %d of %d jobs never started", interrupts.received(), len(missing), count)

    def _finish(self, status: str) -> None:
        """Write the sweep's report on the parent (``src.runs.sweep_report``) and print its
        ranked table and where to look, while the figure worker finishes the last jobs'
        figures (the report reads no figure); wait for those, then close the parent with
        ``status``."""
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
            try:
                figure_worker.close_shared()
            finally:
                self.client.set_terminated(parent_run_id, status)


def fix_identity(config: DictConfig, sweep_dir: Path, parent_run_id: str) -> None:
    """Write the resolved sweep directory and the parent's id into the overrides every job
    of the sweep is composed from (``hydra.overrides.hydra``), in this process or another."""
    quoted = str(sweep_dir).replace("'", "\\'")
    with read_write(config.hydra), open_dict(config.hydra):
        config.hydra.sweep.dir = str(sweep_dir)
        config.hydra.overrides.hydra.extend(
            [f"hydra.sweep.dir='{quoted}'", f"++hydra.job.env_set.{PARENT_RUN_ENV}={parent_run_id}"]
        )


#: The UI's model-training view (runs, metrics, models) for a run's address; a browser
#: new to MLflow's UI otherwise opens it among GenAI's evaluations.
UI_VIEW = "?workflowType=machine_learning"


def where_to_look(client, experiment_id: str, run_id: str) -> str:
    """The ``mlflow ui`` command for the store and the run's address in it."""
    uri = client.tracking_uri
    address = f"#/experiments/{experiment_id}/runs/{run_id}{UI_VIEW}"
    if uri.startswith(("http://", "https://")):
        return f"Browse: {uri.rstrip('/')}/{address}"
    return f"Browse: uv run mlflow ui --backend-store-uri {uri}\nthen http://127.0.0.1:5000/{address}"
