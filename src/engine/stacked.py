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
hyperparameters as (m, 1) arrays.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from src.engine.losses import Loss
from src.engine.network import MLP


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
        self.size = len(nets)
        self.sizes, self.bias, self.dtype = first.sizes, first.bias, first.dtype
        self.activations = first.activations
        self.layout = first.layout
        self.params = np.stack([net.params for net in nets])
        self.grads = np.zeros_like(self.params)
        params, grads = self._views(self.params), self._views(self.grads)
        n_layers = len(self.sizes) - 1
        self.weights = [params[f"W{i}"] for i in range(n_layers)]
        self.weight_grads = [grads[f"W{i}"] for i in range(n_layers)]
        self.biases = [params[f"b{i}"] for i in range(n_layers)] if self.bias else []
        self.bias_grads = [grads[f"b{i}"] for i in range(n_layers)] if self.bias else []
        self._workspaces: dict[int, tuple] = {}

    def _views(self, flat: np.ndarray) -> dict[str, np.ndarray]:
        return {name: flat[:, where].reshape(self.size, *shape) for name, where, shape in self.layout}

    def _workspace(self, rows: int):
        if rows not in self._workspaces:
            widths = self.sizes[1:]
            shape = lambda w: (self.size, rows, w)  # noqa: E731
            self._workspaces[rows] = (
                [np.empty(shape(w), self.dtype) for w in widths],
                [np.empty(shape(w), self.dtype) for w in widths],
                [np.empty(shape(w), self.dtype) for w in widths[:-1]],
                [np.empty(shape(w), self.dtype) for w in widths[:-1]],
                np.ones(rows, self.dtype),
            )
        return self._workspaces[rows]

    def loss_and_gradient(self, x: np.ndarray, y: np.ndarray, loss: Loss) -> tuple[np.ndarray, np.ndarray]:
        """``x`` (m, n, n_in), ``y`` (m, n, n_out) -> ``(loss per network (m,), output
        (m, n, n_out))``; the gradients land in ``self.grads``. The output is a training
        buffer, overwritten by the next pass."""
        zs_buf, acts_buf, upstreams, deltas, ones = self._workspace(x.shape[1])
        zs, activations, a = [], [x], x
        for i in range(len(self.weights)):
            z = np.matmul(a, self.weights[i], out=zs_buf[i])
            if self.bias:
                z += self.biases[i][:, None, :]
            a = self.activations[i].forward(z, out=acts_buf[i])
            zs.append(z)
            activations.append(a)
        output = activations[-1]
        delta = loss.grad_z(zs[-1], output, y, self.activations[-1])
        for i in range(len(self.weights) - 1, -1, -1):
            np.matmul(activations[i].transpose(0, 2, 1), delta, out=self.weight_grads[i])
            if self.bias:
                np.matmul(ones, delta, out=self.bias_grads[i])
            if i > 0:
                if delta.shape[-1] == 1:
                    upstream = np.multiply(delta, self.weights[i].transpose(0, 2, 1), out=upstreams[i - 1])
                else:  # a contiguous W^T: NumPy's batched product is faster, and exactly the same
                    weights_t = np.ascontiguousarray(self.weights[i].transpose(0, 2, 1))
                    upstream = np.matmul(delta, weights_t, out=upstreams[i - 1])
                delta = self.activations[i - 1].backward(upstream, zs[i - 1], activations[i], out=deltas[i - 1])
        return loss.values(zs[-1], output, y), output
