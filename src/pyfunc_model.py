"""The trained network as an MLflow ``pyfunc`` model.

``predict`` takes an (n, 2) array (or a two-column DataFrame) and returns class
probabilities of shape (n, n_classes): column k is the probability of class k. A
single-output network gives ``[1 - p, p]`` with ``p`` its output clipped to [0, 1]
(the sigmoid output, for the default losses); a softmax network gives its softmax; any
other multi-output network gives its outputs clipped to [0, 1] and normalised per row.
The model carries this package's ``src`` directory, its ``config.yaml`` and
``weights.npz``, so it loads in any process with ``mlflow.pyfunc.load_model``.
"""

from __future__ import annotations

from pathlib import Path

import mlflow.pyfunc
import numpy as np
from mlflow.models import infer_signature

SRC_DIR = Path(__file__).resolve().parent


def class_probabilities(output: np.ndarray, output_activation: str) -> np.ndarray:
    """Network output (n, k) -> class probabilities (n, max(k, 2))."""
    if output.shape[1] == 1:
        p = np.clip(output[:, 0], 0.0, 1.0)
        return np.column_stack([1.0 - p, p])
    if output_activation == "softmax":
        return output
    clipped = np.clip(output, 0.0, 1.0)
    totals = clipped.sum(axis=1, keepdims=True)
    return np.divide(clipped, totals, out=np.full_like(clipped, 1.0 / output.shape[1]), where=totals > 0)


class MLPClassifier(mlflow.pyfunc.PythonModel):
    """Rebuilds the network from the run's config and weights; predicts class probabilities."""

    def load_context(self, context) -> None:
        from omegaconf import OmegaConf

        from src.config import validate
        from src.factory import build_network

        run = validate(OmegaConf.load(context.artifacts["config"]))
        self.net = build_network(run)
        self.net.load(context.artifacts["weights"])

    def predict(self, context, model_input: np.ndarray, params=None) -> np.ndarray:
        x = np.asarray(model_input, dtype=self.net.dtype)
        return class_probabilities(self.net.predict(x), self.net.output_activation)


def log_pyfunc_model(config_path: Path, weights_path: Path, x_example: np.ndarray, probabilities: np.ndarray) -> str:
    """Log the model to the active run under the name ``model``; returns its model URI."""
    info = mlflow.pyfunc.log_model(
        name="model",
        python_model=str(SRC_DIR / "pyfunc_entry.py"),
        artifacts={"config": str(config_path), "weights": str(weights_path)},
        code_paths=[str(SRC_DIR)],
        signature=infer_signature(x_example, probabilities),
        input_example=x_example,
        pip_requirements=_requirements(),
    )
    return info.model_uri


def _requirements() -> list[str]:
    from importlib.metadata import version

    return [f"{name}=={version(name)}" for name in ("mlflow", "numpy", "omegaconf", "scikit-learn", "scipy")]
