"""The studies: one per preset in ``conf/experiment/``, read from the preset itself.

A preset names its MLflow experiment (``tracking.experiment``), its question and
outcome (``study.question``, ``study.outcome``) and the sweep (``hydra.sweeper.params``).
``load_study(name)`` turns ``conf/experiment/NAME.yaml`` into a ``Study``: the swept
datasets are its focus, every other swept key except the seed is a factor (a swept
group such as ``optimizer`` is the column ``optimizer.name``). A new preset is a new
study with no Python edit.

The outcome is an epoch count (``epochs_to_threshold``: how fast the loss falls below
``trainer.loss_threshold`` and stays there; ``epochs_to_full_accuracy``: how fast every
training point is classified correctly) or ``final_accuracy`` (held out when the runs
have a test split). An epoch count is right-censored data (``src.analysis.survival``):
every run counts, one that never got there as infinite, and a setting without a median
says whether its runs were still falling or on a plateau. A preset on
``hydra/sweeper=tuned`` (``src.runs.tuning``) is judged on its report runs, each setting
at its chosen value. ``summary``, ``headline``, ``answer`` and ``conclusion`` compute the
numbers shown in the notebooks and in the README's Studies table.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from omegaconf import OmegaConf

from src.analysis.survival import event_times, median_with_ci
from src.runs.config import CONF_DIR
from src.runs.contract import (
    EPOCHS_RUN,
    EPOCHS_TO_THRESHOLD,
    EXAMPLES_TO_THRESHOLD,
    FINAL_TEST_ACCURACY,
    FINAL_TRAIN_ACCURACY,
    FINAL_TRAIN_LOSS,
    FIRST_BELOW_THRESHOLD,
    PARAM_PHASE,
    PARAM_SEED,
    TAIL_LOSS_DROP,
    UPDATES_RUN,
    UPDATES_TO_THRESHOLD,
)
from src.runs.tracking import param_name

EXPERIMENT_DIR = CONF_DIR / "experiment"
#: Swept keys that are not factors: the dataset (the focus) and the seed (replicates).
NOT_FACTORS = ("dataset", PARAM_SEED)
#: A run that did not reach the event has plateaued when its loss fell by less than this
#: fraction over the last tenth of its epochs (``tail_loss_drop``); otherwise it was still
#: falling when the budget ran out. Neither is called "never": a plateau can end later.
PLATEAU_DROP = 0.01
#: The column of a run's phase in a tuned study (``tune`` or ``report``).
PHASE = PARAM_PHASE
#: The event columns of the other axes (the epoch axis uses the study's outcome).
AXIS_COLUMNS = {"updates": UPDATES_TO_THRESHOLD, "examples": EXAMPLES_TO_THRESHOLD}


@dataclass(frozen=True)
class Study:
    name: str
    experiment: str
    factors: tuple[str, ...]  # load_runs columns, e.g. ("optimizer.name",)
    outcome: str  # one of src.runs.contract.OUTCOMES
    focus: tuple[str, ...]  # dataset names, in the order the preset sweeps them
    question: str
    scale_by: str | None = None  # a numeric factor reported times the epochs (``study.scale_by``)
    tuned: str | None = None  # the key ``hydra/sweeper=tuned`` chooses per setting (``src.runs.tuning``)

    @property
    def command(self) -> str:
        return f"python -m src.train -m +experiment={self.name}"

    @property
    def notebook(self) -> str:
        return f"notebooks/{self.name}.ipynb"

    @property
    def factor(self) -> str | tuple[str, ...]:
        """The factor column, or the tuple of them when the study crosses several."""
        return self.factors[0] if len(self.factors) == 1 else self.factors

    @property
    def event(self) -> str | None:
        """The epoch-count column the study is judged on, or None (final accuracy)."""
        return self.outcome if self.outcome.startswith("epochs_to_") else None

    def axes(self, runs: pd.DataFrame) -> list[str]:
        """``epochs``, plus ``updates`` and ``examples`` when the runs' batch schedules
        differ (an epoch of per-sample updates is not an epoch of one full-batch update)."""
        if self.event != EPOCHS_TO_THRESHOLD or UPDATES_RUN not in runs:
            return ["epochs"]
        per_epoch = runs[UPDATES_RUN] / runs[EPOCHS_RUN].where(runs[EPOCHS_RUN] > 0)
        return ["epochs", "updates", "examples"] if per_epoch.dropna().nunique() > 1 else ["epochs"]

    def judged(self, runs: pd.DataFrame) -> pd.DataFrame:
        """The runs a study is judged on: for a tuned study the report runs (fresh seeds,
        each setting at its chosen value), otherwise all of them."""
        if self.tuned is None or PHASE not in runs:
            return runs
        return runs[runs[PHASE] == "report"].reset_index(drop=True)

    def tuning(self, runs: pd.DataFrame) -> pd.DataFrame:
        """A tuned study's tuning runs per dataset, setting and value of the tuned key:
        ``runs``, ``reached`` and the median outcome over the tuning seeds (never = inf),
        or the mean accuracy; ``chosen`` marks the value the report runs used."""
        if self.tuned is None or PHASE not in runs:
            return pd.DataFrame()
        tuning = runs[runs[PHASE] == "tune"]
        chosen = self.judged(runs).groupby(["dataset.name", *self.factors])[self.tuned].first()
        rows = []
        for key, group in tuning.groupby(["dataset.name", *self.factors, self.tuned], sort=True):
            row = dict(zip(["dataset.name", *self.factors, self.tuned], key, strict=True))
            row["runs"] = len(group)
            if self.event is not None:
                times = event_times(group, self.event)
                row.update(reached=int(np.isfinite(times).sum()), median=median_with_ci(times)[0])
            else:
                row["mean_accuracy"] = float(group[accuracy_column(runs)].mean())
            row["chosen"] = chosen.get(key[:-1]) == key[-1]
            rows.append(row)
        return pd.DataFrame(rows)

    def summary(self, runs: pd.DataFrame) -> pd.DataFrame:
        """Per dataset and factor level, every run counted: ``runs``; for an epoch-count
        outcome how many ``reached`` it (stably), were ``unstable`` (dipped below the
        threshold, ended above), ``diverged``, and of the others how many ``plateaued``
        (``tail_loss_drop`` below ``PLATEAU_DROP``) or were ``still_falling`` when the
        budget ran out; the median with its 95% interval (``src.analysis.survival``:
        never = inf) per axis (``median_epochs``, ``epochs_ci_low``, ``epochs_ci_high``,
        and the same for updates and examples when batch schedules differ); the budget;
        the median final loss; the median and mean final accuracy."""
        runs = self.judged(runs)
        accuracy = accuracy_column(runs)
        rows = []
        for key, group in runs.groupby(["dataset.name", *self.factors], dropna=False, sort=True):
            row = dict(zip(["dataset.name", *self.factors], key, strict=True))
            if self.tuned is not None:
                row[self.tuned] = group[self.tuned].iloc[0]
            row["runs"] = len(group)
            if self.event is not None:
                reached = group[self.event].notna() if self.event in group else pd.Series(False, group.index)
                dipped = group[FIRST_BELOW_THRESHOLD].notna() if FIRST_BELOW_THRESHOLD in group else reached
                others = group[~reached & ~group["diverged"]]
                flat = pd.to_numeric(others.get(TAIL_LOSS_DROP, pd.Series(np.nan, others.index))).abs() < PLATEAU_DROP
                row.update(
                    reached=int(reached.sum()),
                    unstable=int((dipped & ~reached & ~group["diverged"]).sum())
                    if self.event == EPOCHS_TO_THRESHOLD
                    else 0,
                    diverged=int(group["diverged"].sum()),
                    plateaued=int(flat.sum()),
                    still_falling=int((~flat).sum()),
                )
                for axis in self.axes(runs):
                    column = self.event if axis == "epochs" else AXIS_COLUMNS[axis]
                    median, low, high = median_with_ci(event_times(group, column))
                    row.update({f"median_{axis}": median, f"{axis}_ci_low": low, f"{axis}_ci_high": high})
                row["budget"] = int(pd.to_numeric(group["trainer.epochs"]).max())
            else:
                row["diverged"] = int(group["diverged"].sum())
            row["median_final_loss"] = float(group[FINAL_TRAIN_LOSS].median())
            row["median_accuracy"] = float(group[accuracy].median())
            row["mean_accuracy"] = float(group[accuracy].mean())
            row["sd_accuracy"] = float(group[accuracy].std())
            rows.append(row)
        return pd.DataFrame(rows)

    def _setting(self, row: pd.Series) -> str:
        """A summary row's setting, with its chosen value in a tuned study (``adam (lr 0.01)``)."""
        text = _level(row, self.factors)
        if self.tuned is not None:
            text += f" ({self.tuned.rsplit('.', 1)[-1]} {level_label(row[self.tuned])})"
        return text

    def ranked(self, runs: pd.DataFrame, dataset: str) -> pd.DataFrame:
        """The summary rows of ``dataset``, best first: by median (never = inf), then by
        how many reached, then by the median final loss; or by mean accuracy."""
        table = self.summary(runs)
        rows = table[table["dataset.name"] == dataset]
        if self.event is None:
            return rows.sort_values("mean_accuracy", ascending=False, kind="stable")
        order = rows.assign(_reached=-rows["reached"])
        return order.sort_values(["median_epochs", "_reached", "median_final_loss"], kind="stable").drop(
            columns="_reached"
        )

    def headline(self, runs: pd.DataFrame) -> str:
        """One sentence per focus dataset, every setting ranked by the outcome with its
        reached/total count first."""
        sentences = []
        for dataset in self.focus:
            rows = self.ranked(runs, dataset)
            if rows.empty:
                continue
            if self.event is not None:
                target = "loss threshold" if self.event == EPOCHS_TO_THRESHOLD else "100% train accuracy"
                for axis in self.axes(runs):
                    parts = [f"{self._setting(r)} {_outcome(r, axis)}" for _, r in rows.iterrows()]
                    sentences.append(
                        f"{dataset}: reached/runs and median {axis} to {target} [95% CI] — " + ", ".join(parts)
                    )
                if self.scale_by:
                    sentences.append(self.scaled(runs, dataset))
            elif len(self.factors) > 1:
                best, worst = rows.iloc[0], rows.iloc[-1]
                sentences.append(
                    f"{dataset}: best {_level(best, self.factors)} {best['mean_accuracy']:.3f} mean "
                    f"{accuracy_label(runs)}, worst {_level(worst, self.factors)} {worst['mean_accuracy']:.3f} "
                    f"({int(rows['runs'].sum())} runs)"
                )
            else:
                parts = [
                    f"{_level(r, self.factors)} {r['mean_accuracy']:.3f} ({r['runs']} runs)" for _, r in rows.iterrows()
                ]
                sentences.append(f"{dataset}: mean {accuracy_label(runs)} — " + ", ".join(parts))
        return "; ".join(sentences)

    def scaled(self, runs: pd.DataFrame, dataset: str) -> str:
        """For ``scale_by`` (e.g. the learning rate): the factor times the median epochs per
        level that has a median, their median as the constant, and from it the epochs the
        smaller levels without a median would need. An extrapolation, stated as one."""
        rows = self.ranked(runs, dataset)
        key = self.scale_by
        finite = rows[np.isfinite(rows["median_epochs"])]
        if key is None or finite.empty:
            return ""
        products = finite[key] * finite["median_epochs"]
        constant = float(np.median(products))
        parts = [f"{_level(r, self.factors)} {p:.0f}" for (_, r), p in zip(finite.iterrows(), products, strict=True)]
        text = f"{dataset}: {key.rsplit('.', 1)[-1]} × median epochs — {', '.join(parts)} (median {constant:.0f})"
        # only below the smallest level with a median: above the largest, training is unstable
        missing = rows[~np.isfinite(rows["median_epochs"])]
        slower = missing[missing[key] < finite[key].min()].sort_values(key, ascending=False)
        guesses = [f"{_level(r, self.factors)} about {constant / r[key]:.3g}" for _, r in slower.iterrows()]
        if guesses:
            text += (
                "; at that product the smaller settings without a median would need " + ", ".join(guesses) + " epochs"
            )
        return text

    def answer(self, runs: pd.DataFrame) -> str:
        """One sentence per focus dataset answering the question with its uncertainty:
        the best setting, the runner-up and the last, e.g. "On xor, reaching the loss
        threshold takes adam 108 epochs (median, 95% CI 98–121, 10/10 seeds), against ..."."""
        sentences = []
        for dataset in self.focus:
            rows = self.ranked(runs, dataset)
            if rows.empty:
                continue
            picks = [rows.iloc[i] for i in sorted({0, min(1, len(rows) - 1), len(rows) - 1})]
            if self.event is not None:
                target = "the loss threshold" if self.event == EPOCHS_TO_THRESHOLD else "100% train accuracy"
                parts = [f"{self._setting(r)} {_answer_part(r)}" for r in picks]
                sentence = f"On {dataset}, reaching {target} takes {parts[0]}"
            else:
                parts = [f"{self._setting(r)} {_mean_with_ci(r)}" for r in picks]
                sentence = f"On {dataset}, the best mean {accuracy_label(runs)} is {parts[0]}"
            if len(parts) > 1:
                sentence += f", against {parts[1]}"
            if len(parts) > 2:
                sentence += f"; last: {parts[2]}"
            sentences.append(sentence + ".")
        return " ".join(sentences)

    def conclusion(self, runs: pd.DataFrame) -> str:
        """Markdown: the question, the answer, the headline and the summary table, all
        computed from ``runs``."""
        table = self.summary(runs)
        source = f"From {len(runs)} runs of this sweep"
        if self.tuned is not None:
            reported = len(self.judged(runs))
            source += (
                f" ({len(runs) - reported} choosing each setting's {self.tuned} on tuning seeds, "
                f"{reported} reporting it on fresh seeds)"
            )
        lines = [f"**{self.question}** {source}:", "", self.answer(runs), ""]
        lines += [f"- {sentence}" for sentence in self.headline(runs).split("; ") if sentence]
        return "\n".join(lines + ["", markdown_table(table)])


