"""Study figures drawn from a tiny real sweep."""

import matplotlib.pyplot as plt

from src.analysis import plots
from src.analysis.loaders import load_runs
from src.analysis.studies import load_study


def test_boundary_grid_orders_non_numeric_factor_levels(study_store):
    uri, _ = study_store
    runs = load_study("losses").judged(load_runs("study-losses", tracking_uri=uri))
    fig = plots.decision_boundaries(runs, ("loss.name", "trainer.seed"), uri)
    titles = [ax.get_title() for ax in fig.axes if ax.axison]
    assert len(titles) == len(runs) == 4
    assert titles[0].startswith("xor, loss: cross_entropy") and titles[-1].startswith("xor, loss: mse")
    plt.close(fig)
