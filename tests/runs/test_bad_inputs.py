"""Bad input, one table: every invalid value stops the command with exit status 1 and
one line naming the key and the value, and leaves the store untouched (no sqlite file, no
artifact directory, no parent run). Most cases run the real command line in this process
(``src.runs.cli.main`` under Hydra); a few run it as a process."""

import sys
import time
from pathlib import Path

import numpy as np
import pytest
from hydra import initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.types import RunMode

from src.runs.cli import main
from src.runs.config import CONF_DIR, ConfigError
from src.runs.sweep_check import find_invalid_jobs
from src.runs.tracked_run import train_and_track

LONG = "x" * 501


@pytest.fixture
def weights(tmp_path_factory):
    """Files given to ``model.init_from``: weights of the default 2-8-8-1 network with a
    NaN, random bytes, an archive of objects (pickled) and weights of another shape."""
    root = tmp_path_factory.mktemp("weights")
    shapes = {"W0": (2, 8), "b0": (8,), "W1": (8, 8), "b1": (8,), "W2": (8, 1), "b2": (1,)}
    nan = {name: np.zeros(shape) for name, shape in shapes.items()}
    nan["W1"][3, 4] = np.nan
    np.savez(root / "nan.npz", **nan)
    (root / "random.npz").write_bytes(np.random.default_rng(0).bytes(1000))
    np.savez(root / "objects.npz", **{**nan, "W0": np.array([{"a": 1}] * 16, dtype=object).reshape(2, 8)})
    np.savez(root / "shape.npz", **{**nan, "W0": np.zeros((3, 8))})
    return root


# (overrides, the key the message starts with, a fragment of the message: the value)
SINGLE = [
    # the test split, the data's size and its classes
    ("dataset.test_fraction=0.98", "dataset.test_fraction", "0.98"),
    ("dataset.test_fraction=0.9 trainer.seed=5", "dataset.test_fraction", "no training point of class 0"),
    ("dataset=linear dataset.n_samples=2", "dataset.n_samples", "draws no point of class 1"),
    ("dataset=blobs loss=cross_entropy dataset.n_classes=5 dataset.n_samples=4", "dataset.n_samples", "4"),
    # every number finite and in range
    ("dataset=blobs dataset.cluster_std=inf", "dataset.cluster_std", "inf"),
    ("dataset=moons dataset.noise=inf", "dataset.noise", "inf"),
    ("optimizer.weight_decay=inf", "optimizer.weight_decay", "inf"),
    ("trainer.l2=inf", "trainer.l2", "inf"),
    ("trainer.l1=nan", "trainer.l1", "nan"),
    ("optimizer=adam optimizer.eps=inf", "optimizer.eps", "inf"),
    ("optimizer=adagrad optimizer.lr_decay=inf", "optimizer.lr_decay", "inf"),
    ("optimizer=rmsprop optimizer.alpha=nan", "optimizer.alpha", "nan"),
    ("optimizer.lr=-1", "optimizer.lr", "-1"),
    ("model.leaky_slope=-inf", "model.leaky_slope", "-inf"),
    ("trainer.loss_threshold=inf", "trainer.loss_threshold", "inf"),
    ("trainer.gradcheck_tolerance=0", "trainer.gradcheck_tolerance", "0"),
    ("trainer.max_memory_gib=-1", "trainer.max_memory_gib", "-1"),
    ("trainer.epochs=0", "trainer.epochs", "0"),
    ("trainer.epochs=many", "trainer.epochs", "many"),
    ("trainer.seed=-1", "trainer.seed", "-1"),
    ("trainer.threshold_patience=-1", "trainer.threshold_patience", "-1"),
    ("trainer.batch_size=-1", "trainer.batch_size", "-1"),
    ("trainer.batch_size=22", "trainer.batch_size", "22"),
    ("trainer.log_every=0", "trainer.log_every", "0"),
    ("trainer.dtype=float16", "trainer.dtype", "float16"),
    ("model.widths=[4,0]", "model.widths", "[4, 0]"),
    ("optimizer=momentum optimizer.momentum=0 optimizer.nesterov=true", "optimizer.nesterov", "True"),
    ("+extra=1", "extra", "unknown config section"),
    # the memory guard: the model's width, or the dataset's size, whichever needs more
    ("model.width=20000 model.depth=3", "model.width", "20000"),
    ("model.widths=[10000,10000]", "model.widths", "[10000, 10000]"),
    ("dataset=moons dataset.n_samples=100000000", "dataset.n_samples", "100000000"),
    # initial weights
    ("model.init_from={weights}/nan.npz", "model.init_from", "W1 holds NaN"),
    ("model.init_from={weights}/random.npz", "model.init_from", "not a weights .npz archive"),
    ("model.init_from={weights}/objects.npz", "model.init_from", "objects.npz"),
    ("model.init_from={weights}/shape.npz", "model.init_from", "shape (3, 8)"),
    ("model.init_from={weights}/missing.npz", "model.init_from", "missing.npz"),
    # names and stores within MLflow's limits
    (f"tracking.experiment={LONG}", "tracking.experiment", "(501 characters)"),
    ("tracking.experiment=''", "tracking.experiment", "''"),
    (f"tracking.run_name={'x' * 251}", "tracking.run_name", "(251 characters)"),
    (f"study.question={'x' * 6001}", "study.question", "(6001 characters)"),
    ("tracking.uri=foo://bar", "tracking.uri", "foo://bar"),
    ("tracking.uri=sqlite:///:memory:", "tracking.uri", ":memory:"),
    ("tracking.uri=sqlite:///{tmp}/missing/mlflow.db", "tracking.uri", "missing/mlflow.db"),
]

