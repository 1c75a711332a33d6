"""backprop-harness: a NumPy multilayer perceptron with Hydra sweeps and MLflow tracking.

Three packages, imported in one direction only (``engine`` <- ``runs`` <- ``analysis``):

* ``src.engine``: the network, its losses, activations, initialisers, optimizers and
  gradient check. Pure NumPy, no I/O.
* ``src.runs``: one tracked training run and sweeps of them: config schemas, datasets,
  the training loop, MLflow tracking, figures, the pyfunc model and the CLI.
* ``src.analysis``: reading tracked runs back: loaders, studies, plots and the README
  report.

``python -m src.train`` is the command-line entry point (``src.runs.cli``).
"""
