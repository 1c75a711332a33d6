"""The command line's start-up shortcut: Hydra's mode is read without composing the
config when nothing can set it, and the answer always equals Hydra's own."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest
from hydra._internal.hydra import Hydra
from hydra._internal.utils import create_config_search_path
from hydra.core.global_hydra import GlobalHydra
from hydra.types import RunMode

from src.runs import cli
from src.runs.config import CONF_DIR

HYDRAS_OWN = Hydra.get_mode.__wrapped__


@pytest.fixture
def hydra_for():
    def make(conf_dir) -> Hydra:
        return Hydra.create_main_hydra2("train", create_config_search_path(str(conf_dir)))

    yield make
    GlobalHydra.instance().clear()


@pytest.mark.parametrize(
    "overrides",
    [
        [],
        ["optimizer=adam", "trainer.epochs=10"],
        ["+experiment=optimizers"],
        ["hydra/launcher=stacked"],
        ["hydra.mode=MULTIRUN"],
        ["++hydra.mode=RUN"],
    ],
)
def test_the_mode_equals_hydras_own(hydra_for, overrides):
    hydra = hydra_for(CONF_DIR)
    assert hydra.get_mode("config", list(overrides)) == HYDRAS_OWN(hydra, "config", list(overrides))


def test_the_config_is_not_composed_when_nothing_can_set_the_mode(hydra_for, monkeypatch):
    hydra = hydra_for(CONF_DIR)
    composed = []
    monkeypatch.setattr(hydra, "compose_config", lambda *args, **kwargs: composed.append(args))
    assert not cli._configs_set_mode()
    assert hydra.get_mode("config", ["optimizer=adam"]) is None
    assert composed == []


def test_a_mode_set_in_another_config_directory_is_read(hydra_for, tmp_path):
    conf = tmp_path / "conf"
    shutil.copytree(CONF_DIR, conf)
    with (conf / "config.yaml").open("a") as config:
        config.write("  mode: MULTIRUN\n")  # under the file's last section, hydra:
    assert hydra_for(conf).get_mode("config", []) == RunMode.MULTIRUN


@pytest.mark.parametrize(("preset", "expected"), [(None, "true"), ("false", "false")])
def test_mlflows_telemetry_is_off_unless_the_environment_says(preset, expected):
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_DISABLE_TELEMETRY"}
    if preset is not None:
        env["MLFLOW_DISABLE_TELEMETRY"] = preset
    code = "import os, src.runs.cli; print(os.environ['MLFLOW_DISABLE_TELEMETRY'])"
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert proc.stdout.split() == [expected], proc.stderr[-2000:]