# Sweeps none of whose jobs is valid: one line per job, then the command stops before
# any parent run exists. (overrides, lines naming a job's key and value)
SWEEPS = [
    ("optimizer.lr=-2,-1", ["job 0 (optimizer.lr=-2): optimizer.lr: invalid value -2.0", "job 1 (optimizer.lr=-1)"]),
    ("model.depth=3 model.width=20000,30000", ["job 0 (model.width=20000): model.width", "job 1 (model.width=30000)"]),
    ("trainer.batch_size=30,40 optimizer=sgd,adam", ["job 0 (trainer.batch_size=30 optimizer=sgd)", "job 3"]),
    ("+optimizer.foo=1,2", ["job 0 (+optimizer.foo=1): optimizer.foo", "job 1"]),
    ("optimizer=sgd,nonexistent", ["optimizer=nonexistent: In 'config': Could not find 'optimizer/nonexistent'"]),
    (
        "hydra/sweeper=tuned hydra.sweeper.tune_key=optimizer.lr hydra.sweeper.tune_values=[0.1,1]",
        ["study.outcome: invalid value None; hydra/sweeper=tuned chooses by the study's outcome"],
    ),
    (
        "hydra/sweeper=tuned hydra.sweeper.tune_key=optimizer.lr hydra.sweeper.tune_values=[-1] "
        "hydra.sweeper.tune_seeds=[0] study.outcome=epochs_to_threshold",
        ["job 0 (optimizer.lr=-1 trainer.seed=0): optimizer.lr: invalid value -1.0"],
    ),
    (
        "hydra/sweeper=tuned hydra.sweeper.tune_key=optimizer.lr hydra.sweeper.tune_values=[0.1] "
        "hydra.sweeper.report_seeds=[-1] study.outcome=epochs_to_threshold",
        ["trainer.seed=-1: trainer.seed: invalid value -1"],
    ),
]


def _cli(monkeypatch, capsys, tmp_path, arguments: list[str]) -> tuple[int, list[str]]:
    """``python -m src.train ARGUMENTS`` in this process: (exit status, lines on stderr)."""
    outputs = [f"hydra.run.dir={tmp_path / 'run'}", f"hydra.sweep.dir={tmp_path / 'multirun'}"]
    monkeypatch.setattr(sys, "argv", ["src/train.py", *arguments, *outputs])
    GlobalHydra.instance().clear()
    with pytest.raises(SystemExit) as stopped:
        main()
    code = stopped.value.code
    err = capsys.readouterr().err
    message = code if isinstance(code, str) else err
    return (1 if isinstance(code, str) else code), [line for line in message.splitlines() if line.strip()]


