"""MLflow plumbing: which store runs go to, their experiment, their names, and the git
and process tags every run carries.

Opening a store (``open_experiment``) holds an exclusive lock on the directory of a
sqlite store while MLflow creates or migrates its tables and the experiment, so that
processes launched at once into a fresh store wait for each other instead of racing
through the same migrations, and an interrupt waits until the tables exist. A sqlite
store on a local disk is switched to write-ahead logging with ``synchronous=NORMAL``
(``tune_sqlite``): a commit then appends to the log without waiting for the disk, which
halves the cost of each of a run's dozen store calls; a committed run still survives its
process being killed, and readers (``mlflow ui``) never block the runs that write.

Names: a single run is named by its config's short form (``config_name``:
``xor-adam-2x8-tanh-s0``). A sweep's child is named by the values its sweep varies, in
the order the sweep lists them (``sweep_run_name``: ``adam-lr=0.1-s3``): a group option
by its name, the seed as ``s3``, any other key as ``short=value`` (its last dotted
component). A sweep's parent is named by its swept keys and its job count
(``sweep_name``: ``optimizer×lr×seed (16 jobs) 14-19-12``). A name made here is cut to
MLflow's limit on run names.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import os
import socket
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from src.runs.config import MAX_RUN_NAME
from src.runs.contract import (
    EXPERIMENT_KIND,
    PARAM_SEED,
    TAG_EXPERIMENT_KIND,
    TAG_GIT_BRANCH,
    TAG_GIT_COMMIT,
    TAG_GIT_DIRTY,
    TAG_HOST,
    TAG_PID,
)
from src.runs.interrupts import deferred

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"


def resolve_tracking_uri(configured: str | None) -> str:
    """``tracking.uri`` if set, else ``$MLFLOW_TRACKING_URI``, else ``sqlite:///mlflow.db``."""
    return configured or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI


@contextlib.contextmanager
def store_lock(uri: str) -> Iterator[None]:
    """Hold an exclusive lock on the directory of the sqlite store ``uri``, with Ctrl-C and
    SIGTERM held back meanwhile (other stores: neither; their server runs its own
    migrations)."""
    if not uri.startswith("sqlite:///"):
        yield
        return
    import fcntl

    folder = Path(uri.removeprefix("sqlite:///").split("?", 1)[0]).parent
    handle = os.open(folder, os.O_RDONLY)
    try:
        with deferred():
            fcntl.flock(handle, fcntl.LOCK_EX)
            yield
    finally:
        os.close(handle)  # releases the lock


def ensure_experiment(client: MlflowClient, name: str) -> str:
    """Return the id of experiment ``name``, creating it if needed (also when another
    process creates it at the same moment), of MLflow's model-training kind."""
    from mlflow.exceptions import MlflowException

    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    try:
        return client.create_experiment(name, tags={TAG_EXPERIMENT_KIND: EXPERIMENT_KIND})
    except MlflowException:
        experiment = client.get_experiment_by_name(name)
        if experiment is None:
            raise
        return experiment.experiment_id


def open_experiment(uri: str, name: str) -> tuple[MlflowClient, str]:
    """A client of the store at ``uri`` and the id of experiment ``name``: the store's
    tables (MLflow creates or migrates them when a client first opens it) and the
    experiment are created if needed, under ``store_lock``."""
    from mlflow.tracking import MlflowClient

    tune_sqlite()
    with store_lock(uri):
        client = MlflowClient(uri)
        experiment_id = ensure_experiment(client, name)
    _freeze_imported()
    return client, experiment_id


class RunArtifacts:
    """Where a run's artifacts go: its id and its artifact repository, resolved from its
    artifact URI the way ``MlflowClient.log_artifacts`` resolves it, but without asking
    the store for the whole run first (``get_run`` reads every param, tag and latest
    metric of the run: 14 ms a run on sqlite). ``artifact_uri``: the run's, as
    ``create_run`` returned it (None: looked up once)."""

    def __init__(self, client: MlflowClient, run_id: str, artifact_uri: str | None = None):
        from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository
        from mlflow.utils.uri import add_databricks_profile_info_to_artifact_uri

        self.run_id = run_id
        uri = artifact_uri or client.get_run(run_id).info.artifact_uri
        uri = add_databricks_profile_info_to_artifact_uri(uri, client.tracking_uri)
        self.repository = get_artifact_repository(uri, tracking_uri=client.tracking_uri)

    def upload(self, local_dir: str | Path) -> None:
        """Every file under ``local_dir`` to the run's artifact root (as ``log_artifacts``)."""
        self.repository.log_artifacts(str(local_dir))


