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

    def _workspace(self, rows: int) -> tuple[list, list, tuple, np.ndarray]:
        """The training pass for batches of ``rows`` rows, bound once as ``MLP``'s is:
        ``(forward steps, backward steps of layers L-1..1, layer 0's gradient views, ones)``,
        each step with its parameter and gradient views and its buffers (the biases as
        (m, 1, fan_out) views, a buffer for the contiguous ``W_i^T``)."""
        if rows not in self._workspaces:
            m, widths = self.size, self.sizes[1:]
            zs = [np.empty((m, rows, w), self.dtype) for w in widths]
            outs = [np.empty((m, rows, w), self.dtype) for w in widths]
            biases = [b[:, None, :] for b in self.biases] if self.bias else [None] * len(widths)
            bias_grads = self.bias_grads or [None] * len(widths)
            forward = list(zip(self.weights, biases, self.activations, zs, outs, strict=True))
            backward = []
            for i in range(len(widths) - 1, 0, -1):
                weight = self.weights[i]
                weight_t = weight.transpose(0, 2, 1)
                single = weight.shape[-1] == 1  # delta @ W^T is then the broadcast product it is
                backward.append(
                    (
                        i,
                        self.weight_grads[i],
                        bias_grads[i],
                        weight_t if single else None,
                        None if single else np.empty(weight_t.shape, self.dtype),
                        weight_t,
                        np.empty((m, rows, weight.shape[1]), self.dtype),  # delta_i @ W_i^T
                        self.activations[i - 1],
                        zs[i - 1],
                        np.empty((m, rows, weight.shape[1]), self.dtype),  # delta_{i-1}
                    )
                )
            first = (self.weight_grads[0], bias_grads[0])
            self._workspaces[rows] = (forward, backward, first, np.ones(rows, self.dtype))
        return self._workspaces[rows]

    def loss_and_gradient(self, x: np.ndarray, y: np.ndarray, loss: Loss) -> tuple[np.ndarray, np.ndarray]:
        """``x`` (m, n, n_in), ``y`` (m, n, n_out) -> ``(loss per network (m,), output
        (m, n, n_out))``; the gradients land in ``self.grads``. The output is a training
        buffer, overwritten by the next pass. Runs under the trainer's ``np.errstate``, as
        ``MLP.loss_and_gradient`` does."""
        forward, backward, (weight_grad, bias_grad), ones = self._workspace(x.shape[1])
        a, activations = x, [x]
        for weight, bias, activation, z, out in forward:
            np.matmul(a, weight, out=z)
            if bias is not None:
                np.add(z, bias, out=z)
            a = activation.forward(z, out=out)
            activations.append(a)
        delta = loss.grad_z(z, a, y, self.activations[-1])
        for i, w_grad, b_grad, w_row, w_t, weight_t, upstream, activation, z_in, out in backward:
            a_in = activations[i]
            np.matmul(a_in.transpose(0, 2, 1), delta, out=w_grad)
            if b_grad is not None:
                np.matmul(ones, delta, out=b_grad)
            if w_row is not None:
                np.multiply(delta, w_row, out=upstream)
            else:  # a contiguous W^T: NumPy's batched product is faster, and exactly the same
                np.copyto(w_t, weight_t)
                np.matmul(delta, w_t, out=upstream)
            delta = activation.backward(upstream, z_in, a_in, out=out)
        np.matmul(x.transpose(0, 2, 1), delta, out=weight_grad)
        if bias_grad is not None:
            np.matmul(ones, delta, out=bias_grad)
        return loss.values(z, a, y), a
