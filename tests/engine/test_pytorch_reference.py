"""The engine against golden data produced by PyTorch (``tests/golden/make_golden.py``).

PyTorch itself is not needed: the reference numbers are committed. Tolerances:

* one optimizer step from PyTorch's previous parameters (our optimizer state carried
  along) lands within a few units in the last place (ULP) of the operands,
  ``max(|p_{t-1}|, |p_t|)``, in float64: PyTorch's vectorised kernels fuse some
  multiply-adds (``add(alpha=...)``), NumPy rounds the product and the sum separately;
* 20 free-running steps stay within 1e-14 of the parameters' scale;
* 30-step training trajectories (losses and final weights) agree to 1e-10 relative in
  float64 and to 1e-4 relative (float32 round-off accumulated over 30 steps) in float32.
"""

import json
from pathlib import Path

import numpy as np
import pytest

from src.engine.encoding import encode_targets
from src.engine.losses import get_loss
from src.engine.network import MLP
from src.engine.objective import Objective
from src.engine.optimizers import LabAdamBeta1SecondMoment, LabAdamConstantCorrection, build_optimizer
from src.runs.datasets import Dataset
from src.runs.loop import fit

GOLDEN = Path(__file__).resolve().parents[1] / "golden"
META = json.loads((GOLDEN / "golden.json").read_text())
STEPS = np.load(GOLDEN / "optimizer_steps.npz")
TRAJECTORIES = np.load(GOLDEN / "trajectories.npz")

MAX_STEP_ULP = 4
FREE_RUN_ATOL = 1e-14
TRAJECTORY_RTOL = {"float64": 1e-10, "float32": 1e-4}


def ulp_distance(actual: np.ndarray, expected: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """|actual - expected| in units of the last place of ``scale``."""
    return np.abs(actual - expected) / np.spacing(np.abs(scale))


def _hyper(hyper: dict) -> dict:
    return {k: tuple(v) if isinstance(v, list) else v for k, v in hyper.items()}


def test_golden_files_record_their_pytorch_version():
    assert META["torch_version"].startswith("2.")
    assert len(META["optimizer_cases"]) >= 20 and len(META["trajectory_cases"]) == 84


def _optimizer(name, optimizer_preset):
    """The golden case's optimizer; hyperparameters it does not set take the presets'
    values, which are PyTorch's defaults."""
    case = META["optimizer_cases"][name]
    params, grads = STEPS[f"{name}/p0"].copy(), np.zeros_like(STEPS[f"{name}/p0"])
    return build_optimizer(case["kind"], params, grads, **optimizer_preset(case["kind"], **_hyper(case["hyper"])))


@pytest.mark.parametrize("name", sorted(META["optimizer_cases"]))
def test_each_optimizer_step_matches_pytorch_to_a_few_ulp(name, optimizer_preset):
    optimizer = _optimizer(name, optimizer_preset)
    previous = STEPS[f"{name}/p0"]
    for t, (g, expected) in enumerate(zip(STEPS[f"{name}/grads"], STEPS[f"{name}/params"], strict=True), start=1):
        optimizer.params[...] = previous
        optimizer.grads[...] = g
        optimizer.step()
        scale = np.maximum(np.abs(previous), np.abs(expected))
        assert ulp_distance(optimizer.params, expected, scale).max() <= MAX_STEP_ULP, f"step {t}"
        previous = expected


@pytest.mark.parametrize("name", sorted(META["optimizer_cases"]))
def test_free_running_optimizer_matches_pytorch(name, optimizer_preset):
    optimizer = _optimizer(name, optimizer_preset)
    history = STEPS[f"{name}/params"]
    for g in STEPS[f"{name}/grads"]:
        optimizer.grads[...] = g
        optimizer.step()
    scale = max(np.abs(history).max(), np.abs(STEPS[f"{name}/p0"]).max())
    np.testing.assert_allclose(optimizer.params, history[-1], rtol=0, atol=FREE_RUN_ATOL * scale)


def _our_trajectory(case, optimizer_preset):
    dtype = np.dtype(case["dtype"])
    x = TRAJECTORIES[f"data/{case['data']}/x"]
    labels = TRAJECTORIES[f"data/{case['data']}/labels"]
    output = "softmax" if case["loss"] == "cross_entropy" else "sigmoid"
    net = MLP(
        case["sizes"],
        hidden_activation=case["hidden"],
        output_activation=output,
        bias=True,
        leaky_slope=0.01,
        dtype=dtype,
    )
    net.params[...] = TRAJECTORIES[case["init"]]
    hyper = optimizer_preset(case["kind"], **_hyper(case["hyper"]))
    optimizer = build_optimizer(case["kind"], net.params, net.grads, **hyper)
    data = Dataset(case["data"], 2, x, labels, x[:0], labels[:0])
    objective = Objective(get_loss(case["loss"]))
    initial, _ = objective.value(net, x.astype(dtype), encode_targets(labels, net.sizes[-1], dtype))
    result = fit(net, optimizer, objective, data, META["n_epochs"], np.random.default_rng(0))
    # The reference records the loss before each update, L(w_0) .. L(w_{E-1}); a history
    # holds the loss after each epoch's update, L(w_1) .. L(w_E).
    before_each_update = np.array([initial, *result.history["train_loss"][:-1]])
    return before_each_update, net.params.astype(np.float64)


@pytest.mark.parametrize("case", META["trajectory_cases"], ids=[c["name"] for c in META["trajectory_cases"]])
def test_training_trajectories_match_pytorch(case, optimizer_preset):
    losses, final = _our_trajectory(case, optimizer_preset)
    rtol = TRAJECTORY_RTOL[case["dtype"]]
    np.testing.assert_allclose(losses, TRAJECTORIES[f"{case['name']}/losses"], rtol=rtol, atol=0)
    expected = TRAJECTORIES[f"{case['name']}/final"]
    np.testing.assert_allclose(final, expected, rtol=rtol, atol=rtol * np.abs(expected).max())


@pytest.mark.parametrize("faulty", [LabAdamConstantCorrection, LabAdamBeta1SecondMoment])
def test_the_reference_labs_adam_mistakes_fail_the_comparison(faulty, optimizer_preset):
    p0 = STEPS["adam/p0"]
    optimizer = faulty(p0.copy(), np.zeros_like(p0), **optimizer_preset("adam", lr=1e-3))
    for g in STEPS["adam/grads"]:
        optimizer.grads[...] = g
        optimizer.step()
    deviation = np.abs(optimizer.params - STEPS["adam/params"][-1]).max()
    assert deviation > 1e3 * FREE_RUN_ATOL * np.abs(STEPS["adam/params"]).max()
