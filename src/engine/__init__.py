"""The engine: a multilayer perceptron and everything that trains it, in pure NumPy.

Modules: ``activations`` and ``losses`` (forward and backward side by side),
``network`` (the MLP over one flat parameter buffer), ``objective`` (loss plus
penalties), ``initializers``, ``optimizers`` (``torch.optim``'s update rules),
``encoding`` (labels <-> network outputs) and ``gradcheck`` (finite differences).

Imports NumPy only: no file, network or tracking I/O, and nothing from ``src.runs`` or
``src.analysis``.
"""
