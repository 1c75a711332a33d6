"""The house: three packages whose imports flow one way, engine <- runs <- analysis."""

import ast
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
#: What each package may import from this project, besides itself.
ALLOWED = {"engine": set(), "runs": {"engine"}, "analysis": {"engine", "runs"}}


def _imports(path: Path) -> set[str]:
    """Top-level names of the modules a file imports (``src.runs.config`` -> ``src.runs``)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names = [node.module]
        else:
            continue
        for name in names:
            parts = name.split(".")
            found.add(".".join(parts[:2]) if parts[0] == "src" else parts[0])
    return found


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_imports_flow_one_way(package):
    for path in sorted((SRC / package).glob("*.py")):
        project = {name.split(".")[1] for name in _imports(path) if name.startswith("src.")}
        assert project <= ALLOWED[package] | {package}, f"{path.name} imports {sorted(project)}"


def test_the_engine_imports_numpy_and_the_standard_library_only():
    for path in sorted((SRC / "engine").glob("*.py")):
        outside = {n for n in _imports(path) if not n.startswith("src.") and n not in sys.stdlib_module_names}
        assert outside <= {"numpy"}, f"{path.name} imports {sorted(outside)}"


def test_every_module_states_its_job():
    for path in sorted(SRC.rglob("*.py")):
        assert ast.get_docstring(ast.parse(path.read_text())), f"{path.relative_to(SRC)} has no docstring"
