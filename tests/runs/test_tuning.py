"""``hydra/sweeper=tuned``: each setting's learning rate chosen on tuning seeds, then
reported on fresh seeds, in one multirun under one parent run."""

import math

import yaml

from src.runs.tuning import choose, median, score

INF = math.inf


def test_a_job_scores_its_outcome_and_never_counts_as_infinite():
    metrics = {"epochs_to_threshold": 120.0, "final_train_loss": 0.009, "final_train_accuracy": 1.0}
    assert score(metrics, "epochs_to_threshold") == (120.0, 0.009)
    assert score({"final_train_loss": 0.3}, "epochs_to_threshold") == (INF, 0.3)
    assert score(None, "epochs_to_threshold") == (INF, INF)  # a failed job
    assert score({**metrics, "final_test_accuracy": 0.9}, "final_accuracy") == (-0.9, 0.009)


def test_the_choice_counts_the_seeds_that_never_arrived():
    assert median([3.0, INF, 1.0]) == 3.0 and median([1.0, INF, INF]) == INF
    scores = {
        "1": [(10.0, 0.0), (12.0, 0.0), (INF, 0.2)],  # 2 of 3 fast
        "10": [(5.0, 0.0), (INF, 0.3), (INF, 0.3)],  # 1 of 3 faster still
        "0.1": [(40.0, 0.0), (41.0, 0.0), (42.0, 0.0)],
    }
    assert choose(scores) == "1"
    # a tie on the outcome goes to the lower final loss
    assert choose({"a": [(INF, 0.2)], "b": [(INF, 0.1)]}) == "b"


def test_each_setting_is_reported_at_its_own_chosen_rate_on_fresh_seeds(tmp_path, train_cli, sweep_runs):
    proc = train_cli(
        "hydra/sweeper=tuned",
        "hydra.sweeper.tune_key=optimizer.lr",
        "hydra.sweeper.tune_values=[0.03,0.3,3]",
        "hydra.sweeper.tune_seeds=[0,1,2]",
        "hydra.sweeper.report_seeds=[7,8]",
        "study.outcome=epochs_to_threshold",
        "optimizer=sgd,adam",
        "trainer.epochs=400",
        "tracking.log_figures=false",
        "tracking.log_model=false",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    _, (parent,), children = sweep_runs()
    assert len(children) == 2 * 3 * 3 + 2 * 2  # settings x rates x tuning seeds, settings x report seeds
    assert {r.data.tags["mlflow.parentRunId"] for r in children} == {parent.info.run_id}
    assert sorted(int(r.data.tags["job_num"]) for r in children) == list(range(22))
    choices = yaml.safe_load((tmp_path / "multirun" / "tuning.yaml").read_text())
    for optimizer in ("sgd", "adam"):
        mine = [r for r in children if r.data.params["optimizer.name"] == optimizer]
        tuning = [r for r in mine if r.data.params["study.phase"] == "tune"]
        report = [r for r in mine if r.data.params["study.phase"] == "report"]
        assert {r.data.params["trainer.seed"] for r in tuning} == {"0", "1", "2"}
        assert sorted(r.data.params["trainer.seed"] for r in report) == ["7", "8"]
        # the choice is recomputed from the store: best median epochs, never = inf
        medians = {}
        for lr in ("0.03", "0.3", "3.0"):
            times = [
                r.data.metrics.get("epochs_to_threshold", INF) for r in tuning if r.data.params["optimizer.lr"] == lr
            ]
            medians[lr] = sorted(times)[1]
        best = min(medians, key=medians.get)
        assert {r.data.params["optimizer.lr"] for r in report} == {best}
        (setting,) = [s for s in choices["settings"] if f"optimizer={optimizer}" in s]
        assert float(choices["settings"][setting]["chosen"]) == float(best)


def test_the_tuned_sweeper_refuses_to_have_its_own_keys_swept(train_cli):
    proc = train_cli(
        "hydra/sweeper=tuned",
        "hydra.sweeper.tune_key=optimizer.lr",
        "hydra.sweeper.tune_values=[0.1,1]",
        "study.outcome=epochs_to_threshold",
        "trainer.seed=0,1",
    )
    assert proc.returncode == 1
    assert "trainer.seed=0,1: the tuned sweeper sets optimizer.lr, trainer.seed and study.phase itself" in proc.stderr
