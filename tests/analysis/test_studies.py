"""Studies come from the presets in conf/experiment/: a new preset is a new study."""

import shutil

import numpy as np
import pandas as pd
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


def _runs(dataset, level, times, first_below=None, tail=None, diverged=None, budget=1000):
    n = len(times)
    return pd.DataFrame(
        {
            "run_id": [f"{level}-{i}" for i in range(n)],
            "dataset.name": dataset,
            "optimizer.name": level,
            "trainer.epochs": budget,
            "epochs_to_threshold": times,
            "first_below_threshold": first_below if first_below is not None else times,
            "tail_loss_drop": tail if tail is not None else [0.5] * n,
            "diverged": diverged if diverged is not None else [False] * n,
            "epochs_run": [budget if np.isnan(t) else t + 20 for t in times],
            "updates_run": [budget if np.isnan(t) else t + 20 for t in times],
            "final_train_loss": 0.01,
            "final_train_accuracy": 1.0,
        }
    )


def test_summary_counts_every_run_and_ranks_never_as_infinite():
    nan = np.nan
    study = studies.Study("s", "e", ("optimizer.name",), "epochs_to_threshold", ("xor",), "Which?")
    runs = pd.concat(
        [
            # 3 of 5 fast arrivals; one dipped below and rose again, one diverged
            _runs("xor", "fast3of5", [10.0, 12.0, 14.0, nan, nan], [10, 12, 14, 7, nan], diverged=[0, 0, 0, 0, 1]),
            _runs("xor", "slow5of5", [50.0, 52.0, 54.0, 56.0, 58.0]),
            # never, flat at the end: a plateau
            _runs("xor", "flat", [nan] * 5, [nan] * 5, tail=[0.001] * 5),
            # never, still falling when the budget ran out
            _runs("xor", "falling", [nan] * 5, [nan] * 5, tail=[0.2] * 5),
        ],
        ignore_index=True,
    ).astype({"diverged": bool})
    table = study.summary(runs).set_index("optimizer.name")
    assert table["runs"].sum() == len(runs)
    assert table.loc["fast3of5", ["reached", "unstable", "diverged", "plateaued", "still_falling"]].tolist() == [
        3,
        1,
        1,
        0,
        1,
    ]
    assert table.loc["fast3of5", "median_epochs"] == 14 and table.loc["slow5of5", "median_epochs"] == 54
    ranked = study.ranked(runs, "xor")["optimizer.name"].tolist()
    assert ranked[:2] == ["fast3of5", "slow5of5"]  # 3/5 is a majority: its median is finite
    headline = study.headline(runs)
    assert "flat 0/5 within 1000 epochs: plateau at loss 0.01" in headline
    assert "falling 0/5 within 1000 epochs (5 still falling)" in headline
    assert "fast3of5 3/5 14 (1 unstable, 1 diverged, 1 still falling)" in headline
    assert study.answer(runs).startswith("On xor, reaching the loss threshold takes fast3of5 14 epochs (median, 3/5")
    two_of_five = _runs("xor", "fast2of5", [10.0, 12.0, nan, nan, nan])
    ranked = study.ranked(pd.concat([runs, two_of_five], ignore_index=True), "xor")["optimizer.name"].tolist()
    assert ranked.index("slow5of5") < ranked.index("fast2of5")  # never = inf: a minority of fast runs loses
