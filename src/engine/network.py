"""A multilayer perceptron whose parameters live in one flat buffer.

Layer ``i`` maps its input ``a_i`` of shape (n, fan_in) to ``z_i = a_i @ W_i + b_i``
and ``a_{i+1} = f_i(z_i)``, with ``W_i`` of shape (fan_in, fan_out) and ``b_i`` of
shape (fan_out,). ``a_0`` is the input batch; the hidden layers share one activation
(or have one each, given as a sequence) and the last layer has its own (the output
activation).

All parameters are stored back to back in ``params`` (W0, b0, W1, b1, ...), and
``weights[i]`` / ``biases[i]`` are reshaped views into it; gradients mirror that
layout in ``grads``. An optimizer therefore updates the whole network with a few
vectorised operations on two 1-D arrays, as in scikit-learn's packed parameters.

Backpropagation, for a batch of n rows (``delta_i = dL/dz_i``)::

    delta_L = loss.grad_z(z_L, a_{L+1}, y)
    dL/dW_i = a_i.T @ delta_i                      (fan_in, fan_out)
    dL/db_i = delta_i.sum(axis=0)                  (fan_out,)
    delta_{i-1} = f_{i-1}.backward(delta_i @ W_i.T, z_{i-1}, a_i)

Training passes (``loss_and_gradient``) write ``z_i``, ``a_{i+1}``, the upstream
gradients ``delta_i @ W_i.T`` and ``delta_{i-1}`` into buffers kept per batch size, so an
epoch allocates no large array: the returned output is valid until the next training
pass. A hidden activation whose derivative is a function of its output (sigmoid, tanh,
ReLU, identity) computes ``a_{i+1}`` over ``z_i`` and ``delta_{i-1}`` over the upstream
gradient, which spares those element-wise steps a third array's memory traffic. Each
batch size's pass is bound once, layer by layer, to its views and buffers (``bind_pass``;
``run_pass`` runs it, for a network and for a stack of them alike), so that a pass is
its NumPy calls and little else (at a tiny network's size, the Python around the calls
was a tenth of an epoch). ``forward`` and ``predict`` return fresh arrays. The bias
gradient is computed as ``ones(n) @ delta_i`` (one BLAS call); a layer with a single
output unit forms ``delta_i @ W_i.T`` as the broadcast product it is.
"""

from __future__ import annotations

import zipfile
from collections.abc import Sequence

import numpy as np

from src.engine.activations import get_activation
from src.engine.losses import Loss