def markdown_table(frame: pd.DataFrame) -> str:
    """A GitHub-flavoured Markdown table of ``frame`` (floats to 3 significant digits)."""

    def cell(value) -> str:
        if isinstance(value, float):
            return "" if pd.isna(value) else f"{value:.3g}"
        return str(value)

    header = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "| " + " | ".join("---" for _ in frame.columns) + " |"
    body = ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *body])


def accuracy_column(runs: pd.DataFrame) -> str:
    """``final_test_accuracy`` when the runs have a test split, else ``final_train_accuracy``."""
    if FINAL_TEST_ACCURACY in runs and runs[FINAL_TEST_ACCURACY].notna().any():
        return FINAL_TEST_ACCURACY
    return FINAL_TRAIN_ACCURACY


def accuracy_label(runs: pd.DataFrame) -> str:
    return "test accuracy" if accuracy_column(runs) == FINAL_TEST_ACCURACY else "train accuracy"


def level_label(value) -> str:
    """How a factor level is written: integral numbers without ``.0``; a missing value is
    the only null a study sweeps, ``trainer.batch_size=null``, i.e. ``full`` batch."""
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return "full"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _level(row: pd.Series, factors: tuple[str, ...]) -> str:
    """A setting as the reader sees it: names stand alone (``adam``, ``tanh``), numbers
    carry their key (``lr=0.1``, ``width=8``, ``batch_size=full``); several factors are
    joined with ``×``."""
    if len(factors) > 1:
        return "×".join(level_label(row[factor]) for factor in factors)
    label = level_label(row[factors[0]])
    if isinstance(row[factors[0]], str):
        return label
    return f"{factors[0].rsplit('.', 1)[-1]}={label}"


