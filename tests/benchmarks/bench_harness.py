"""Throughput of the harness, measured side by side in one run, as ratios.

    uv run python tests/benchmarks/bench_harness.py [--baseline b31beb1] [--only engine,startup,...]

Sections (each prints its measurements and the ratio the target is stated in):

* ``startup``: ``python -m src.train trainer.epochs=10`` against the floor
  ``python -c "import mlflow; ... MlflowClient('sqlite:///x.db').search_experiments()"``
  on an existing store, and the baseline commit's same command; medians, interleaved.
* ``bookkeeping``: marginal cost of one more run in a sweep (figures and model
  included): ``(T(17 jobs) - T(1 job)) / 16``, this tree against the baseline.
* ``logging``: a 50 000-epoch run's tracked ``train_seconds`` against the same training
  untracked (``fit`` in this process), medians of ``--repeats`` interleaved pairs, and
  the epochs ``load_history`` returns.
* ``parallel``: 16-job sweeps on ``hydra/launcher=joblib`` against the basic launcher,
  of short (3 000-epoch) and long (100 000-epoch) jobs; and what two workers can reach
  at best on this machine: two trainings at once in two processes against one alone
  (best of ``--repeats``), whose slowdown ``s`` caps two workers at ``2 / s``.
* ``stacked``: a 64-job grid of 2-8-8-1 networks (8 learning rates x 8 seeds, 5 000
  epochs) on ``hydra/launcher=stacked`` against the basic launcher, end to end, with
  the stacked sweep's time taken apart: a 2-job stacked sweep of the same shape (the
  fixed part: start-up, store, sweep report), the stack's training, and the rest per
  child; the end-to-end ratio's ceiling, were a child's bookkeeping free, is the basic
  sweep over the fixed part plus the training. The training alone: ``fit_stacked`` on
  the 64 networks against ``fit`` on each in turn, best of ``--repeats`` interleaved pairs.
* ``engine``: seconds per epoch of the engine against PyTorch (float64 and float32),
  scikit-learn's ``MLPClassifier`` and a naive NumPy loop (``peers.py``), single-threaded
  BLAS, interleaved; PyTorch and scikit-learn are skipped with a message when absent.

The baseline is checked out with ``git worktree`` into a temporary directory and run
with the same interpreter and store layout. Every run goes to temporary sqlite stores;
nothing is left behind. The machine is shared and noisy: trust the ratios, not the
absolute times.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from src.runs.config import RunConfig

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).resolve().parent))
SECTIONS = ("startup", "bookkeeping", "logging", "parallel", "stacked", "engine")
FLOOR = "import mlflow; from mlflow.tracking import MlflowClient; MlflowClient('sqlite:///x.db').search_experiments()"


class Tree:
    """A checkout whose ``python -m src.train`` is run: this tree, or the baseline's."""

    def __init__(self, name: str, root: Path | None):
        self.name, self.root = name, root

    def env(self, workdir: Path) -> dict[str, str]:
        # Bytecode caches are written (by the unmeasured first start-up, as on a user's
        # machine): with PYTHONDONTWRITEBYTECODE every process would compile MLflow's
        # modules anew, seconds that swamp every other cost, floor and run alike.
        env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_RUN_ID", "PYTHONDONTWRITEBYTECODE")}
        env["MLFLOW_TRACKING_URI"] = f"sqlite:///{workdir / 'mlflow.db'}"
        if self.root is not None:  # the baseline's src shadows the installed package
            env["PYTHONPATH"] = str(self.root)
        return env

    def train(self, workdir: Path, *overrides: str, multirun: bool = False) -> float:
        """Seconds of wall time of one ``python -m src.train`` in ``workdir``."""
        where = (
            f"hydra.sweep.dir={workdir / 'sweeps' / str(time.time_ns())}"
            if multirun
            else (f"hydra.run.dir={workdir / 'runs' / str(time.time_ns())}")
        )
        command = [sys.executable, "-m", "src.train", *(["-m"] if multirun else []), where, *overrides]
        start = time.perf_counter()
        proc = subprocess.run(command, cwd=workdir, env=self.env(workdir), capture_output=True, text=True)
        elapsed = time.perf_counter() - start
        if proc.returncode != 0:
            raise RuntimeError(f"{self.name}: {' '.join(command)} failed:\n{proc.stderr[-3000:]}")
        return elapsed


