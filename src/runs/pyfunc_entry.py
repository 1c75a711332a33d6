"""Model-from-code entry point of the pyfunc model (see ``src.runs.pyfunc_model``): the
class MLflow instantiates when the model is loaded."""

import mlflow.pyfunc
import numpy as np
from mlflow.models import set_model

from src.engine.encoding import class_probabilities
from src.runs.pyfunc_model import CONFIG_KEY, WEIGHTS_KEY


class MLPClassifier(mlflow.pyfunc.PythonModel):
    """Rebuilds the network from the run's config and weights; predicts class probabilities."""

    def load_context(self, context) -> None:
        from src.runs.build import load_network

        self.net = load_network(context.artifacts[CONFIG_KEY], context.artifacts[WEIGHTS_KEY])

    def predict(self, context, model_input: np.ndarray, params=None) -> np.ndarray:
        x = np.asarray(model_input, dtype=self.net.dtype)
        return class_probabilities(self.net.predict(x), self.net.output_activation)


set_model(MLPClassifier())
