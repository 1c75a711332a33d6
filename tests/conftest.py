"""Shared fixtures: Hydra composition of the real ``conf/`` tree and temporary MLflow stores."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

REPO = Path(__file__).resolve().parents[1]
CONF_DIR = REPO / "conf"


@pytest.fixture
def compose_config():
    """``compose_config(*overrides)`` -> the composed ``DictConfig``, as ``python -m src.train`` sees it."""

    def _compose(*overrides: str):
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            return compose(config_name="config", overrides=list(overrides))

    return _compose


@pytest.fixture(scope="session", autouse=True)
def template_cache(tmp_path_factory):
    """Model templates (``src.runs.pyfunc_model``) go to a temporary cache, also for the
    processes the tests start."""
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="session")
def optimizer_preset():
    """``optimizer_preset(rule, **overrides)`` -> the hyperparameters of
    ``conf/optimizer/RULE.yaml`` (PyTorch's defaults but the learning rate), as keyword
    arguments of the engine's optimizer ``rule``, with ``overrides`` applied."""

    def _preset(rule: str, **overrides):
        preset = OmegaConf.to_container(OmegaConf.load(CONF_DIR / "optimizer" / f"{rule}.yaml"))
        preset.pop("name")
        if "betas" in preset:
            preset["betas"] = tuple(preset["betas"])
        return {**preset, **overrides}

    return _preset


@pytest.fixture
def tracking_uri(tmp_path, monkeypatch) -> str:
    """A fresh sqlite MLflow store in a temporary directory (also exported for child processes)."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)
    monkeypatch.chdir(tmp_path)  # MLflow puts artifacts of a sqlite store in ./mlruns
    return uri


@pytest.fixture(scope="session")
def study_store(tmp_path_factory):
    """A temporary store holding a tiny real sweep of every study preset (``tests/analysis/tiny_sweeps.py``).

    Returns ``(tracking_uri, sweep_root)``.
    """
    root = tmp_path_factory.mktemp("studies")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri}
    env.pop("MLFLOW_RUN_ID", None)
    proc = subprocess.run(
        [sys.executable, str(REPO / "tests" / "analysis" / "tiny_sweeps.py"), str(root / "multirun")],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-5000:]
    return uri, root / "multirun"