def _untouched(tmp_path: Path) -> None:
    """No store was created: no sqlite file, no artifact directory, no sweep directory."""
    assert sorted(p.name for p in tmp_path.iterdir()) in ([], ["run"])


@pytest.mark.parametrize("overrides, key, fragment", SINGLE, ids=[case[0][:60] for case in SINGLE])
def test_a_bad_value_is_refused_in_one_line_naming_it(
    compose_config, tmp_path, tracking_uri, weights, overrides, key, fragment
):
    """What a single run does with the composed config: validate, build, and only then
    track (the command line prints the message after ``error: invalid config:``)."""
    cfg = compose_config(*[o.format(weights=weights, tmp=tmp_path) for o in overrides.split(" ")])
    with pytest.raises(ConfigError) as refused:
        train_and_track(cfg)
    (line,) = str(refused.value).splitlines()
    assert line.startswith(f"{key}:") and fragment in line, line
    _untouched(tmp_path)


@pytest.mark.parametrize(
    "overrides",
    ["dataset.test_fraction=0.98", "model.width=20000 model.depth=3", "model.init_from={weights}/random.npz"],
)
def test_the_command_line_exits_with_status_1_and_the_line(
    monkeypatch, capsys, tmp_path, tracking_uri, weights, overrides
):
    status, lines = _cli(monkeypatch, capsys, tmp_path, overrides.format(weights=weights).split(" "))
    assert status == 1
    (line,) = lines
    key, value = overrides.split(" ")[0].format(weights=weights).split("=")
    assert line.startswith(f"error: invalid config: {key}: invalid value {value}") or (
        line.startswith(f"error: invalid config: {key}: invalid value '{value}'")
    ), line
    _untouched(tmp_path)


@pytest.mark.parametrize("overrides, expected", SWEEPS, ids=[case[0][:60] for case in SWEEPS])
def test_a_sweep_without_a_valid_job_stops_before_its_parent(
    monkeypatch, capsys, tmp_path, tracking_uri, overrides, expected
):
    status, lines = _cli(monkeypatch, capsys, tmp_path, ["-m", *overrides.split(" ")])
    assert status == 1
    assert all(line.startswith("error: ") for line in lines) and "Traceback" not in "\n".join(lines)
    for fragment in expected:
        assert any(fragment in line for line in lines), (fragment, lines)
    _untouched(tmp_path)


def _multirun_config(*overrides: str):
    """The config a multirun's callback receives, composed as Hydra does for ``-m``."""
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        hydra = GlobalHydra.instance().hydra
        config = hydra.compose_config("config", list(overrides), run_mode=RunMode.MULTIRUN)
        return find_invalid_jobs(config)


@pytest.mark.parametrize(
    "overrides, jobs, invalid",
    [
        # the base config (sgd) is invalid, yet the momentum jobs are not
        (["optimizer=sgd,momentum", "optimizer.nesterov=true"], 2, [0]),
        # two swept values valid alone and invalid together
        (["optimizer=momentum", "optimizer.momentum=0,0.9", "optimizer.nesterov=true,false"], 4, [0]),
        (["optimizer.lr=0.1,-1", "trainer.seed=0,1"], 4, [2, 3]),
        (["model.depth=0,3", "model.width=20000,8"], 4, [2]),  # no hidden layer: any width fits
        # a preset's grid: on xor, a test split of 0.7 leaves 6 training points, fewer than a batch of 8
        (["+experiment=batch_size", "dataset.test_fraction=0,0.7"], 120, list(range(21, 40, 2))),
    ],
)
def test_a_sweep_names_each_invalid_job_before_it_starts(overrides, jobs, invalid):
    run, counted, lines = _multirun_config(*overrides)
    assert counted == jobs and run is not None
    assert [int(line.split("job ")[1].split(" ")[0]) for line in lines] == invalid, lines


