"""The reference labs' numeric claims, checked one by one against the harness.

Each claim of ``conf/claims.yaml`` names the lab preset that reproduces it
(``conf/experiment/labs/``), the runs of that preset's latest sweep it is judged on
(``where``: column values of ``load_runs``), the lab's number and the measure compared.
``judge`` puts the lab's number beside the harness's median and range over the seeds:

* an epoch count ``[low, high]`` (the lab's number widened by how it was counted, e.g.
  "in thousands") *agrees* when it overlaps the range of the seeds that got there, is *of
  the same order* when it lies within a factor of 3 of the median (a run that never got
  there counting as infinite), and *disagrees* otherwise;
* "never within N" agrees when at least half the seeds did not get there within N epochs;
* a final loss or accuracy agrees when it lies within the seeds' range, is of the same
  order within a factor of 3 of the median, and disagrees otherwise;
* a claim without a preset is *not reproducible* as stated; its note says why.

``claims_table`` is the README's claims table (``python -m src.analysis.report``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import yaml
from omegaconf import OmegaConf

from src.analysis.loaders import load_runs
from src.analysis.survival import event_times, median_with_ci
from src.runs.config import CONF_DIR

CLAIMS_FILE = CONF_DIR / "claims.yaml"
#: Within this factor of the harness's median, a lab's number is "of the same order".
SAME_ORDER = 3.0


@dataclass(frozen=True)
class Claim:
    id: str
    lab: str
    claim: str
    preset: str | None  # e.g. labs/lab001_learning_rates; None: not reproducible (see note)
    where: dict | None = field(default=None, hash=False)
    lab_value: float | list | str | None = field(default=None, hash=False)
    measure: str = "epochs_to_threshold"
    note: str = ""

    @property
    def experiment(self) -> str:
        return OmegaConf.load(CONF_DIR / "experiment" / f"{self.preset}.yaml").tracking.experiment

    @property
    def command(self) -> str:
        return f"python -m src.train -m +experiment={self.preset}"

    @property
    def lab_text(self) -> str:
        value = self.lab_value
        if value is None:
            return "—"
        if isinstance(value, list):
            return f"{value[0]:g}" if value[0] == value[1] else f"{value[0]:g}–{value[1]:g}"
        return str(value)


def load_claims() -> list[Claim]:
    """Every claim of ``conf/claims.yaml``, in file order."""
    return [Claim(**entry) for entry in yaml.safe_load(CLAIMS_FILE.read_text())]


def select(runs: pd.DataFrame, where: dict) -> pd.DataFrame:
    """The rows of ``runs`` whose columns equal ``where`` (numbers compared as numbers)."""
    mask = pd.Series(True, index=runs.index)
    for column, value in where.items():
        if column not in runs:
            return runs.iloc[0:0]
        if isinstance(value, (int, float)):
            mask &= np.isclose(pd.to_numeric(runs[column], errors="coerce"), value)
        else:
            mask &= runs[column] == value
    return runs[mask]


def judge(claim: Claim, runs: pd.DataFrame) -> dict[str, str]:
    """``{"harness": ..., "verdict": ...}`` for ``claim`` on the runs of its preset."""
    if claim.preset is None:
        return {"harness": "—", "verdict": "not reproducible"}
    selected = select(runs, claim.where)
    n = len(selected)
    if n == 0:
        return {"harness": "not run yet", "verdict": "—"}
    if claim.measure.startswith("epochs_to_"):
        times = event_times(selected, claim.measure)
        arrived = times[np.isfinite(times)]
        median = median_with_ci(times)[0]
        low, high = float(times.min()), float(times.max())
        spread = f"{_count(low)}–{_count(high)}" if low != high else _count(low)
        harness = f"{_count(median)} [{spread}], {len(arrived)}/{n} seeds got there"
        if not len(arrived):
            harness = f"not reached, 0/{n} seeds got there"
        if isinstance(claim.lab_value, str):  # "never within N"
            budget = float(claim.lab_value.rsplit(" ", 1)[-1])
            return {"harness": harness, "verdict": "agrees" if median > budget else "disagrees"}
        if not len(arrived):
            return {"harness": harness, "verdict": "disagrees"}
        lab_low, lab_high = map(float, claim.lab_value)
        verdict = _verdict(lab_low, lab_high, float(arrived.min()), float(arrived.max()), median)
        return {"harness": harness, "verdict": verdict}
    values = pd.to_numeric(selected[claim.measure], errors="coerce").to_numpy(dtype=float)
    median = float(np.median(values))
    harness = f"{median:.3g} [{values.min():.3g}–{values.max():.3g}], {n} seeds"
    lab = float(claim.lab_value)
    return {"harness": harness, "verdict": _verdict(lab, lab, float(values.min()), float(values.max()), median)}


def _verdict(lab_low: float, lab_high: float, low: float, high: float, median: float) -> str:
    if lab_low <= high and low <= lab_high:
        return "agrees"
    if (
        math.isfinite(median)
        and median > 0
        and lab_high / median <= SAME_ORDER
        and median / max(lab_low, 1e-300) <= SAME_ORDER
    ):
        return "same order"
    return "disagrees"


def _count(value: float) -> str:
    return f"{value:.0f}" if math.isfinite(value) else "not reached"


def claims_table(tracking_uri: str | None = None) -> str:
    """Markdown: per claim, the lab's number, the harness's median [range] over the seeds,
    the verdict and the note; claims whose preset has not been run say so."""
    lines = [
        "| lab | claim | lab's number | harness: median [range] | verdict | why |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    loaded: dict[str, pd.DataFrame] = {}
    for claim in load_claims():
        if claim.preset is not None and claim.preset not in loaded:
            try:
                loaded[claim.preset] = load_runs(claim.experiment, tracking_uri=tracking_uri)
            except ValueError:
                loaded[claim.preset] = pd.DataFrame()
        result = judge(claim, loaded.get(claim.preset, pd.DataFrame()))
        lines.append(
            f"| {claim.lab} | {claim.claim} | {claim.lab_text} | {result['harness']} | {result['verdict']} "
            f"| {claim.note} |"
        )
    return "\n".join(lines)
