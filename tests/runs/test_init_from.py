"""``model.init_from``: start from a ``weights.npz``, checked against the configured model."""

import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from src.runs.build import assemble
from src.runs.config import ConfigError, validate
from src.runs.loop import evaluate
from src.runs.tracked_run import train_and_track


def test_init_from_loads_the_file(compose_config, tmp_path):
    source = assemble(validate(compose_config("trainer.seed=5"))).net
    source.save(tmp_path / "w.npz")
    parts = assemble(validate(compose_config(f"model.init_from={tmp_path / 'w.npz'}")))
    np.testing.assert_array_equal(parts.net.params, source.params)


def test_init_from_checks_shapes_and_existence(compose_config, tmp_path):
    assemble(validate(compose_config("model.width=4"))).net.save(tmp_path / "small.npz")
    with pytest.raises(ConfigError, match=r"^model.init_from: .*W0 has shape \(2, 4\), the model expects \(2, 8\)"):
        assemble(validate(compose_config(f"model.init_from={tmp_path / 'small.npz'}")))
    with pytest.raises(ConfigError, match=r"^model.init_from: .*parameter names"):
        assemble(
            validate(compose_config(f"model.init_from={tmp_path / 'small.npz'}", "model.bias=false", "model.width=4"))
        )
    with pytest.raises(ConfigError, match=r"^model.init_from: invalid value .*existing file"):
        validate(compose_config(f"model.init_from={tmp_path / 'missing.npz'}"))


def test_init_from_round_trips_a_runs_weights_artifact(compose_config, tracking_uri, tmp_path):
    first = train_and_track(compose_config("optimizer=adam", "trainer.loss_threshold=null", "trainer.epochs=80"))
    weights = MlflowClient(tracking_uri).download_artifacts(first.run_id, "weights.npz", str(tmp_path))
    second = validate(compose_config("optimizer=adam", f"model.init_from={weights}"))
    parts = assemble(second)
    # The second run starts exactly where the first ended: its initial loss is the first's
    # final loss, which is also the last epoch of the first's history.
    initial, _ = evaluate(parts.net, parts.objective, parts.data.x_train, parts.data.y_train)
    assert initial == first.final_metrics["final_train_loss"] == first.result.history["train_loss"][-1]