#: Set on every sqlite connection this process opens (``tune_sqlite``). ``journal_mode``
#: is kept by the database file; a store another process holds locked keeps its mode.
SQLITE_PRAGMAS = ("journal_mode=WAL", "synchronous=NORMAL")
#: File systems that processes on several hosts may share: sqlite's write-ahead log (its
#: index lives in shared memory) does not work there, so a store on one keeps sqlite's
#: defaults.
NETWORK_FILESYSTEMS = frozenset(
    {"nfs", "nfs4", "cifs", "smb3", "smbfs", "afs", "ceph", "lustre", "gpfs", "beegfs", "glusterfs", "sshfs", "9p"}
)


@functools.cache
def tune_sqlite() -> None:
    """Once per process, before its first sqlite store is opened: every sqlite connection
    SQLAlchemy makes to a database on a local file system gets ``SQLITE_PRAGMAS``."""
    import sqlite3

    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    def on_connect(connection, _record) -> None:
        if not isinstance(connection, sqlite3.Connection):
            return
        database = connection.execute("PRAGMA database_list").fetchone()[2]  # "" in memory
        if not database or filesystem_type(os.path.dirname(os.path.realpath(database))) in NETWORK_FILESYSTEMS:
            return
        for pragma in SQLITE_PRAGMAS:
            with contextlib.suppress(sqlite3.OperationalError):  # locked by another process: as it is
                connection.execute(f"PRAGMA {pragma}")

    event.listen(Engine, "connect", on_connect)


@functools.cache
def filesystem_type(directory: str, mounts: str = "/proc/mounts") -> str | None:
    """The type of the file system ``directory`` (absolute, resolved) is on, from the mount
    table ``mounts`` (``fuse.sshfs`` counts as ``sshfs``), or None when it cannot be read."""
    try:
        table = Path(mounts).read_text().splitlines()
    except OSError:
        return None
    found, kind = "", None
    for line in table:
        fields = line.split()
        if len(fields) < 3:
            continue
        point = fields[1].replace("\\040", " ")
        inside = directory == point or directory.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(found):
            found, kind = point, fields[2].removeprefix("fuse.")
    return kind


@functools.cache
def _freeze_imported() -> None:
    """Once per process, when MLflow's client is up: keep the objects allocated so far
    (the modules of MLflow, SQLAlchemy, pandas and Hydra: some 300 000 objects, nearly all
    alive until exit) out of the garbage collector's full passes, which otherwise walk them
    all again and again while runs are composed and logged (``gc.freeze``)."""
    gc.freeze()


def search_all(client: MlflowClient, experiment_id: str, filter_string: str, order_by=None) -> list:
    """Every run of ``experiment_id`` matching ``filter_string``, across all result pages."""
    runs, token = [], None
    while True:
        page = client.search_runs([experiment_id], filter_string, max_results=1000, order_by=order_by, page_token=token)
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def param_name(key: str) -> str:
    """The param (and ``load_runs`` column) a swept key lands in: a swept group such as
    ``optimizer`` is its option's ``optimizer.name``."""
    return key if "." in key else f"{key}.name"


def flatten(tree: Mapping, prefix: str = "") -> dict[str, str]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": "1"}``: dotted keys, values as MLflow param strings."""
    flat = {}
    for key, value in tree.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{dotted}."))
        else:
            flat[dotted] = str(value)
    return flat


def config_name(run) -> str:
    """The config's short form, e.g. ``xor-adam-2x8-tanh-s0`` (``w4-2`` for unequal
    widths, ``identity-relu`` for one activation per layer, ``nohidden`` for a network
    without hidden layers): a single run's name and every run's ``setting`` tag."""
    widths = run.model.hidden_widths
    if not widths:
        shape = "nohidden"
    elif len(set(widths)) == 1:
        shape = f"{len(widths)}x{widths[0]}"
    else:
        shape = "w" + "-".join(map(str, widths))
    activations = run.model.hidden_activations
    activation = run.model.activation if len(set(activations)) <= 1 else "-".join(activations)
    return f"{run.dataset.name}-{run.optimizer.name}-{_cut(shape)}-{_cut(activation)}-s{run.trainer.seed}"


