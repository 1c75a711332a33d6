"""Optimizers with the update rules and defaults of PyTorch's ``torch.optim``.

Each optimizer updates a flat parameter buffer ``params`` in place from the flat
gradient buffer ``grads`` (the ``MLP.params`` / ``MLP.grads`` pair), keeping its state
in arrays of the same shape. ``t`` is the 1-based step count. With ``g`` the
gradient after weight decay (``g = grad + weight_decay * p``):

* SGD:      ``b = g`` (t = 1) else ``b = momentum*b + (1 - dampening)*g``;
            ``d = g + momentum*b`` (Nesterov) or ``b`` (momentum) or ``g`` (plain);
            ``p -= lr * d``.
* Adagrad:  ``clr = lr / (1 + (t - 1)*lr_decay)``; ``s += g*g``;
            ``p -= clr * g / (sqrt(s) + eps)``.
* RMSprop:  ``v = alpha*v + (1 - alpha)*g*g``; centered: ``m += (1 - alpha)*(g - m)``,
            ``v~ = v - m*m`` (else ``v~ = v``); ``d = g / (sqrt(v~) + eps)``;
            with momentum ``b = momentum*b + d``, ``p -= lr * b``; else ``p -= lr * d``.
* Adam:     ``m += (1 - beta1)*(g - m)``; ``v = beta2*v + (1 - beta2)*g*g``;
            ``v_max = max(v_max, v)`` (AMSGrad);
            ``p -= lr / (1 - beta1**t) * m / (sqrt(v) / sqrt(1 - beta2**t) + eps)``.
* AdamW:    Adam with decoupled weight decay: ``p *= 1 - lr*weight_decay`` before the
            update, and ``g = grad``.

Two variants reproduce the reference labs' mistaken Adams (``adam_lab000``,
``adam_lab001``), so that a study can measure how much a mistake explains.

Operations are ordered as in PyTorch's single-tensor CPU implementation
(``addcmul``: ``value * t1 * t2``; ``addcdiv``: ``value * t1 / t2``).

Constructors take every hyperparameter by keyword and have no defaults: the values live
in the presets of ``conf/optimizer/`` (PyTorch's defaults, plus the harness's learning
rates), and ``build_optimizer`` passes them on.

A stack of m networks (``src.engine.stacked``) has parameters of shape (m, P); its
numeric hyperparameters may then be (m, 1) arrays, one value per network. What decides
which buffers exist (momentum or weight decay on or off, Nesterov, AMSGrad, centered)
and the betas (whose powers are taken) must be the same for the whole stack. ``select``
keeps some of a stack's networks (their rows of every buffer and hyperparameter).
"""

from __future__ import annotations

import copy

import numpy as np


class Optimizer:
    """Base class: holds the buffers, the step count ``t`` and two scratch arrays, so
    that a step allocates nothing (each update writes its temporaries into them with the
    same operations, in the same order, as the expressions in the module docstring)."""

    def __init__(self, params: np.ndarray, grads: np.ndarray, *, lr: float, weight_decay: float):
        self.params = params
        self.grads = grads
        self.lr = lr
        self.weight_decay = weight_decay
        self.t = 0
        self._s1 = np.empty_like(params)
        self._s2 = np.empty_like(params)
        self._decayed = np.empty_like(params) if np.any(weight_decay) else None

    def _decayed_gradient(self) -> np.ndarray:
        """``grad + weight_decay * p`` (or ``grad`` itself without weight decay)."""
        if self._decayed is None:
            return self.grads
        np.multiply(self.params, self.weight_decay, out=self._decayed)
        np.add(self.grads, self._decayed, out=self._decayed)
        return self._decayed

    def step(self) -> None:
        self.t += 1
        self._update(self._decayed_gradient())

    def select(self, rows: np.ndarray, params: np.ndarray, grads: np.ndarray) -> Optimizer:
        """For a stack's optimizer (parameters (m, P)): the optimizer of the networks
        ``rows`` alone, updating ``params`` and ``grads`` (those networks' rows, e.g. of
        ``StackedMLP.subset``), with their rows of every state buffer and per-network
        hyperparameter ((m, ...) arrays) and the same step count, so that each goes on
        exactly as it would have in the whole stack."""
        twin = copy.copy(self)
        m = self.params.shape[0]
        for name, value in vars(self).items():
            if isinstance(value, np.ndarray) and value.ndim == 2 and value.shape[0] == m:
                setattr(twin, name, value[rows])
        twin.params, twin.grads = params, grads
        return twin

    def _update(self, g: np.ndarray) -> None:
        raise NotImplementedError