def _outcome(row: pd.Series, axis: str = "epochs") -> str:
    """``10/10 108 [98–121]``, ``6/10 97102 [78594–>100000 epochs] (2 still falling, 2
    plateaued)``, ``0/10 within 100000 epochs: plateau at loss 0.249`` or ``0/10 within
    100000 epochs (10 still falling)``. A plateau is where the loss stopped falling, not a
    proof that it never would: a slow setting can sit on one for most of its budget."""
    runs, reached, budget = int(row["runs"]), int(row["reached"]), int(row["budget"])
    median, low, high = row[f"median_{axis}"], row[f"{axis}_ci_low"], row[f"{axis}_ci_high"]
    text = f"{reached}/{runs} "
    notes = [f"{int(row[key])} {key}" for key in ("unstable", "diverged") if row[key]]
    if np.isfinite(median):
        text += f"{median:.0f}"
        if not np.isnan(low):
            text += f" [{low:.0f}–{f'{high:.0f}' if np.isfinite(high) else f'>{budget} epochs'}]"
    else:
        text += f"within {budget} epochs"
        if row["plateaued"] == runs - reached and not notes:
            return text + f": plateau at loss {row['median_final_loss']:.3g}"
    notes += [f"{int(row[key])} {key.replace('_', ' ')}" for key in ("still_falling", "plateaued") if row[key]]
    return text + (f" ({', '.join(notes)})" if notes else "")


