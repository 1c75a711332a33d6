"""The studies: one per preset in ``conf/experiment/``, read from the preset itself.

A preset names its MLflow experiment (``tracking.experiment``), its question and
outcome (``study.question``, ``study.outcome``) and the sweep (``hydra.sweeper.params``).
``load_study(name)`` turns ``conf/experiment/NAME.yaml`` into a ``Study``: the swept
datasets are its focus, every other swept key except the seed is a factor (a swept
group such as ``optimizer`` is the column ``optimizer.name``). A new preset is a new
study with no Python edit.

The outcome is an epoch count (``epochs_to_threshold``: how fast the loss falls below
``trainer.loss_threshold``; ``epochs_to_full_accuracy``: how fast every training point
is classified correctly) or ``final_accuracy`` (held out when the runs have a test
split). ``summary``, ``headline`` and ``conclusion`` compute the numbers shown in the
notebooks and in the README's Studies table.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from omegaconf import OmegaConf

from src.runs.config import CONF_DIR
from src.runs.contract import EPOCHS_TO_THRESHOLD, FINAL_TEST_ACCURACY, FINAL_TRAIN_ACCURACY

EXPERIMENT_DIR = CONF_DIR / "experiment"
#: Swept keys that are not factors: the dataset (the focus) and the seed (replicates).
NOT_FACTORS = ("dataset", "trainer.seed")


@dataclass(frozen=True)
class Study:
    name: str
    experiment: str
    factors: tuple[str, ...]  # load_runs columns, e.g. ("optimizer.name",)
    outcome: str  # one of src.runs.contract.OUTCOMES
    focus: tuple[str, ...]  # dataset names, in the order the preset sweeps them
    question: str

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

    def summary(self, runs: pd.DataFrame) -> pd.DataFrame:
        """Per dataset and factor level: runs, how many reached the epoch-count outcome
        (``epochs_to_threshold`` unless the study counts epochs to full accuracy), its
        median, median and mean final accuracy, how many diverged."""
        accuracy = accuracy_column(runs)
        epochs = self.outcome if self.outcome.startswith("epochs_to_") else EPOCHS_TO_THRESHOLD
        grouped = runs.groupby(["dataset.name", *self.factors], dropna=False, sort=True)
        table = grouped.agg(
            runs=("run_id", "size"),
            reached=(epochs, lambda s: int(s.notna().sum())),
            median_epochs=(epochs, "median"),
            median_accuracy=(accuracy, "median"),
            mean_accuracy=(accuracy, "mean"),
            diverged=("diverged", "sum"),
        )
        return table.reset_index()

    def headline(self, runs: pd.DataFrame) -> str:
        """One sentence per focus dataset, ranking the factor levels by the outcome."""
        table = self.summary(runs)
        sentences = []
        for dataset in self.focus:
            rows = table[table["dataset.name"] == dataset]
            if rows.empty:
                continue
            if self.outcome.startswith("epochs_to_"):
                target = "loss threshold" if self.outcome == EPOCHS_TO_THRESHOLD else "100% train accuracy"
                ranked = rows.assign(_key=rows["median_epochs"].fillna(np.inf)).sort_values("_key", kind="stable")
                parts = [f"{_level(r, self.factors)} {_epochs(r)}" for _, r in ranked.iterrows()]
                sentences.append(f"{dataset}: median epochs to {target} (runs reaching it) — " + ", ".join(parts))
            else:
                ranked = rows.sort_values("mean_accuracy", ascending=False, kind="stable")
                best, worst = ranked.iloc[0], ranked.iloc[-1]
                if len(self.factors) > 1:
                    sentences.append(
                        f"{dataset}: best {_level(best, self.factors)} {best['mean_accuracy']:.3f} mean "
                        f"{accuracy_label(runs)}, worst {_level(worst, self.factors)} {worst['mean_accuracy']:.3f}"
                    )
                else:
                    parts = [f"{_level(r, self.factors)} {r['mean_accuracy']:.3f}" for _, r in ranked.iterrows()]
                    sentences.append(f"{dataset}: mean {accuracy_label(runs)} — " + ", ".join(parts))
        return "; ".join(sentences)

    def conclusion(self, runs: pd.DataFrame) -> str:
        """Markdown: the headline and the summary table, computed from ``runs``."""
        table = self.summary(runs)
        lines = [f"**{self.question}** From {len(runs)} runs of this sweep:", ""]
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
    return "×".join(level_label(row[factor]) for factor in factors)


def _epochs(row: pd.Series) -> str:
    if row["reached"] == 0:
        return f"never (0/{row['runs']})"
    return f"{row['median_epochs']:.0f} ({row['reached']}/{row['runs']})"


def _column(key: str) -> str:
    """The ``load_runs`` column of a swept key: a group (``optimizer``) is its ``.name``."""
    return key if "." in key else f"{key}.name"


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
        factors=tuple(_column(key) for key in swept if key not in NOT_FACTORS),
        outcome=preset.study.outcome,
        focus=tuple(_dataset_name(option.strip()) for option in datasets),
        question=preset.study.question,
    )


def all_studies() -> dict[str, Study]:
    """Every study preset, by name (alphabetical)."""
    return {path.stem: load_study(path.stem) for path in sorted(EXPERIMENT_DIR.glob("*.yaml"))}