def fresh_store(tree: Tree, root: Path, label: str) -> Path:
    """A working directory with a created store, after one unmeasured run of the tree
    (which creates the store and writes the bytecode caches of everything a run imports)."""
    workdir = root / label
    workdir.mkdir()
    tree.train(workdir, "trainer.epochs=1")
    return workdir


def ratio_line(what: str, value: float, target: str, met: bool) -> str:
    return f"  {what:<58} {value:8.2f}   target {target:<10} {'met' if met else 'NOT MET'}"


def compose_run(overrides: list[str]) -> RunConfig:
    """The validated ``RunConfig`` of ``conf/config.yaml`` with ``overrides``."""
    from hydra import compose, initialize_config_dir

    from src.runs.config import CONF_DIR, validate

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return validate(compose(config_name="config", overrides=overrides))


def bench_startup(trees: list[Tree], root: Path, repeats: int) -> list[str]:
    workdirs = {tree.name: fresh_store(tree, root, f"startup-{tree.name}") for tree in trees}
    floor_dir = workdirs[trees[0].name]
    floor_env = trees[0].env(floor_dir)
    times: dict[str, list[float]] = {"floor": [], **{tree.name: [] for tree in trees}}
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", FLOOR], cwd=floor_dir, env=floor_env, check=True, capture_output=True)
        times["floor"].append(time.perf_counter() - start)
        for tree in trees:
            times[tree.name].append(tree.train(workdirs[tree.name], "trainer.epochs=10"))
    median = {name: statistics.median(values) for name, values in times.items()}
    print("startup (median wall seconds): " + ", ".join(f"{k} {v:.2f}" for k, v in median.items()))
    lines = [
        ratio_line(
            "start-up: this tree / floor",
            median["this"] / median["floor"],
            "<= 1.25",
            median["this"] / median["floor"] <= 1.25,
        )
    ]
    if "baseline" in median:
        lines.append(f"  {'start-up: baseline / floor':<58} {median['baseline'] / median['floor']:8.2f}")
    return lines


def bench_bookkeeping(trees: list[Tree], root: Path, jobs: int) -> list[str]:
    marginal = {}
    for tree in trees:
        workdir = fresh_store(tree, root, f"bookkeeping-{tree.name}")
        common = ["trainer.epochs=200", "trainer.loss_threshold=null"]
        one = tree.train(workdir, "trainer.seed=0", *common, multirun=True)
        many = tree.train(workdir, f"trainer.seed=range({jobs})", *common, multirun=True)
        marginal[tree.name] = (many - one) / (jobs - 1)
        print(
            f"bookkeeping {tree.name}: 1 job {one:.2f} s, {jobs} jobs {many:.2f} s, "
            f"marginal {marginal[tree.name]:.3f} s per run"
        )
    if "baseline" not in marginal:
        return [f"  {'marginal seconds per run in a sweep (no baseline)':<58} {marginal['this']:8.3f}"]
    ratio = marginal["this"] / marginal["baseline"]
    return [ratio_line("marginal cost per run: this tree / baseline", ratio, "<= 0.25", ratio <= 0.25)]


