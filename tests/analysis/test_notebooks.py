"""Every study notebook executes against a tiny real sweep and draws its figures."""

from pathlib import Path

import nbformat
import pytest
from jupyter_client import KernelManager
from nbclient import NotebookClient

from src.analysis.studies import all_studies

STUDIES = all_studies()

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
#: figures each notebook draws: learning curves (2), distributions (2), boundaries (1);
#: capacity: learning curves, heatmaps, distribution, boundaries
EXPECTED_FIGURES = {name: (4 if name == "capacity" else 5) for name in STUDIES}


def test_there_is_one_notebook_per_study():
    assert sorted(p.stem for p in NOTEBOOKS.glob("*.ipynb")) == sorted(STUDIES)


@pytest.mark.parametrize("name", sorted(STUDIES))
def test_notebooks_are_committed_without_outputs(name):
    nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None


@pytest.fixture(scope="module")
def kernel(study_store):
    """One kernel for all notebooks (imports are paid once); each notebook starts with
    ``%reset -f`` so that none can lean on another's variables."""
    uri, _ = study_store
    manager = KernelManager(kernel_name="python3")
    import os

    manager.start_kernel(cwd=str(NOTEBOOKS), env={**os.environ, "MLFLOW_TRACKING_URI": uri})
    yield manager
    manager.shutdown_kernel(now=True)


@pytest.mark.parametrize("name", sorted(STUDIES))
def test_notebook_executes_and_draws_its_figures(name, kernel):
    nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    nb.cells.insert(0, nbformat.v4.new_code_cell("%reset -f"))
    NotebookClient(nb, km=kernel, timeout=600, allow_errors=False).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) >= EXPECTED_FIGURES[name]
    conclusion = nb.cells[-1].outputs[0]["data"]["text/markdown"]
    assert STUDIES[name].question in conclusion and "| dataset.name |" in conclusion
