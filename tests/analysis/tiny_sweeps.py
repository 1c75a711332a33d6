"""Run every study preset as a tiny real multirun, all in one process.

Used by the ``study_store`` fixture: ``python tests/analysis/tiny_sweeps.py SWEEP_ROOT`` with
``MLFLOW_TRACKING_URI`` pointing at a temporary store. Each preset keeps its own
overrides but is cut down to two levels of its factor, two seeds and a few epochs.
"""

import sys
from pathlib import Path

from hydra.core.global_hydra import GlobalHydra

from src.analysis.studies import load_study
from src.runs.cli import main

CONF_DIR = Path(__file__).resolve().parents[2] / "conf"

TINY = {
    "optimizers": ["optimizer=sgd,adam"],
    "learning_rates": ["optimizer.lr=0.1,5"],
    "hidden_units": ["model.width=2,8"],
    "activations": ["model.activation=tanh,identity"],
    "batch_size": ["trainer.batch_size=null,4"],
    "capacity": ["dataset=moons,blobs3", "model.depth=1,2", "model.width=2,4", "trainer.seed=0"],
    "losses": ["loss=mse,cross_entropy"],
}
#: The figures and the pyfunc model are tested elsewhere; the notebooks do not read them.
COMMON = [
    "dataset=xor",
    "trainer.seed=0,1",
    "trainer.epochs=60",
    "trainer.loss_threshold=0.2",
    "tracking.log_figures=false",
    "tracking.log_model=false",
]


#: Presets on ``hydra/sweeper=tuned`` choose the learning rate on one seed, report on two.
TUNED = ["hydra.sweeper.tune_values=[0.1,1]", "hydra.sweeper.tune_seeds=[0]", "hydra.sweeper.report_seeds=[1,2]"]


def run_all(sweep_root: Path) -> None:
    for study, overrides in TINY.items():
        keys = {o.split("=")[0] for o in overrides}
        if load_study(study).tuned:
            keys.add("trainer.seed")
            overrides = [*overrides, *TUNED]
        common = [o for o in COMMON if o.split("=")[0] not in keys]
        sys.argv = [
            "src.train",
            f"--config-path={CONF_DIR}",
            "-m",
            f"+experiment={study}",
            *overrides,
            *common,
            f"hydra.sweep.dir={sweep_root / study}",
        ]
        GlobalHydra.instance().clear()
        main()


if __name__ == "__main__":
    run_all(Path(sys.argv[1]))