def bench_logging(trees: list[Tree], root: Path, epochs: int, repeats: int) -> list[str]:
    """This tree's tracked run and the same training untracked (``fit`` in this process),
    ``repeats`` times interleaved, medians; the baseline's tracked run once (for scale)."""
    from mlflow.tracking import MlflowClient

    from src.analysis.loaders import load_history, load_runs
    from src.runs.build import assemble
    from src.runs.loop import fit

    overrides = [
        f"trainer.epochs={epochs}",
        "trainer.loss_threshold=null",
        "tracking.log_figures=false",
        "tracking.log_model=false",
    ]
    run = compose_run(overrides)

    def untracked() -> float:
        parts = assemble(run)
        return fit(parts.net, parts.optimizer, parts.objective, parts.data, epochs, parts.shuffle_rng).seconds

    lines = []
    for tree in trees:
        workdir = fresh_store(tree, root, f"logging-{tree.name}")
        uri = f"sqlite:///{workdir / 'mlflow.db'}"
        bare = []
        for _ in range(repeats if tree.name == "this" else 1):
            bare.append(untracked())
            tree.train(workdir, *overrides)
        client = MlflowClient(uri)
        tracked_runs = client.search_runs(  # not the warm-up's one-epoch run
            [client.get_experiment_by_name("backprop").experiment_id], f"metrics.epochs_run = {epochs}"
        )
        tracked = statistics.median(r.data.metrics["train_seconds"] for r in tracked_runs)
        ratio = tracked / statistics.median(bare)
        print(
            f"logging {tree.name}: {epochs} epochs, {len(bare)} time(s): tracked {tracked:.2f} s, "
            f"untracked {statistics.median(bare):.2f} s (medians)"
        )
        if tree.name == "this":
            history = load_history(load_runs("backprop", sweep="all", tracking_uri=uri), tracking_uri=uri)
            last = tracked_runs[0]
            stored = history[(history["metric"] == "train_loss") & (history["run_id"] == last.info.run_id)]
            in_mlflow = len(client.get_metric_history(last.info.run_id, "train_loss"))
            lines.append(ratio_line("50k-epoch run: tracked / untracked train_seconds", ratio, "<= 1.2", ratio <= 1.2))
            lines.append(
                f"  {'epochs in load_history / points in MLflow metric history':<58} "
                f"{stored['epoch'].nunique():>8} / {in_mlflow}"
            )
        else:
            lines.append(f"  {'50k-epoch run, baseline: tracked / untracked':<58} {ratio:8.2f}")
    return lines


PAIR_EPOCHS = 30_000


def _train_seconds(epochs: int) -> float:
    """``fit``'s seconds for the default config at ``epochs`` epochs (a worker's job)."""
    from threadpoolctl import threadpool_limits

    from src.runs.build import assemble
    from src.runs.loop import fit

    threadpool_limits(1)
    run = compose_run([f"trainer.epochs={epochs}", "trainer.loss_threshold=null"])
    parts = assemble(run)
    return fit(parts.net, parts.optimizer, parts.objective, parts.data, epochs, parts.shuffle_rng).seconds


def two_at_once(repeats: int) -> tuple[float, float]:
    """``(seconds alone, seconds each of two at once)`` of one training in worker
    processes, best of ``repeats`` interleaved."""
    import multiprocessing

    with multiprocessing.get_context("spawn").Pool(2) as pool:
        pool.map(_train_seconds, [1000, 1000])  # both workers have imported everything
        alone, together = [], []
        for _ in range(repeats):
            alone.append(pool.apply(_train_seconds, (PAIR_EPOCHS,)))
            together.append(max(pool.map(_train_seconds, [PAIR_EPOCHS, PAIR_EPOCHS], chunksize=1)))
    return min(alone), min(together)


def bench_parallel(tree: Tree, root: Path, jobs: int, repeats: int) -> list[str]:
    """Two sweeps of ``jobs`` jobs: short jobs (3 000 epochs, where start-up and
    bookkeeping dominate) and long ones (100 000 epochs, the labs' scale); and the
    ceiling of two workers on this machine (``two_at_once``)."""
    alone, together = two_at_once(repeats)
    slowdown = together / alone
    print(
        f"parallel: {PAIR_EPOCHS} epochs alone {alone:.2f} s, two at once {together:.2f} s each: "
        f"{slowdown:.2f}x slower, so two workers reach at most {2 / slowdown:.2f}x one"
    )
    lines = [f"  {'two trainings at once: the ceiling of two workers (2 / slowdown)':<58} {2 / slowdown:8.2f}"]
    for epochs, target in ((3_000, None), (100_000, 1.7)):
        workdir = fresh_store(tree, root, f"parallel-{epochs}")
        sweep = [f"trainer.seed=range({jobs})", f"trainer.epochs={epochs}", "trainer.loss_threshold=null"]
        basic = tree.train(workdir, *sweep, multirun=True)
        joblib = tree.train(workdir, "hydra/launcher=joblib", *sweep, multirun=True)
        print(f"parallel: {jobs} jobs x {epochs} epochs basic {basic:.2f} s, joblib {joblib:.2f} s")
        what = f"{jobs}-job sweep of {epochs}-epoch jobs: joblib / basic throughput"
        if target is None:
            lines.append(f"  {what:<58} {basic / joblib:8.2f}")
        else:
            lines.append(ratio_line(what, basic / joblib, f">= {target}", basic / joblib >= target))
    return lines


