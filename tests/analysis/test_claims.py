"""The reference labs' claims: every claim names a preset that composes, and verdicts
compare the lab's number with the spread over seeds."""

import numpy as np
import pandas as pd
import pytest

from src.analysis.claims import Claim, claims_table, judge, load_claims, select
from src.runs.config import validate

CLAIMS = load_claims()


def test_claims_have_unique_ids_and_known_measures():
    assert len({c.id for c in CLAIMS}) == len(CLAIMS) >= 40
    assert {c.lab for c in CLAIMS} >= {"000", "001", "002", "003"}
    for claim in CLAIMS:
        assert claim.measure in {
            "epochs_to_threshold",
            "epochs_to_full_accuracy",
            "final_train_loss",
            "final_train_accuracy",
        }


@pytest.mark.parametrize("preset", sorted({c.preset for c in CLAIMS if c.preset}))
def test_every_lab_preset_composes_and_sweeps_what_its_claims_select(compose_config, preset):
    run = validate(compose_config(f"+experiment={preset}"))
    assert run.tracking.experiment.startswith("lab-")
    for claim in (c for c in CLAIMS if c.preset == preset):
        for column in claim.where:
            assert column in {"dataset.name", "optimizer.name", "optimizer.lr", "model.width", "model.activation"}


def _runs(times, column="epochs_to_threshold"):
    return pd.DataFrame({"dataset.name": "xor", "optimizer.lr": 0.05, column: times})


def _claim(lab_value, measure="epochs_to_threshold"):
    return Claim("x", "001", "text", "labs/lab001_learning_rates", {"dataset.name": "xor"}, lab_value, measure)


def test_an_epoch_count_agrees_within_the_seeds_range_and_is_of_the_same_order_within_3x():
    runs = _runs([900.0, 1000.0, 1100.0, np.nan])
    assert judge(_claim([1050, 1050]), runs)["verdict"] == "agrees"
    assert judge(_claim([2001, 3000]), runs)["verdict"] == "same order"
    assert judge(_claim([41, 41]), runs)["verdict"] == "disagrees"
    assert judge(_claim([41, 41]), runs)["harness"] == "1000 [900–not reached], 3/4 seeds got there"
    # beyond every seed that got there is not agreement, even with a seed that never did
    assert judge(_claim([10**6, 10**6]), runs)["verdict"] == "disagrees"
    assert judge(_claim([5, 9]), _runs([np.nan, np.nan])) == {
        "harness": "not reached, 0/2 seeds got there",
        "verdict": "disagrees",
    }


def test_never_agrees_only_when_most_seeds_never_got_there():
    assert judge(_claim("never within 1000000"), _runs([np.nan, np.nan, 5.0]))["verdict"] == "agrees"
    assert judge(_claim("never within 1000000"), _runs([np.nan, 4.0, 5.0]))["verdict"] == "disagrees"


def test_a_final_value_is_compared_with_the_seeds_range():
    runs = pd.DataFrame({"dataset.name": "xor", "final_train_loss": [0.002, 0.004]})
    assert judge(_claim(0.003, "final_train_loss"), runs)["verdict"] == "agrees"
    assert judge(_claim(0.0205, "final_train_loss"), runs)["verdict"] == "disagrees"


def test_runs_are_selected_by_number_or_name_and_an_unrun_preset_says_so(tracking_uri):
    runs = pd.DataFrame({"dataset.name": ["xor", "xor", "linear"], "optimizer.lr": [0.05, 0.5, 0.05]})
    assert len(select(runs, {"dataset.name": "xor", "optimizer.lr": 0.05})) == 1
    assert judge(_claim([1, 2]), runs.iloc[0:0])["harness"] == "not run yet"
    table = claims_table(tracking_uri)
    assert table.count("\n") == len(CLAIMS) + 1 and "not run yet" in table
    unreproducible = [line for line in table.splitlines() if "| not reproducible |" in line]
    assert len(unreproducible) == sum(c.preset is None for c in CLAIMS) >= 1
