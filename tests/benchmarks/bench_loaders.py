"""Benchmark: loading a sweep's histories with ``src.analysis`` vs looping MLflow's API.

    uv run python tests/benchmarks/bench_loaders.py [--runs 100] [--epochs 2000]

Builds a sweep of ``--runs`` runs with ``--epochs`` epochs of ``train_loss`` and
``train_accuracy`` in a fresh temporary sqlite store (logged the way ``src.runs.tracked_run``
logs: batched metrics plus the ``history.parquet`` artifact), then times, in the same
process and on the same store:

* ``load_runs`` + ``load_history`` (what the notebooks call);
* the baseline: ``MlflowClient.get_metric_history`` for every run and metric.

It prints both times and their ratio.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from mlflow.entities import Metric, Param
from mlflow.tracking import MlflowClient

from src.analysis.loaders import load_history, load_runs
from src.runs.tracking import ensure_experiment


def build_store(uri: str, n_runs: int, n_epochs: int) -> None:
    client = MlflowClient(uri)
    experiment_id = ensure_experiment(client, "benchmark")
    parent = client.create_run(experiment_id, run_name="sweep", tags={"sweep": "true", "sweep_dir": "bench"})
    rng = np.random.default_rng(0)
    epochs = np.arange(1, n_epochs + 1)
    for i in range(n_runs):
        run = client.create_run(experiment_id, run_name=f"run-{i}", tags={"mlflow.parentRunId": parent.info.run_id})
        run_id = run.info.run_id
        history = {
            "train_loss": np.exp(-epochs / rng.uniform(100, 1000)) + rng.uniform(0, 0.01, n_epochs),
            "train_accuracy": np.minimum(1.0, epochs / rng.uniform(100, 3000)),
        }
        now = int(time.time() * 1000)
        metrics = [
            Metric(k, float(v), now, int(e))
            for k, values in history.items()
            for e, v in zip(epochs, values, strict=True)
        ]
        params = [Param("optimizer.lr", str(10.0 ** -(i % 5))), Param("trainer.seed", str(i % 5))]
        client.log_batch(run_id, metrics=metrics, params=params)
        client.log_metric(run_id, "epochs_run", n_epochs)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "history.parquet"
            pd.DataFrame({"epoch": epochs, **history}).to_parquet(path, index=False)
            client.log_artifact(run_id, str(path))
        client.set_terminated(run_id)
    client.set_terminated(parent.info.run_id)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--epochs", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        uri = f"sqlite:///{Path(tmp) / 'mlflow.db'}"
        import os

        os.chdir(tmp)  # the store's artifacts go to ./mlruns
        start = time.perf_counter()
        build_store(uri, args.runs, args.epochs)
        print(f"built {args.runs} runs x {args.epochs} epochs in {time.perf_counter() - start:.1f}s")

        start = time.perf_counter()
        runs = load_runs("benchmark", tracking_uri=uri)
        history = load_history(runs, tracking_uri=uri)
        ours = time.perf_counter() - start
        assert len(history) == args.runs * args.epochs * 2

        client = MlflowClient(uri)
        start = time.perf_counter()
        points = 0
        for run_id in runs["run_id"]:
            for metric in ("train_loss", "train_accuracy"):
                points += len(client.get_metric_history(run_id, metric))
        baseline = time.perf_counter() - start
        assert points == len(history)

        print(f"load_runs + load_history:          {ours:6.2f}s  ({len(history)} points)")
        print(f"get_metric_history for every run:  {baseline:6.2f}s")
        print(f"ratio: {baseline / ours:.1f}x faster")


if __name__ == "__main__":
    main()