class SGD(Optimizer):
    """``torch.optim.SGD``: plain, heavy-ball momentum (with dampening) or Nesterov."""

    def __init__(self, params, grads, *, lr, momentum, dampening, nesterov, weight_decay):
        super().__init__(params, grads, lr=lr, weight_decay=weight_decay)
        if nesterov and (np.any(np.asarray(momentum) <= 0) or np.any(np.asarray(dampening) != 0)):
            raise ValueError("Nesterov momentum requires a momentum > 0 and zero dampening")
        self.momentum = momentum
        self.dampening = dampening
        self.nesterov = nesterov
        self.buffer = np.zeros_like(params) if np.any(momentum) else None

    def _update(self, g):
        s1, s2 = self._s1, self._s2
        if self.buffer is not None:
            if self.t == 1:
                self.buffer[...] = g
            else:
                self.buffer *= self.momentum
                np.multiply(g, 1 - self.dampening, out=s1)
                self.buffer += s1
            if self.nesterov:
                np.multiply(self.buffer, self.momentum, out=s1)
                g = np.add(g, s1, out=s1)
            else:
                g = self.buffer
        np.multiply(g, self.lr, out=s2)
        self.params -= s2


class Adagrad(Optimizer):
    """``torch.optim.Adagrad`` with learning-rate decay and an initial accumulator."""

    def __init__(self, params, grads, *, lr, lr_decay, weight_decay, initial_accumulator_value, eps):
        super().__init__(params, grads, lr=lr, weight_decay=weight_decay)
        self.lr_decay = lr_decay
        self.eps = eps
        self.sum = np.full_like(params, initial_accumulator_value)

    def _update(self, g):
        s1, s2 = self._s1, self._s2
        clr = self.lr / (1 + (self.t - 1) * self.lr_decay)
        np.multiply(g, g, out=s1)
        self.sum += s1
        std = np.sqrt(self.sum, out=s1)
        std += self.eps
        np.multiply(g, -clr, out=s2)
        s2 /= std
        self.params += s2


class RMSprop(Optimizer):
    """``torch.optim.RMSprop``, optionally centered and with momentum."""

    def __init__(self, params, grads, *, lr, alpha, eps, weight_decay, momentum, centered):
        super().__init__(params, grads, lr=lr, weight_decay=weight_decay)
        self.alpha = alpha
        self.eps = eps
        self.momentum = momentum
        self.centered = centered
        self.square_avg = np.zeros_like(params)
        self.grad_avg = np.zeros_like(params) if centered else None
        self.buffer = np.zeros_like(params) if np.any(np.asarray(momentum) > 0) else None

    def _update(self, g):
        s1, s2 = self._s1, self._s2
        self.square_avg *= self.alpha
        np.multiply(g, 1 - self.alpha, out=s1)
        s1 *= g
        self.square_avg += s1
        if self.centered:
            np.subtract(g, self.grad_avg, out=s1)
            s1 *= 1 - self.alpha
            self.grad_avg += s1
            np.multiply(self.grad_avg, self.grad_avg, out=s1)
            np.subtract(self.square_avg, s1, out=s1)
            avg = np.sqrt(s1, out=s1)
        else:
            avg = np.sqrt(self.square_avg, out=s1)
        avg += self.eps
        if self.buffer is not None:
            self.buffer *= self.momentum
            np.divide(g, avg, out=s2)
            self.buffer += s2
            np.multiply(self.buffer, self.lr, out=s2)
            self.params -= s2
        else:
            np.multiply(g, -self.lr, out=s2)
            s2 /= avg
            self.params += s2


