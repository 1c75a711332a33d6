"""The reference labs' studies: what each preset sweeps and how its result is summarised.

Each ``Study`` names its preset (``conf/experiment/NAME.yaml``), MLflow experiment,
notebook, the swept factor(s) and the outcome it is judged on: an epoch count
(``epochs_to_threshold``: how fast the loss falls below ``trainer.loss_threshold``;
``epochs_to_full_accuracy``: how fast every training point is classified correctly) or
the final accuracy (held out when the runs have a test split). ``summary`` and ``headline`` compute the numbers
shown in the notebooks' conclusions and in the README's Studies table.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Study:
    name: str
    experiment: str
    factors: tuple[str, ...]
    outcome: str  # "epochs_to_threshold", "epochs_to_full_accuracy" or "accuracy"
    focus: tuple[str, ...]  # datasets the headline reports
    question: str

    @property
    def command(self) -> str:
        return f"python -m src.train -m +experiment={self.name}"

    @property
    def notebook(self) -> str:
        return f"notebooks/{self.name}.ipynb"

    def summary(self, runs: pd.DataFrame) -> pd.DataFrame:
        """Per dataset and factor level: runs, how many reached the epoch-count outcome
        (``epochs_to_threshold`` unless the study counts epochs to full accuracy), its
        median, median and mean final accuracy, how many diverged."""
        accuracy = accuracy_column(runs)
        epochs = self.outcome if self.outcome.startswith("epochs_to_") else "epochs_to_threshold"
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
                target = "loss threshold" if self.outcome == "epochs_to_threshold" else "100% train accuracy"
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
    if "final_test_accuracy" in runs and runs["final_test_accuracy"].notna().any():
        return "final_test_accuracy"
    return "final_train_accuracy"


def accuracy_label(runs: pd.DataFrame) -> str:
    return "test accuracy" if accuracy_column(runs) == "final_test_accuracy" else "train accuracy"


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


STUDIES = {
    s.name: s
    for s in [
        Study("optimizers", "study-optimizers", ("optimizer.name",), "epochs_to_threshold", ("xor", "linear"),
              "Which optimizer reaches the loss threshold fastest?"),
        Study("learning_rates", "study-learning-rates", ("optimizer.lr",), "epochs_to_threshold", ("xor", "linear"),
              "How does plain SGD depend on its learning rate, from 0.0001 to 50?"),
        Study("hidden_units", "study-hidden-units", ("model.width",), "epochs_to_threshold", ("xor", "linear"),
              "How many hidden units does the network need?"),
        Study("activations", "study-activations", ("model.activation",), "epochs_to_threshold", ("xor", "linear"),
              "Which hidden activation learns fastest, and is one needed at all?"),
        Study("batch_size", "study-batch-size", ("trainer.batch_size",), "epochs_to_threshold", ("xor", "linear"),
              "Full batch, mini-batches or one sample per update?"),
        Study("capacity", "study-capacity", ("model.depth", "model.width"), "accuracy", ("moons", "blobs"),
              "How do depth and width shape the decision boundary and the held-out accuracy?"),
        Study("losses", "study-losses", ("loss.name",), "epochs_to_full_accuracy", ("xor", "linear"),
              "Mean squared error or cross-entropy?"),
    ]
}
