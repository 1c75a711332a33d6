"""``trainer.gradcheck=true``: the gradient check logged at the start and the end of a run,
and a wrong backward pass failing the run."""

import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from src.engine.activations import Tanh
from src.runs.tracked_run import GradientCheckError, train_and_track


def test_gradcheck_is_logged_at_start_and_end(compose_config, tracking_uri):
    summary = train_and_track(compose_config("optimizer=rmsprop", "trainer.gradcheck=true"))
    history = MlflowClient(tracking_uri).get_metric_history(summary.run_id, "gradcheck_max_rel_error")
    assert sorted(m.step for m in history) == [0, summary.result.epochs_run]
    assert all(m.value < 1e-6 for m in history)


def test_wrong_backprop_fails_the_gradcheck_and_the_run(compose_config, tracking_uri, monkeypatch):
    # the wrong derivative 1 - a instead of 1 - a**2, on both of the pass's paths
    monkeypatch.setattr(Tanh, "backward", lambda self, grad_a, z, a, out=None: grad_a * (1.0 - a))
    monkeypatch.setattr(Tanh, "backward_in_place", lambda self, grad_a, a: np.multiply(grad_a, 1.0 - a, out=grad_a))
    with pytest.raises(GradientCheckError, match="max relative error"):
        train_and_track(compose_config("trainer.gradcheck=true"))
    client = MlflowClient(tracking_uri)
    (run,) = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert run.info.status == "FAILED" and run.data.tags["gradcheck"] == "failed"
    assert run.data.metrics["gradcheck_max_rel_error"] > 1e-2
