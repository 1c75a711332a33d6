"""Model-from-code entry point of the pyfunc model (see ``src.runs.pyfunc_model``)."""

from mlflow.models import set_model

from src.runs.pyfunc_model import MLPClassifier

set_model(MLPClassifier())
