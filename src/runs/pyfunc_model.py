"""The trained network as an MLflow ``pyfunc`` model.

``predict`` takes an (n, 2) array (or a two-column DataFrame) and returns class
probabilities of shape (n, n_classes), column k the probability of class k
(``src.engine.encoding.class_probabilities``). The model carries this package's
``src`` directory and the run's ``config.yaml`` and ``weights.npz``, and rebuilds the
network with ``src.runs.build.load_network``, so it loads in any process with
``mlflow.pyfunc.load_model``. Loading a model runs the code it carries: load models
only from stores you trust.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path

import mlflow.pyfunc
import numpy as np
from mlflow.models import infer_signature

from src.engine.encoding import class_probabilities
from src.runs.contract import CONFIG_FILE, MODEL_NAME, WEIGHTS_FILE

SRC_DIR = Path(__file__).resolve().parents[1]
#: The model's artifacts, keyed as ``context.artifacts`` sees them.
CONFIG_KEY, WEIGHTS_KEY = Path(CONFIG_FILE).stem, Path(WEIGHTS_FILE).stem


class MLPClassifier(mlflow.pyfunc.PythonModel):
    """Rebuilds the network from the run's config and weights; predicts class probabilities."""

    def load_context(self, context) -> None:
        from src.runs.build import load_network

        self.net = load_network(context.artifacts[CONFIG_KEY], context.artifacts[WEIGHTS_KEY])

    def predict(self, context, model_input: np.ndarray, params=None) -> np.ndarray:
        x = np.asarray(model_input, dtype=self.net.dtype)
        return class_probabilities(self.net.predict(x), self.net.output_activation)


def log_pyfunc_model(config_path: Path, weights_path: Path, x_example: np.ndarray, probabilities: np.ndarray) -> str:
    """Log the model to the active run under ``MODEL_NAME``; returns its model URI.

    Requirements are given explicitly (``_requirements``), so MLflow infers none, and it
    is told not to copy the project's ``uv.lock`` (about 1 MB) into every model."""
    with _environment(MLFLOW_LOG_UV_FILES="false", MLFLOW_UV_AUTO_DETECT="false"):
        return _log(config_path, weights_path, x_example, probabilities)


@contextmanager
def _environment(**values: str):
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _log(config_path: Path, weights_path: Path, x_example: np.ndarray, probabilities: np.ndarray) -> str:
    info = mlflow.pyfunc.log_model(
        name=MODEL_NAME,
        python_model=str(Path(__file__).with_name("pyfunc_entry.py")),
        artifacts={CONFIG_KEY: str(config_path), WEIGHTS_KEY: str(weights_path)},
        code_paths=[str(SRC_DIR)],
        signature=infer_signature(x_example, probabilities),
        input_example=x_example,
        pip_requirements=_requirements(),
    )
    return info.model_uri


def _requirements() -> list[str]:
    from importlib.metadata import version

    return [f"{name}=={version(name)}" for name in ("mlflow", "numpy", "omegaconf")]