class MLP:
    """Fully connected network with layer sizes ``sizes = [n_in, h_1, ..., n_out]``."""

    def __init__(
        self,
        sizes: Sequence[int],
        *,
        hidden_activation: str | Sequence[str],
        output_activation: str,
        bias: bool,
        leaky_slope: float,
        dtype: np.dtype | type,
    ):
        if len(sizes) < 2 or any(s < 1 for s in sizes):
            raise ValueError(f"layer sizes must be >= 1 and at least two of them, got {list(sizes)}")
        self.sizes = [int(s) for s in sizes]
        self.bias = bias
        self.dtype = np.dtype(dtype)
        n_layers = len(self.sizes) - 1
        if isinstance(hidden_activation, str):
            hidden = [hidden_activation] * (n_layers - 1)
        else:
            hidden = list(hidden_activation)
            if len(hidden) != n_layers - 1:
                raise ValueError(f"{len(hidden)} hidden activations for {n_layers - 1} hidden layers")
        self.activations = [get_activation(name, leaky_slope) for name in hidden]
        self.activations.append(get_activation(output_activation, leaky_slope))

        self.hidden_activation = hidden_activation if isinstance(hidden_activation, str) else tuple(hidden)
        self.output_activation = output_activation
        self.leaky_slope = leaky_slope

        #: ``(name, slice of the flat buffer, shape)`` for W0, b0, W1, b1, ...
        self.layout: list[tuple[str, slice, tuple[int, ...]]] = []
        offset = 0
        for i, (fan_in, fan_out) in enumerate(zip(self.sizes[:-1], self.sizes[1:], strict=True)):
            shapes = [(f"W{i}", (fan_in, fan_out))] + ([(f"b{i}", (fan_out,))] if bias else [])
            for name, shape in shapes:
                size = int(np.prod(shape))
                self.layout.append((name, slice(offset, offset + size), shape))
                offset += size
        self.params = np.zeros(offset, dtype=self.dtype)
        self.grads = np.zeros(offset, dtype=self.dtype)
        param_views = self.views(self.params)
        grad_views = self.views(self.grads)
        self.weights = [param_views[f"W{i}"] for i in range(n_layers)]
        self.weight_grads = [grad_views[f"W{i}"] for i in range(n_layers)]
        self.biases = [param_views[f"b{i}"] for i in range(n_layers)] if bias else []
        self.bias_grads = [grad_views[f"b{i}"] for i in range(n_layers)] if bias else []
        #: batch rows -> training buffers (see ``_workspace``)
        self._workspaces: dict[int, tuple] = {}

    def views(self, flat: np.ndarray) -> dict[str, np.ndarray]:
        """Named reshaped views (``W0``, ``b0``, ...) of a flat array laid out like ``params``."""
        return {name: flat[where].reshape(shape) for name, where, shape in self.layout}

    def copy(self, dtype: np.dtype | type | None = None) -> MLP:
        """An independent network with the same architecture and parameters (optionally cast)."""
        twin = MLP(
            self.sizes,
            hidden_activation=self.hidden_activation,
            output_activation=self.output_activation,
            bias=self.bias,
            leaky_slope=self.leaky_slope,
            dtype=dtype if dtype is not None else self.dtype,
        )
        twin.params[...] = self.params
        return twin

    @property
    def n_layers(self) -> int:
        return len(self.weights)

    def forward(self, x: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Return ``(zs, activations)``: ``zs[i]`` is layer i's pre-activation and
        ``activations[i]`` its input (``activations[0] = x``, ``activations[-1]`` the output)."""
        zs, activations, a = [], [x], x
        with np.errstate(over="ignore"):  # a sigmoid of z < -709 is exactly 0
            for i, (weight, activation) in enumerate(zip(self.weights, self.activations, strict=True)):
                z = a @ weight
                if self.bias:
                    z += self.biases[i]
                a = activation.forward(z)
                zs.append(z)
                activations.append(a)
        return zs, activations

    def _workspace(self, rows: int) -> tuple:
        """The training pass for batches of ``rows`` rows (``bind_pass``, made on first use)."""
        if rows not in self._workspaces:
            biases = self.biases or [None] * self.n_layers
            grads = self.bias_grads or [None] * self.n_layers
            layers = (self.weights, biases, self.weight_grads, grads, self.activations)
            self._workspaces[rows] = bind_pass(*layers, (rows,), self.dtype)
        return self._workspaces[rows]

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Network output of shape (n, n_out)."""
        return self.forward(x)[1][-1]

    def loss_and_gradient(self, x: np.ndarray, y: np.ndarray, loss: Loss) -> tuple[float, np.ndarray]:
        """Forward pass, loss value and backward pass; the gradient lands in ``self.grads``.

        ``x``: (n, n_in), ``y``: (n, n_out) targets. Returns ``(loss value, output)``; the
        output (n, n_out) is a training buffer, overwritten by the next training pass.
        Training runs under the trainer's ``np.errstate`` (a sigmoid of z < -709 overflows
        to exactly 0; ``src.runs.loop.fit`` ignores that overflow).
        """
        z, output = run_pass(self._workspace(len(x)), x, y, loss)
        return loss.value(z, output, y), output

    def state_dict(self) -> dict[str, np.ndarray]:
        """Copies of the parameters as ``{"W0": (fan_in, fan_out), "b0": (fan_out,), ...}``."""
        return {name: view.copy() for name, view in self.views(self.params).items()}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        """Copy ``W{i}``/``b{i}`` arrays into the parameters, checking every name and shape."""
        expected = self.views(self.params)
        if set(state) != set(expected):
            raise ValueError(f"parameter names {sorted(state)} do not match the model's {sorted(expected)}")
        for name, target in expected.items():
            value = np.asarray(state[name])
            if value.shape != target.shape:
                raise ValueError(f"parameter {name} has shape {value.shape}, the model expects {target.shape}")
            target[...] = value

    def save(self, path) -> None:
        """Write the parameters to an ``.npz`` file readable with ``allow_pickle=False``."""
        np.savez(path, **self.state_dict())

    def load(self, path) -> None:
        """Read parameters written by ``save``. Anything else (another format, arrays of
        objects, which only unpickling could read) raises ``ValueError`` saying what."""
        if not zipfile.is_zipfile(path):
            raise ValueError("not a weights .npz archive (W0, b0, W1, ... arrays)")
        try:
            with np.load(path, allow_pickle=False) as data:
                state = {name: data[name] for name in data.files}
        except (ValueError, zipfile.BadZipFile, EOFError) as err:
            raise ValueError(f"not a weights .npz archive of numeric arrays ({str(err).splitlines()[0]})") from None
        for name, value in state.items():
            if value.dtype.kind not in "biuf":
                raise ValueError(f"parameter {name} holds {value.dtype} values, not numbers")
        self.load_state_dict(state)


def bind_pass(weights, biases, weight_grads, bias_grads, activations, batch: tuple[int, ...], dtype) -> tuple:
    """A training pass bound once, layer by layer, to its views and buffers, for the
    layers' ``weights`` (..., fan_in, fan_out), ``biases`` as they broadcast against
    ``z_i`` (or None), their gradient views and ``activations``; ``batch`` is the shape of
    the leading axes of ``z_i``: ``(n,)`` for a network, ``(m, n)`` for a stack of m.
    Returns ``(forward steps, backward steps of layers L-1..1, layer 0's gradient views,
    ones(n))``, with buffers for ``z_i``, ``a_{i+1}``, the upstream gradient, ``delta``
    and a contiguous ``W_i^T`` (``run_pass`` runs it). A hidden activation with
    ``in_place`` set gets no buffers of its own: its output is computed over its ``z`` and
    its delta over the upstream gradient (``Activation.backward_in_place``)."""
    zs = [np.empty((*batch, w.shape[-1]), dtype) for w in weights]
    outs = [
        z if activation.in_place and i < len(weights) - 1 else np.empty(z.shape, dtype)
        for i, (z, activation) in enumerate(zip(zs, activations, strict=True))
    ]
    forward = list(zip(weights, biases, activations, zs, outs, strict=True))
    backward = []
    for i in range(len(weights) - 1, 0, -1):
        weight_t = weights[i].mT
        single = weight_t.shape[-2] == 1  # delta @ W^T is then the broadcast product it is
        backward.append(
            (
                i,
                weight_grads[i],
                bias_grads[i],
                weight_t,
                None if single else np.empty(weight_t.shape, dtype),  # W_i^T, contiguous
                np.empty((*batch, weight_t.shape[-1]), dtype),  # delta_i @ W_i^T
                activations[i - 1],
                zs[i - 1],
                None if outs[i - 1] is zs[i - 1] else np.empty((*batch, weight_t.shape[-1]), dtype),  # delta_{i-1}
            )
        )
    return forward, backward, (weight_grads[0], bias_grads[0]), np.ones(batch[-1], dtype)


def run_pass(bound: tuple, x: np.ndarray, y: np.ndarray, loss: Loss) -> tuple[np.ndarray, np.ndarray]:
    """Forward and backward pass of a ``bind_pass`` on inputs ``x`` and targets ``y``; the
    gradients land in the bound gradient views. Returns ``(z_L, output)``, training
    buffers overwritten by the next pass. Runs under the trainer's ``np.errstate``: a
    sigmoid of z < -709 overflows to exactly 0 (``src.runs.loop`` ignores that overflow)."""
    forward, backward, (weight_grad, bias_grad), ones = bound
    a, activations = x, [x]
    for weight, bias, activation, z, out in forward:
        np.matmul(a, weight, out=z)
        if bias is not None:
            np.add(z, bias, out=z)
        a = activation.forward(z, out=out)  # ``out`` or an array of its own
        activations.append(a)
    delta = loss.grad_z(z, a, y, activation)  # the output layer's
    for i, w_grad, b_grad, weight_t, w_t, upstream, activation, z_in, out in backward:
        a_in = activations[i]
        np.matmul(a_in.mT, delta, out=w_grad)
        if b_grad is not None:
            np.matmul(ones, delta, out=b_grad)
        if w_t is None:  # a single output unit
            np.multiply(delta, weight_t, out=upstream)
        else:  # through a contiguous W^T: the same product, faster than through the view
            np.copyto(w_t, weight_t)
            np.matmul(delta, w_t, out=upstream)
        if out is None:  # delta_{i-1} over the upstream gradient, with a_i as scratch
            delta = activation.backward_in_place(upstream, a_in)
        else:
            delta = activation.backward(upstream, z_in, a_in, out=out)
    np.matmul(x.mT, delta, out=weight_grad)
    if bias_grad is not None:
        np.matmul(ones, delta, out=bias_grad)
    return z, a