def test_checking_a_thousand_jobs_takes_well_under_a_second_per_hundred():
    started = time.perf_counter()
    run, jobs, lines = _multirun_config(
        "optimizer=sgd,adam",
        "optimizer.lr=0.001,0.01,0.1,1,-1",
        "model.width=2,4,8,16,32",
        "trainer.seed=range(20)",
    )
    elapsed = time.perf_counter() - started
    assert jobs == 1000 and len(lines) == 200
    assert all("optimizer.lr=-1" in line and line.endswith("expected a number > 0") for line in lines)
    assert elapsed < 5, elapsed


def test_a_bad_single_run_as_a_process(tmp_path, train_cli):
    proc = train_cli("model.width=20000", "model.depth=3", multirun=False)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        "error: invalid config: model.width: invalid value 20000; the run needs about 35.8 GiB (800,120,001 "
        "parameters with their gradients and optimizer state, activations over 21 points), more than "
        "trainer.max_memory_gib=2"
    ]
    assert not (tmp_path / "mlflow.db").exists() and not (tmp_path / "mlruns").exists()


def test_a_sweep_of_only_bad_values_as_a_process_creates_nothing(tmp_path, train_cli):
    proc = train_cli("optimizer.lr=-2,-1")
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        "error: invalid config: job 0 (optimizer.lr=-2): optimizer.lr: invalid value -2.0; expected a number > 0",
        "error: invalid config: job 1 (optimizer.lr=-1): optimizer.lr: invalid value -1.0; expected a number > 0",
        "error: none of the sweep's 2 jobs has a valid config; nothing was run",
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no store, no sweep directory


@pytest.mark.slow
def test_a_sweep_with_a_bad_value_says_so_first_and_runs_the_others(tmp_path, train_cli, sweep_runs):
    quick = ["trainer.epochs=5", "tracking.log_figures=false", "tracking.log_model=false"]
    proc = train_cli("optimizer.lr=0.1,-1", *quick)
    assert proc.returncode == 1
    refused = "error: invalid config: job 1 (optimizer.lr=-1): optimizer.lr: invalid value -1.0; expected a number > 0"
    # printed before the parent run and the first job
    first, second, *end = [line for line in proc.stderr.splitlines() if line]
    assert first == refused and second.startswith("warning: 1 of the sweep's 2 jobs have an invalid config")
    assert "invalid config: optimizer.lr: invalid value -1.0" in proc.stdout  # the job's own line, when it starts
    assert end[-3:] == [
        f"Error executing job with overrides: {['optimizer.lr=-1', *quick]}".replace("false", "False"),
        "invalid config: optimizer.lr: invalid value -1.0; expected a number > 0",
        "Set the environment variable HYDRA_FULL_ERROR=1 for a complete stack trace.",
    ]
    assert "Traceback" not in proc.stderr + proc.stdout
    _, parents, children = sweep_runs()
    assert len(parents) == 1 and [(r.info.run_name, r.info.status) for r in children] == [("lr=0.1", "FINISHED")]


def test_names_the_harness_makes_stay_within_mlflow_limits(compose_config):
    """Run names made from long swept values or many layers are cut to 250 characters
    (PostgreSQL refuses a longer one; the experiment and given run names are refused above)."""
    from src.runs.config import validate
    from src.runs.tracking import config_name, sweep_name, sweep_run_name

    run = validate(compose_config(f"model.widths=[{','.join(['3', '4'] * 100)}]", "trainer.seed=123456"))
    assert len(config_name(run)) <= 250 and config_name(run).endswith("-tanh-s123456")
    long = [f"study.question={'q' * 300}", "model.width=4"]
    assert len(sweep_run_name(long, ["study.question", "model.width"])) == 250
    assert len(sweep_name(["study.question" * 30], 1000, "12-00-00")) <= 250