STACK_RATES = "0.001,0.003,0.01,0.03,0.1,0.3,1,3"


def children_figures_seconds(runs: list, stack: list, out: Path) -> float:
    """Seconds per child to draw the three figures of each network of a stack of ``runs``
    (``stack``: what ``train_stack`` returned), as the figure worker draws them (after
    one unmeasured child)."""
    from src.runs.build import assemble
    from src.runs.figure_worker import FigureJob

    jobs = []
    for run, trained in zip(runs, stack, strict=True):
        parts = assemble(run)
        parts.net.params[...] = trained.params
        jobs.append(FigureJob(run.tracking.run_name or "child", trained.result.history, parts.net, parts.data))
    out.mkdir()
    jobs[0].draw(out)
    start = time.perf_counter()
    for job in jobs:
        job.draw(out)
    return (time.perf_counter() - start) / len(jobs)


def bench_stacked(tree: Tree, root: Path, repeats: int) -> list[str]:
    from src.runs.build import assemble
    from src.runs.loop import fit
    from src.runs.stacked_launcher import train_stack

    shape = ["trainer.epochs=5000", "trainer.loss_threshold=null"]
    grid = [f"optimizer.lr={STACK_RATES}", "trainer.seed=range(8)", *shape]
    workdir = fresh_store(tree, root, "stacked")
    basic = tree.train(workdir, *grid, multirun=True)
    stacked = tree.train(workdir, "hydra/launcher=stacked", *grid, multirun=True)
    fixed = tree.train(
        workdir, "hydra/launcher=stacked", "optimizer.lr=0.001,0.003", "trainer.seed=0", *shape, multirun=True
    )
    runs = [
        compose_run([f"optimizer.lr={lr}", f"trainer.seed={seed}", *shape])
        for lr in STACK_RATES.split(",")
        for seed in range(8)
    ]
    alone, together = [], []
    for _ in range(min(repeats, 3)):  # a pair takes about 10 s
        start = time.perf_counter()
        for run in runs:
            parts = assemble(run)
            fit(parts.net, parts.optimizer, parts.objective, parts.data, run.trainer.epochs, parts.shuffle_rng)
        alone.append(time.perf_counter() - start)
        start = time.perf_counter()
        stack = train_stack(runs)
        together.append(time.perf_counter() - start)
    one_by_one, together = min(alone), min(together)
    figures = children_figures_seconds(runs, stack, root / "stacked-figures")
    per_child = (stacked - fixed - together) / (len(runs) - 2)
    print(
        f"stacked: 64 jobs end to end basic {basic:.1f} s, stacked {stacked:.1f} s = a 2-job stacked sweep "
        f"{fixed:.1f} s + the stack's training {together:.2f} s + 62 more children at {per_child * 1000:.0f} ms "
        f"(besides their figures, {figures * 1000:.0f} ms each on the other core); "
        f"training alone one by one {one_by_one:.2f} s, stacked {together:.2f} s (best of {len(alone)})"
    )
    bare = fixed + together
    return [
        ratio_line("64-job grid end to end: basic / stacked", basic / stacked, ">= 5", basic / stacked >= 5),
        f"  {'  its ceiling, were a child free: basic / (2-job sweep + training)':<58} {basic / bare:8.2f}",
        f"  {'  were a child only its figures: basic / (that + 62 x figures)':<58} "
        f"{basic / (bare + 62 * figures):8.2f}",
        ratio_line(
            "64-job grid training alone: one by one / stacked",
            one_by_one / together,
            ">= 10",
            one_by_one / together >= 10,
        ),
    ]


