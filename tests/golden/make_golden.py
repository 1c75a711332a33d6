"""Generate the PyTorch reference data that ``tests/engine/test_pytorch_reference.py`` compares against.

PyTorch is an optional tool here, never a dependency of the package or of CI: run this
script in any environment that has ``torch`` (CPU) besides NumPy and this project's
dependencies, from the repository root (``PYTHONPATH=.`` makes ``src`` importable without
installing the project there)::

    python -m venv /tmp/torch-env
    /tmp/torch-env/bin/pip install torch numpy scikit-learn omegaconf pyyaml
    PYTHONPATH=. /tmp/torch-env/bin/python tests/golden/make_golden.py

It writes, next to itself:

* ``optimizer_steps.npz``: for each optimizer case, a start vector ``p0`` (37 float64
  values), a sequence of 20 gradients and the parameters PyTorch's optimizer holds after
  each step (single-tensor CPU implementation, ``foreach=False``);
* ``trajectories.npz``: full-batch training of a 2-8-8-k network on XOR and on moons for
  every loss and every optimizer preset in ``conf/optimizer``, in float64 and float32,
  from the same injected initial weights: the loss before each of 30 steps and the final
  weights, in this project's layout (``W{i}`` of shape (fan_in, fan_out));
* ``golden.json``: the cases (optimizer class and keyword arguments, network, loss) and
  the versions of PyTorch and NumPy that produced the numbers.
"""

from __future__ import annotations

import json
import platform
from pathlib import Path

import numpy as np
import torch
import yaml

from src.runs.config import OPTIMIZERS, MoonsDataset
from src.runs.datasets import generate_xor_easy, load_dataset

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]

N_PARAMS, N_STEPS, N_EPOCHS = 37, 20, 30
TORCH_CLASSES = {
    "sgd": torch.optim.SGD,
    "adagrad": torch.optim.Adagrad,
    "rmsprop": torch.optim.RMSprop,
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
}

OPTIMIZER_CASES = {
    "sgd": ("sgd", dict(lr=0.1)),
    "sgd_weight_decay": ("sgd", dict(lr=0.1, weight_decay=0.01)),
    "momentum": ("sgd", dict(lr=0.05, momentum=0.9)),
    "momentum_dampening": ("sgd", dict(lr=0.05, momentum=0.9, dampening=0.3, weight_decay=1e-3)),
    "nesterov": ("sgd", dict(lr=0.05, momentum=0.9, nesterov=True)),
    "nesterov_weight_decay": ("sgd", dict(lr=0.05, momentum=0.8, nesterov=True, weight_decay=0.01)),
    "adagrad": ("adagrad", dict(lr=0.1)),
    "adagrad_decay_accumulator": (
        "adagrad",
        dict(lr=0.1, lr_decay=0.05, weight_decay=0.01, initial_accumulator_value=0.1, eps=1e-8),
    ),
    "rmsprop": ("rmsprop", dict(lr=0.01)),
    "rmsprop_momentum": ("rmsprop", dict(lr=0.01, alpha=0.9, momentum=0.8)),
    "rmsprop_centered": ("rmsprop", dict(lr=0.01, centered=True)),
    "rmsprop_centered_momentum_decay": (
        "rmsprop",
        dict(lr=0.01, centered=True, momentum=0.5, weight_decay=0.01, eps=1e-6),
    ),
    "adam": ("adam", dict(lr=1e-3)),
    "adam_betas_decay": ("adam", dict(lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.01)),
    "adam_amsgrad": ("adam", dict(lr=0.01, amsgrad=True)),
    "adam_amsgrad_decay": ("adam", dict(lr=0.01, amsgrad=True, weight_decay=0.1)),
    "adamw": ("adamw", dict(lr=1e-3)),
    "adamw_amsgrad": ("adamw", dict(lr=0.01, weight_decay=0.1, amsgrad=True)),
}


def preset_optimizers() -> dict[str, tuple[str, dict]]:
    """The presets of conf/optimizer as (kind, keyword arguments)."""
    presets = {}
    for path in sorted((REPO / "conf" / "optimizer").glob("*.yaml")):
        hyper = yaml.safe_load(path.read_text())
        name = hyper.pop("name")
        if "betas" in hyper:
            hyper["betas"] = tuple(hyper["betas"])
        presets[name] = (OPTIMIZERS[name][1], hyper)
    return presets


def make_optimizer_steps(cases: dict) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(2024)
    arrays = {}
    for name, (kind, hyper) in cases.items():
        p0 = rng.normal(size=N_PARAMS)
        grads = rng.normal(size=(N_STEPS, N_PARAMS)) * 10.0 ** rng.integers(-3, 2, size=(N_STEPS, 1))
        param = torch.tensor(p0, dtype=torch.float64, requires_grad=True)
        optimizer = TORCH_CLASSES[kind]([param], foreach=False, **hyper)
        trajectory = []
        for g in grads:
            param.grad = torch.tensor(g, dtype=torch.float64)
            optimizer.step()
            trajectory.append(param.detach().numpy().copy())
        arrays[f"{name}/p0"] = p0
        arrays[f"{name}/grads"] = grads
        arrays[f"{name}/params"] = np.array(trajectory)
    return arrays