class Adam(Optimizer):
    """``torch.optim.Adam`` (L2 weight decay added to the gradient), optionally AMSGrad."""

    def __init__(self, params, grads, *, lr, betas, eps, weight_decay, amsgrad):
        super().__init__(params, grads, lr=lr, weight_decay=weight_decay)
        self.beta1, self.beta2 = betas
        self.eps = eps
        self.amsgrad = amsgrad
        self.exp_avg = np.zeros_like(params)
        self.exp_avg_sq = np.zeros_like(params)
        self.max_exp_avg_sq = np.zeros_like(params) if amsgrad else None

    def _update(self, g):
        s1, s2 = self._s1, self._s2
        np.subtract(g, self.exp_avg, out=s1)
        s1 *= 1 - self.beta1
        self.exp_avg += s1
        self.exp_avg_sq *= self.beta2
        np.multiply(g, 1 - self.beta2, out=s1)
        s1 *= g
        self.exp_avg_sq += s1
        step_size = self.lr / (1 - self.beta1**self.t)
        bias_correction2_sqrt = (1 - self.beta2**self.t) ** 0.5
        second_moment = self.exp_avg_sq
        if self.amsgrad:
            np.maximum(self.max_exp_avg_sq, self.exp_avg_sq, out=self.max_exp_avg_sq)
            second_moment = self.max_exp_avg_sq
        denom = np.sqrt(second_moment, out=s1)
        denom /= bias_correction2_sqrt
        denom += self.eps
        np.multiply(self.exp_avg, -step_size, out=s2)
        s2 /= denom
        self.params += s2


class AdamW(Adam):
    """``torch.optim.AdamW``: Adam with decoupled weight decay."""

    def step(self) -> None:
        self.t += 1
        if np.any(self.weight_decay):
            self.params *= 1 - self.lr * self.weight_decay
        self._update(self.grads)


class LabAdamConstantCorrection(Adam):
    """Reference lab 000's Adam, kept to measure its mistake: the bias corrections divide
    by ``1 - beta`` instead of ``1 - beta**t``, and eps sits inside the square root:
    ``m = beta1*m + (1 - beta1)*g``; ``v = beta2*v + (1 - beta2)*g*g``;
    ``p -= lr * (m / (1 - beta1)) / sqrt(v / (1 - beta2) + eps)``."""

    def __init__(self, params, grads, *, lr, betas, eps, weight_decay, amsgrad):
        if amsgrad:
            raise ValueError("the reference lab's Adam has no AMSGrad")
        super().__init__(params, grads, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=False)

    def _update(self, g):
        self.exp_avg *= self.beta1
        self.exp_avg += (1 - self.beta1) * g
        self.exp_avg_sq *= self.beta2
        self.exp_avg_sq += (1 - self.beta2) * g * g
        denom = np.sqrt(self.exp_avg_sq / (1 - self.beta2) + self.eps)
        self.params -= self.lr * (self.exp_avg / (1 - self.beta1)) / denom


class LabAdamBeta1SecondMoment(LabAdamConstantCorrection):
    """Reference lab 001's Adam, kept to measure its mistake: the second moment decays
    with beta1 instead of beta2 (the corrections use the step count t, as in Adam):
    ``m = beta1*m + (1 - beta1)*g``; ``v = beta1*v + (1 - beta2)*g*g``;
    ``p -= lr * (m / (1 - beta1**t)) / (sqrt(v / (1 - beta2**t)) + eps)``."""

    def _update(self, g):
        self.exp_avg *= self.beta1
        self.exp_avg += (1 - self.beta1) * g
        self.exp_avg_sq *= self.beta1
        self.exp_avg_sq += (1 - self.beta2) * g * g
        denom = np.sqrt(self.exp_avg_sq / (1 - self.beta2**self.t)) + self.eps
        self.params -= self.lr * (self.exp_avg / (1 - self.beta1**self.t)) / denom


OPTIMIZERS = {
    "sgd": SGD,
    "adagrad": Adagrad,
    "rmsprop": RMSprop,
    "adam": Adam,
    "adamw": AdamW,
    "adam_lab000": LabAdamConstantCorrection,
    "adam_lab001": LabAdamBeta1SecondMoment,
}


def build_optimizer(kind: str, params: np.ndarray, grads: np.ndarray, **hyperparameters) -> Optimizer:
    """Instantiate optimizer ``kind`` (a key of ``OPTIMIZERS``) over the flat buffers."""
    if kind not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {kind!r}; expected one of {sorted(OPTIMIZERS)}")
    return OPTIMIZERS[kind](params, grads, **hyperparameters)