ENGINE_WORKLOADS = [
    (21, 8, 2000, np.float64),
    (100, 32, 2000, np.float64),
    (10_000, 64, 30, np.float64),
    (10_000, 64, 30, np.float32),
]


def bench_engine(repeats: int) -> list[str]:
    from peers import PEERS
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        print("engine: PyTorch is not installed; its column is skipped (pip install torch)")
    rng = np.random.default_rng(0)
    lines = []
    for n, hidden, epochs, dtype in ENGINE_WORKLOADS:
        x = rng.normal(size=(n, 2))
        y = (x[:, 0] * x[:, 1] > 0).astype(np.int64)
        runs = {name: make(x, y, hidden, epochs, dtype) for name, make in PEERS.items()}
        runs = {name: run for name, run in runs.items() if run is not None}
        times: dict[str, list[float]] = {name: [] for name in runs}
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            for _ in range(repeats):
                for name, run in runs.items():
                    start = time.perf_counter()
                    run()
                    times[name].append((time.perf_counter() - start) / epochs)
        best = {name: min(values) for name, values in times.items()}
        label = f"N={n}, H={hidden}, {np.dtype(dtype).name}"
        print(f"engine {label}: " + ", ".join(f"{k} {v * 1e6:.1f} us/epoch" for k, v in best.items()))
        tiny = n <= 100 and hidden <= 32
        for peer, value in best.items():
            if peer == "project":
                continue
            speedup = value / best["project"]
            if tiny and peer == "pytorch":
                target, met = ">= 8", speedup >= 8
            elif tiny and peer == "sklearn":
                target, met = ">= 2.5", speedup >= 2.5
            elif peer == "pytorch" and dtype == np.float32:
                target, met = ">= 0.77", speedup >= 1 / 1.3
            else:
                target, met = ">= 1", speedup >= 1
            lines.append(ratio_line(f"engine {label}: {peer} time / project time", speedup, target, met))
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default="b31beb1", help="commit to compare against ('' for none)")
    parser.add_argument("--only", default=",".join(SECTIONS), help=f"comma-separated subset of {SECTIONS}")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    sections = [s for s in args.only.split(",") if s]
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        parser.error(f"--only: unknown section(s) {sorted(unknown)}; expected {SECTIONS}")
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        root = Path(tmp)
        trees = [Tree("this", None)]
        if args.baseline and set(sections) & {"startup", "bookkeeping", "logging"}:
            worktree = root / "baseline-tree"
            subprocess.run(
                ["git", "-C", str(REPO), "worktree", "add", "--detach", str(worktree), args.baseline],
                check=True,
                capture_output=True,
            )
            trees.append(Tree("baseline", worktree))
        try:
            if "engine" in sections:
                results += bench_engine(args.repeats)
            if "startup" in sections:
                results += bench_startup(trees, root, args.repeats)
            if "bookkeeping" in sections:
                results += bench_bookkeeping(trees, root, jobs=17)
            if "logging" in sections:
                results += bench_logging(trees, root, epochs=50_000, repeats=args.repeats)
            if "parallel" in sections:
                results += bench_parallel(trees[0], root, jobs=16, repeats=args.repeats)
            if "stacked" in sections:
                results += bench_stacked(trees[0], root, args.repeats)
        finally:
            if len(trees) > 1:
                subprocess.run(
                    ["git", "-C", str(REPO), "worktree", "remove", "--force", str(trees[1].root)], capture_output=True
                )
    print(f"\nratios (this tree at {git_head()}, baseline {args.baseline or 'none'}):")
    print("\n".join(results))


def git_head() -> str:
    proc = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    return proc.stdout.strip() or "?"


if __name__ == "__main__":
    main()