def datasets() -> dict[str, tuple[np.ndarray, np.ndarray, str]]:
    """name -> (x, labels, hidden activation)."""
    x_xor, y_xor = generate_xor_easy(11)
    moons = load_dataset(
        MoonsDataset(name="moons", test_fraction=0.0, n_samples=100, noise=0.2), np.random.default_rng(3)
    )
    return {"xor": (x_xor, y_xor, "tanh"), "moons": (moons.x_train, moons.y_train, "relu")}


def initial_weights(sizes: list[int], rng: np.random.Generator) -> dict[str, np.ndarray]:
    weights = {}
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        limit = np.sqrt(6.0 / (fan_in + fan_out))
        weights[f"W{i}"] = rng.uniform(-limit, limit, (fan_in, fan_out))
        weights[f"b{i}"] = rng.uniform(-0.1, 0.1, fan_out)
    return weights


def torch_trajectory(x, labels, hidden, loss_name, kind, hyper, weights, sizes, dtype):
    act = {"tanh": torch.nn.Tanh, "relu": torch.nn.ReLU}[hidden]
    layers = []
    for i in range(len(sizes) - 1):
        linear = torch.nn.Linear(sizes[i], sizes[i + 1]).to(dtype)
        with torch.no_grad():
            linear.weight.copy_(torch.tensor(weights[f"W{i}"].T, dtype=dtype))
            linear.bias.copy_(torch.tensor(weights[f"b{i}"], dtype=dtype))
        layers += [linear, act()] if i < len(sizes) - 2 else [linear]
    model = torch.nn.Sequential(*layers)
    xt = torch.tensor(x, dtype=dtype)
    if loss_name == "cross_entropy":
        target, criterion = torch.tensor(labels, dtype=torch.long), torch.nn.CrossEntropyLoss()
    else:
        target = torch.tensor(labels.reshape(-1, 1), dtype=dtype)
        criterion = torch.nn.BCEWithLogitsLoss() if loss_name == "bce" else torch.nn.MSELoss()
    optimizer = TORCH_CLASSES[kind](model.parameters(), foreach=False, **hyper)
    losses = []
    for _ in range(N_EPOCHS):
        optimizer.zero_grad()
        z = model(xt)
        loss = criterion(torch.sigmoid(z), target) if loss_name == "mse" else criterion(z, target)
        loss.backward()
        losses.append(loss.item())
        optimizer.step()
    final = {}
    linears = [m for m in model if isinstance(m, torch.nn.Linear)]
    for i, linear in enumerate(linears):
        final[f"W{i}"] = linear.weight.detach().numpy().T.astype(np.float64)
        final[f"b{i}"] = linear.bias.detach().numpy().astype(np.float64)
    return np.array(losses), np.concatenate([final[k].ravel() for k in _layout_keys(len(linears))])


def _layout_keys(n_layers: int) -> list[str]:
    return [key for i in range(n_layers) for key in (f"W{i}", f"b{i}")]


def make_trajectories(presets: dict) -> tuple[dict[str, np.ndarray], list[dict]]:
    arrays, cases = {}, []
    rng = np.random.default_rng(7)
    for data_name, (x, labels, hidden) in datasets().items():
        arrays[f"data/{data_name}/x"], arrays[f"data/{data_name}/labels"] = x, labels
        for loss_name in ("mse", "bce", "cross_entropy"):
            sizes = [2, 8, 8, 2 if loss_name == "cross_entropy" else 1]
            weights = initial_weights(sizes, rng)
            init_key = f"init/{data_name}/{loss_name}"
            arrays[init_key] = np.concatenate([weights[k].ravel() for k in _layout_keys(len(sizes) - 1)])
            for preset, (kind, hyper) in presets.items():
                for dtype_name, dtype in (("float64", torch.float64), ("float32", torch.float32)):
                    name = f"{data_name}/{loss_name}/{preset}/{dtype_name}"
                    losses, final = torch_trajectory(x, labels, hidden, loss_name, kind, hyper, weights, sizes, dtype)
                    arrays[f"{name}/losses"], arrays[f"{name}/final"] = losses, final
                    cases.append(
                        dict(
                            name=name,
                            data=data_name,
                            loss=loss_name,
                            hidden=hidden,
                            sizes=sizes,
                            optimizer=preset,
                            kind=kind,
                            hyper=hyper,
                            dtype=dtype_name,
                            init=init_key,
                        )
                    )
    return arrays, cases


def main() -> None:
    torch.set_num_threads(1)
    presets = preset_optimizers()
    step_cases = {**OPTIMIZER_CASES, **{f"preset_{k}": v for k, v in presets.items()}}
    np.savez_compressed(HERE / "optimizer_steps.npz", **make_optimizer_steps(step_cases))
    arrays, trajectory_cases = make_trajectories(presets)
    np.savez_compressed(HERE / "trajectories.npz", **arrays)
    meta = {
        "torch_version": torch.__version__,
        "numpy_version": np.__version__,
        "python_version": platform.python_version(),
        "n_epochs": N_EPOCHS,
        "optimizer_cases": {name: {"kind": kind, "hyper": hyper} for name, (kind, hyper) in step_cases.items()},
        "trajectory_cases": trajectory_cases,
    }
    (HERE / "golden.json").write_text(json.dumps(meta, indent=1) + "\n")
    print(
        f"wrote {len(step_cases)} optimizer cases and {len(trajectory_cases)} trajectories "
        f"with torch {torch.__version__}"
    )


if __name__ == "__main__":
    main()
