"""Run names: a sweep's children by what the sweep varies, its parent by the swept keys."""

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import open_dict

from src.runs.config import CONF_DIR
from src.runs.sweep import swept_axes
from src.runs.tracking import sweep_name, sweep_run_name


@pytest.mark.parametrize(
    "overrides, swept, name",
    [
        (
            ["optimizer=adam", "optimizer.lr=0.1", "trainer.seed=3"],
            ["optimizer.lr", "optimizer", "trainer.seed"],
            "lr=0.1-adam-s3",
        ),
        (["dataset=xor", "model.width=8", "trainer.epochs=300"], ["dataset", "model.width"], "xor-width=8"),
        (
            ["+experiment=losses", "loss=bce", "optimizer.lr=1", "study.phase=tune"],
            ["loss", "optimizer.lr", "study.phase"],
            "bce-lr=1-phase=tune",
        ),
        (["trainer.batch_size=null"], ["trainer.batch_size"], "batch_size=null"),
        (["trainer.epochs=10"], [], None),
    ],
)
def test_a_child_is_named_by_its_swept_values_in_sweep_order(overrides, swept, name):
    assert sweep_run_name(overrides, swept) == name


def test_a_parent_is_named_by_its_swept_keys_and_job_count():
    assert (
        sweep_name(["optimizer", "optimizer.lr", "trainer.seed"], 16, "14-19-12")
        == "optimizer×lr×seed (16 jobs) 14-19-12"
    )
    assert sweep_name([], None, "14-19-12") == "sweep 14-19-12"


def _multirun_config(preset, *task):
    """The config ``on_multirun_start`` sees for ``-m +experiment=PRESET *task``."""
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        config = compose(config_name="config", overrides=[f"+experiment={preset}"], return_hydra_config=True)
    with open_dict(config):
        config.hydra.overrides.task = [f"+experiment={preset}", *task]
    return config


def test_swept_axes_follow_the_preset_then_the_command_line():
    config = _multirun_config("hidden_units", "model.width=2,8", "trainer.epochs=50")
    assert swept_axes(config) == (["dataset", "model.width", "trainer.seed"], 2 * 2 * 10)
    fixed = _multirun_config("hidden_units", "dataset=xor", "trainer.seed=0,1")
    assert swept_axes(fixed) == (["model.width", "trainer.seed"], 6 * 2)
    tuned = _multirun_config("optimizers", "optimizer=sgd,adam", "dataset=xor")
    assert swept_axes(tuned) == (["optimizer", "optimizer.lr", "study.phase", "trainer.seed"], 2 * (9 * 3 + 10))


def test_the_readme_sweep_names_its_children_by_optimizer(tmp_path, train_cli, sweep_runs):
    proc = train_cli(
        "optimizer=sgd,momentum,adagrad,adam",
        "trainer.epochs=5",
        "tracking.log_figures=false",
        "tracking.log_model=false",
        sweep_dir=tmp_path / "multirun" / "14-19-12",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    _, (parent,), children = sweep_runs()
    assert parent.info.run_name == "optimizer (4 jobs) 14-19-12"
    for run in (parent, *children):  # who and what started it, in the UI's "Created by" and "Source"
        assert run.data.tags["mlflow.source.name"].endswith("train.py") and run.data.tags["mlflow.user"]
    description = parent.data.tags["mlflow.note.content"]
    assert description.startswith("python -m src.train -m hydra.sweep.dir=")
    assert description.endswith(
        "optimizer=sgd,momentum,adagrad,adam trainer.epochs=5 tracking.log_figures=false tracking.log_model=false"
    )
    assert sorted(r.info.run_name for r in children) == ["adagrad", "adam", "momentum", "sgd"]
    descriptions = sorted(r.data.tags["mlflow.note.content"] for r in children)
    assert descriptions[0].startswith("Job 0 of the sweep in ") and descriptions[0].endswith(
        ": optimizer=sgd trainer.epochs=5 tracking.log_figures=False tracking.log_model=False"
    )
    console = proc.stdout + proc.stderr
    assert [f"job {k}/4, sweep" in console for k in (1, 2, 3, 4)] == [True] * 4  # progress after each job
    assert {r.data.tags["setting"] for r in children} == {
        f"xor-{o}-2x8-tanh-s0" for o in ("sgd", "momentum", "adagrad", "adam")
    }
