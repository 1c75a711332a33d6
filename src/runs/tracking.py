"""MLflow plumbing: which store runs go to, their experiment, their names and git tags."""

from __future__ import annotations

import functools
import os
import subprocess
from collections.abc import Mapping
from typing import TYPE_CHECKING

from src.runs.contract import TAG_GIT_COMMIT, TAG_GIT_DIRTY

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"


def resolve_tracking_uri(configured: str | None) -> str:
    """``tracking.uri`` if set, else ``$MLFLOW_TRACKING_URI``, else ``sqlite:///mlflow.db``."""
    return configured or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI


def ensure_experiment(client: MlflowClient, name: str) -> str:
    """Return the id of experiment ``name``, creating it (and a fresh store) if needed."""
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    return client.create_experiment(name)


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


def run_name(run) -> str:
    """``tracking.run_name``, else a readable name from the config, e.g.
    ``xor-adam-2x8-tanh-s0`` (``w4-2`` for unequal widths, ``identity-relu`` for one
    activation per layer, ``nohidden`` for a network without hidden layers)."""
    if run.tracking.run_name:
        return run.tracking.run_name
    widths = run.model.hidden_widths
    if not widths:
        shape = "nohidden"
    elif len(set(widths)) == 1:
        shape = f"{len(widths)}x{widths[0]}"
    else:
        shape = "w" + "-".join(map(str, widths))
    activations = run.model.hidden_activations
    activation = run.model.activation if len(set(activations)) <= 1 else "-".join(activations)
    return f"{run.dataset.name}-{run.optimizer.name}-{shape}-{activation}-s{run.trainer.seed}"


@functools.cache
def git_tags() -> dict[str, str]:
    """The commit (and whether the tree is dirty) of the working directory, when it is a
    git checkout; asked once per process (a sweep's jobs share their code)."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
        status = subprocess.run(["git", "status", "--porcelain"], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return {}
    if commit.returncode != 0:
        return {}
    return {TAG_GIT_COMMIT: commit.stdout.strip(), TAG_GIT_DIRTY: str(bool(status.stdout.strip())).lower()}
