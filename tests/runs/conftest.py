"""Fixtures of the runs tests: training assembled parts the way a tracked run does."""

import pytest

from src.runs.loop import fit


@pytest.fixture(scope="session")
def fit_run():
    """``fit_run(parts, run)`` -> ``TrainResult``: ``fit`` with the run's trainer settings, untracked."""

    def _fit(parts, run):
        t = run.trainer
        return fit(
            parts.net,
            parts.optimizer,
            parts.objective,
            parts.data,
            t.epochs,
            parts.shuffle_rng,
            batch_size=t.batch_size,
            shuffle=t.shuffle,
            loss_threshold=t.loss_threshold,
            threshold_patience=t.threshold_patience,
        )

    return _fit
