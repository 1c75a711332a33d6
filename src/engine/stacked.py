"""A stack of m networks of one architecture, trained as one computation.

Parameters live in one (m, P) buffer, row j laid out like network j's ``MLP.params``;
``weights[i]`` are (m, fan_in, fan_out) views and ``biases[i]`` (m, fan_out) views.
Inputs are (m, n, n_in): each network has its own data (same size). A training pass
is the ``MLP`` pass with every matrix product batched over the stack::

    z_i = a_i @ W_i + b_i[:, None, :]                  (m, n, fan_out)
    dL/dW_i = a_i^T @ delta_i                          (m, fan_in, fan_out)
    dL/db_i = ones(n) @ delta_i                        (m, fan_out)

NumPy runs a batched product as one BLAS call per network, element-wise operations
are the same per element, and the loss reduces each network's terms on their own
(``Loss.values``), so network j of a stack computes exactly what it computes alone;
the optimizers of ``src.engine.optimizers`` update the (m, P) buffer with per-network
hyperparameters as (m, 1) arrays. ``subset`` keeps some of the networks (those still
training once others have stopped), and ``Optimizer.select`` their optimizer's rows.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import numpy as np

from src.engine.losses import Loss
from src.engine.network import MLP, bind_pass, run_pass


class StackedMLP:
    """``len(nets)`` networks of identical architecture, starting from their parameters."""

    def __init__(self, nets: Sequence[MLP]):
        first = nets[0]
        signature = (first.sizes, first.hidden_activation, first.output_activation, first.bias, first.leaky_slope)
        for net in nets:
            if (net.sizes, net.hidden_activation, net.output_activation, net.bias, net.leaky_slope) != signature:
                raise ValueError("a stack needs networks of one architecture")
            if net.dtype != first.dtype:
                raise ValueError("a stack needs networks of one dtype")
        self.sizes, self.bias, self.dtype = first.sizes, first.bias, first.dtype
        self.activations = first.activations
        self.layout = first.layout
        params = np.stack([net.params for net in nets])
        self._bind(params, np.zeros_like(params))

    def subset(self, rows: np.ndarray) -> StackedMLP:
        """A stack of the networks ``rows`` of this one, with copies of their parameters
        and gradients (the networks that go on when the others have stopped)."""
        twin = copy.copy(self)
        twin._bind(self.params[rows], self.grads[rows])
        return twin

    def _bind(self, params: np.ndarray, grads: np.ndarray) -> None:
        """Take ``params`` and ``grads`` (m, P) as the stack's buffers, with their views."""
        self.size, self.params, self.grads = len(params), params, grads
        params, grads = self._views(self.params), self._views(self.grads)
        n_layers = len(self.sizes) - 1
        self.weights = [params[f"W{i}"] for i in range(n_layers)]
        self.weight_grads = [grads[f"W{i}"] for i in range(n_layers)]
        self.biases = [params[f"b{i}"] for i in range(n_layers)] if self.bias else []
        self.bias_grads = [grads[f"b{i}"] for i in range(n_layers)] if self.bias else []
        self._workspaces: dict[int, tuple] = {}

    def _views(self, flat: np.ndarray) -> dict[str, np.ndarray]:
        return {name: flat[:, where].reshape(self.size, *shape) for name, where, shape in self.layout}

    def _workspace(self, rows: int) -> tuple:
        """The training pass for batches of ``rows`` rows (``bind_pass``, made on first use),
        the biases as (m, 1, fan_out) views."""
        if rows not in self._workspaces:
            n_layers = len(self.weights)
            biases = [b[:, None, :] for b in self.biases] if self.bias else [None] * n_layers
            grads = self.bias_grads or [None] * n_layers
            layers = (self.weights, biases, self.weight_grads, grads, self.activations)
            self._workspaces[rows] = bind_pass(*layers, (self.size, rows), self.dtype)
        return self._workspaces[rows]

    def loss_and_gradient(self, x: np.ndarray, y: np.ndarray, loss: Loss) -> tuple[np.ndarray, np.ndarray]:
        """``x`` (m, n, n_in), ``y`` (m, n, n_out) -> ``(loss per network (m,), output
        (m, n, n_out))``; the gradients land in ``self.grads``. The output is a training
        buffer, overwritten by the next pass (``run_pass``, the very pass of ``MLP``)."""
        z, output = run_pass(self._workspace(x.shape[1]), x, y, loss)
        return loss.values(z, output, y), output
