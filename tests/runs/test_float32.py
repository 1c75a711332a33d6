"""``trainer.dtype=float32``: data, parameters and optimizer state in float32 end to end."""

import numpy as np
import pytest

from src.runs.build import assemble
from src.runs.config import validate


@pytest.mark.parametrize("optimizer", ["sgd", "nesterov", "rmsprop", "adamw"])
def test_float32_runs_end_to_end_in_float32(compose_config, fit_run, optimizer):
    run = validate(compose_config("trainer.dtype=float32", f"optimizer={optimizer}"))
    parts = assemble(run)
    assert parts.net.params.dtype == parts.net.grads.dtype == np.float32
    state = [v for v in vars(parts.optimizer).values() if isinstance(v, np.ndarray)]
    assert state and all(a.dtype == np.float32 for a in state)
    result = fit_run(parts, run)
    assert parts.net.params.dtype == np.float32
    assert parts.net.predict(parts.data.x_train.astype(np.float32)).dtype == np.float32
    assert result.epochs_to_threshold is not None and result.history["train_accuracy"][-1] == 1.0


def test_float32_and_float64_runs_agree_to_float32_precision(compose_config, fit_run):
    losses = {}
    for dtype in ("float32", "float64"):
        run = validate(compose_config(f"trainer.dtype={dtype}", "trainer.epochs=50", "trainer.loss_threshold=null"))
        losses[dtype] = np.array(fit_run(assemble(run), run).history["train_loss"])
    np.testing.assert_allclose(losses["float32"], losses["float64"], rtol=1e-4)