def _answer_part(row: pd.Series) -> str:
    """``108 epochs (median, 95% CI 98–121, 10/10 seeds)``, or why there is no median."""
    runs, reached = int(row["runs"]), int(row["reached"])
    median, low, high = row["median_epochs"], row["epochs_ci_low"], row["epochs_ci_high"]
    if not np.isfinite(median):
        return f"more than {int(row['budget'])} epochs in most seeds ({reached}/{runs} got there)"
    interval = ""
    if not np.isnan(low):
        interval = f", 95% CI {low:.0f}–{f'{high:.0f}' if np.isfinite(high) else 'beyond the budget'}"
    return f"{median:.0f} epochs (median{interval}, {reached}/{runs} seeds)"


def _mean_with_ci(row: pd.Series) -> str:
    """``0.957 ± 0.012 (95% CI of the mean over 10 runs)``."""
    n = int(row["runs"])
    if n < 2 or np.isnan(row["sd_accuracy"]):
        return f"{row['mean_accuracy']:.3f} ({n} run)"
    return f"{row['mean_accuracy']:.3f} ± {1.96 * row['sd_accuracy'] / np.sqrt(n):.3f} (95% CI of the mean, {n} runs)"


def _dataset_name(option: str) -> str:
    """The ``dataset.name`` of a dataset option (``blobs3`` -> ``blobs``)."""
    return OmegaConf.load(CONF_DIR / "dataset" / f"{option}.yaml").name


def load_study(name: str) -> Study:
    """The study of preset ``conf/experiment/NAME.yaml``."""
    path = EXPERIMENT_DIR / f"{name}.yaml"
    if not path.is_file():
        raise ValueError(f"no study preset {path}; presets: {sorted(p.stem for p in EXPERIMENT_DIR.glob('*.yaml'))}")
    preset = OmegaConf.load(path)
    swept = {str(key): str(value) for key, value in preset.hydra.sweeper.params.items()}
    datasets = swept.get("dataset", "").split(",") if "dataset" in swept else []
    return Study(
        name=name,
        experiment=preset.tracking.experiment,
        factors=tuple(param_name(key) for key in swept if key not in NOT_FACTORS),
        outcome=preset.study.outcome,
        focus=tuple(_dataset_name(option.strip()) for option in datasets),
        question=preset.study.question,
        scale_by=preset.study.get("scale_by"),
        tuned=preset.hydra.sweeper.get("tune_key"),
    )


def all_studies() -> dict[str, Study]:
    """Every study preset, by name (alphabetical)."""
    return {path.stem: load_study(path.stem) for path in sorted(EXPERIMENT_DIR.glob("*.yaml"))}