def _cut(part: str, limit: int = MAX_RUN_NAME // 3) -> str:
    """A part of a name, cut to ``limit`` characters (ending in ``...``) so that the whole
    stays within MLflow's limit on run names."""
    return part if len(part) <= limit else f"{part[: limit - 3]}..."


@functools.cache
def git_tags() -> dict[str, str]:
    """The commit, branch (unless detached) and whether the tree is dirty (a tracked file
    changed: untracked ones, a store or notes, do not count), of the working directory
    when it is a git checkout; asked once per process (a sweep's jobs share their code)."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD", "--abbrev-ref", "HEAD"], capture_output=True, text=True, timeout=5
        )
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return {}
    if head.returncode != 0:
        return {}
    commit, branch = head.stdout.split()
    tags = {TAG_GIT_COMMIT: commit, TAG_GIT_DIRTY: str(bool(status.stdout.strip())).lower()}
    return tags if branch == "HEAD" else {**tags, TAG_GIT_BRANCH: branch}


@functools.cache
def context_tags() -> dict[str, str]:
    """MLflow's own tags of a run started by this process (its source and user, from
    ``mlflow.tracking.context``), resolved once per process: every provider asks again
    each time. Git's come from ``git_tags`` (MLflow's provider loads GitPython to find
    them, 30 ms). Outside IPython, the providers of notebooks and Databricks are skipped:
    each imports IPython (30 ms more) to look for a notebook's shell, which only an
    IPython process has."""
    from mlflow.tracking.context import registry
    from mlflow.tracking.context.databricks_cluster_context import DatabricksClusterRunContext
    from mlflow.tracking.context.databricks_command_context import DatabricksCommandRunContext
    from mlflow.tracking.context.databricks_job_context import DatabricksJobRunContext
    from mlflow.tracking.context.databricks_notebook_context import DatabricksNotebookRunContext
    from mlflow.tracking.context.databricks_repo_context import DatabricksRepoRunContext
    from mlflow.tracking.context.git_context import GitRunContext
    from mlflow.tracking.context.jupyter_notebook_context import JupyterNotebookRunContext

    shell = [
        JupyterNotebookRunContext,
        DatabricksNotebookRunContext,
        DatabricksJobRunContext,
        DatabricksClusterRunContext,
        DatabricksCommandRunContext,
        DatabricksRepoRunContext,
    ]
    return registry.resolve_tags(ignore=[GitRunContext, *([] if "IPython" in sys.modules else shell)])


def process_tags() -> dict[str, str]:
    """The host and process id of the run's process, which ``python -m src.runs.stale``
    reads to tell a run still training from one whose process is gone."""
    return {TAG_HOST: socket.gethostname(), TAG_PID: str(os.getpid())}


#: Config groups: a swept group is written by its option's name alone.
GROUPS = ("dataset", "model", "optimizer", "loss")
SEED = PARAM_SEED


def _short(key: str) -> str:
    return "seed" if key == SEED else key.rsplit(".", 1)[-1]


def sweep_run_name(overrides: Sequence[str], swept: Sequence[str]) -> str | None:
    """The name of a sweep's job from its overrides (``key=value`` strings): the values of
    the ``swept`` keys, in that order; None when none of them is among the overrides."""
    values = {}
    for override in overrides:
        key, _, value = override.partition("=")
        values[key.lstrip("+")] = value
    parts = []
    for key in swept:
        if key not in values:
            continue
        value = values[key]
        if key == SEED:
            parts.append(f"s{value}")
        elif key in GROUPS or (key.endswith(".name") and "." not in key[: -len(".name")]):
            parts.append(value)
        else:
            parts.append(f"{_short(key)}={value}")
    return "-".join(parts)[:MAX_RUN_NAME] or None


def sweep_name(swept: Sequence[str], jobs: int | None, when: str) -> str:
    """``optimizer×lr×seed (16 jobs) 14-19-12`` (``jobs`` None: left out)."""
    axes = "×".join(_short(key) for key in swept) or "sweep"
    count = f" ({jobs} jobs)" if jobs else ""
    return f"{axes[: MAX_RUN_NAME - len(count) - len(when) - 1]}{count} {when}"
