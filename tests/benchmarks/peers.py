"""The engine and its peers on one workload, for ``bench_harness.py``.

Workload: a 2-H-H-1 network, ReLU hidden units, sigmoid output with binary
cross-entropy, Adam (lr 0.01), full-batch training on N points, the loss and the
training accuracy computed every epoch. Each ``*_epochs(x, y, hidden, epochs, dtype)``
returns a callable that trains a fresh copy of that network for ``epochs`` epochs;
the benchmark times calls of it, interleaved. PyTorch and scikit-learn are optional:
their factories return None when the package is missing.
"""

from __future__ import annotations

import numpy as np

from src.engine.initializers import initialize
from src.engine.losses import get_loss
from src.engine.network import MLP
from src.engine.objective import Objective
from src.engine.optimizers import Adam
from src.runs.datasets import Dataset
from src.runs.loop import fit

LR, BETAS, EPS = 0.01, (0.9, 0.999), 1e-8


def project_epochs(x, y, hidden, epochs, dtype):
    """This project's engine and training loop (``src.runs.loop.fit``)."""
    data = Dataset("bench", 2, x, y, x[:0], y[:0])

    def run():
        net = MLP(
            [2, hidden, hidden, 1],
            hidden_activation="relu",
            output_activation="sigmoid",
            bias=True,
            leaky_slope=0.01,
            dtype=dtype,
        )
        initialize(net, "he", np.random.default_rng(0))
        optimizer = Adam(net.params, net.grads, lr=LR, betas=BETAS, eps=EPS, weight_decay=0.0, amsgrad=False)
        fit(net, optimizer, Objective(get_loss("bce")), data, epochs, np.random.default_rng(0))

    return run


def naive_numpy_epochs(x, y, hidden, epochs, dtype):
    """A straightforward hand-written NumPy loop: new arrays everywhere, one list of tensors."""
    x = x.astype(dtype)
    t = y.reshape(-1, 1).astype(dtype)
    n = len(y)

    def run():
        rng = np.random.default_rng(0)
        sizes = [2, hidden, hidden, 1]
        params = []
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:], strict=True):
            params += [rng.normal(0, np.sqrt(2 / fan_in), (fan_in, fan_out)).astype(dtype), np.zeros(fan_out, dtype)]
        m = [np.zeros_like(p) for p in params]
        v = [np.zeros_like(p) for p in params]
        for step in range(1, epochs + 1):
            w0, b0, w1, b1, w2, b2 = params
            z0 = x @ w0 + b0
            a0 = np.maximum(z0, 0)
            z1 = a0 @ w1 + b1
            a1 = np.maximum(z1, 0)
            z2 = a1 @ w2 + b2
            p = 1 / (1 + np.exp(-z2))
            loss = np.mean(np.maximum(z2, 0) - z2 * t + np.log1p(np.exp(-np.abs(z2))))
            accuracy = np.mean((p > 0.5) == (t > 0.5))
            d2 = (p - t) / n
            d1 = (d2 @ w2.T) * (z1 > 0)
            d0 = (d1 @ w1.T) * (z0 > 0)
            grads = [x.T @ d0, d0.sum(0), a0.T @ d1, d1.sum(0), a1.T @ d2, d2.sum(0)]
            for i, g in enumerate(grads):
                m[i] = BETAS[0] * m[i] + (1 - BETAS[0]) * g
                v[i] = BETAS[1] * v[i] + (1 - BETAS[1]) * g * g
                m_hat = m[i] / (1 - BETAS[0] ** step)
                v_hat = v[i] / (1 - BETAS[1] ** step)
                params[i] = params[i] - LR * m_hat / (np.sqrt(v_hat) + EPS)
            float(loss), float(accuracy)

    return run


def torch_epochs(x, y, hidden, epochs, dtype):
    """PyTorch (CPU): ``nn.Sequential``, ``BCEWithLogitsLoss``, ``torch.optim.Adam``."""
    try:
        import torch
    except ImportError:
        return None
    torch_dtype = torch.float64 if dtype == np.float64 else torch.float32
    xt = torch.as_tensor(x, dtype=torch_dtype)
    yt = torch.as_tensor(y.reshape(-1, 1), dtype=torch_dtype)

    def run():
        torch.manual_seed(0)
        net = torch.nn.Sequential(
            torch.nn.Linear(2, hidden),
            torch.nn.ReLU(),
            torch.nn.Linear(hidden, hidden),
            torch.nn.ReLU(),
            torch.nn.Linear(hidden, 1),
        ).to(torch_dtype)
        optimizer = torch.optim.Adam(net.parameters(), lr=LR, betas=BETAS, eps=EPS)
        loss_fn = torch.nn.BCEWithLogitsLoss()
        for _ in range(epochs):
            optimizer.zero_grad()
            logits = net(xt)
            loss = loss_fn(logits, yt)
            loss.backward()
            optimizer.step()
            loss.item(), ((logits > 0) == (yt > 0.5)).double().mean().item()

    return run


def sklearn_epochs(x, y, hidden, epochs, dtype):
    """scikit-learn's ``MLPClassifier`` (adam, full batch, no L2, no early stopping)."""
    try:
        import warnings

        from sklearn.exceptions import ConvergenceWarning
        from sklearn.neural_network import MLPClassifier
    except ImportError:
        return None
    if dtype != np.float64:
        return None

    def run():
        model = MLPClassifier(
            hidden_layer_sizes=(hidden, hidden),
            activation="relu",
            solver="adam",
            alpha=0.0,
            batch_size=len(y),
            learning_rate_init=LR,
            max_iter=epochs,
            tol=0.0,
            n_iter_no_change=epochs + 1,
            shuffle=False,
            random_state=0,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(x, y)

    return run


PEERS = {
    "project": project_epochs,
    "pytorch": torch_epochs,
    "sklearn": sklearn_epochs,
    "naive numpy": naive_numpy_epochs,
}
