"""Studies come from the presets in conf/experiment/: a new preset is a new study."""

import shutil

import pytest

from src.analysis import studies
from src.analysis.loaders import _matches_sweep_dir
from src.analysis.studies import all_studies, load_study
from src.runs.contract import OUTCOMES


def test_every_preset_is_a_study_with_its_factors():
    found = all_studies()
    assert sorted(found) == sorted(p.stem for p in studies.EXPERIMENT_DIR.glob("*.yaml"))
    assert found["optimizers"].factors == ("optimizer.name",)
    assert found["losses"].factors == ("loss.name",)
    assert found["learning_rates"].factors == ("optimizer.lr",)
    assert found["batch_size"].factor == "trainer.batch_size"
    assert found["capacity"].factor == ("model.depth", "model.width")
    assert found["capacity"].focus == ("moons", "blobs") and found["optimizers"].focus == ("xor", "linear")
    assert found["capacity"].experiment == "study-capacity"
    for study in found.values():
        assert study.outcome in OUTCOMES and study.question.endswith("?")


def test_a_new_preset_needs_no_python_edit(tmp_path, monkeypatch):
    presets = tmp_path / "experiment"
    shutil.copytree(studies.EXPERIMENT_DIR, presets)
    (presets / "init_schemes.yaml").write_text(
        "# @package _global_\n"
        "study:\n  question: Which initialisation trains fastest?\n  outcome: epochs_to_threshold\n"
        "tracking:\n  experiment: study-init\n"
        "hydra:\n  sweeper:\n    params:\n      dataset: xor\n      model.init: uniform,xavier\n"
        "      trainer.seed: range(3)\n"
    )
    monkeypatch.setattr(studies, "EXPERIMENT_DIR", presets)
    study = all_studies()["init_schemes"]
    assert (study.factors, study.focus, study.experiment) == (("model.init",), ("xor",), "study-init")
    with pytest.raises(ValueError, match="no study preset"):
        load_study("nothing")


@pytest.mark.parametrize(
    "sweep, matches",
    [
        ("multirun/2026-11-22/15-42-19", True),
        ("2026-11-22/15-42-19", True),
        ("15-42-19", True),
        ("9", False),
        ("42-19", False),
        ("2026-11-22", False),
    ],
)
def test_a_sweep_is_named_by_whole_path_components(sweep, matches):
    assert _matches_sweep_dir("multirun/2026-11-22/15-42-19", sweep) is matches
