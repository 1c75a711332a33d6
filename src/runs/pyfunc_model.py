"""The trained network as an MLflow ``pyfunc`` model.

``predict`` takes an (n, 2) array (or a two-column DataFrame) and returns class
probabilities of shape (n, n_classes), column k the probability of class k
(``src.engine.encoding.class_probabilities``). The model carries the code it runs
(``MODEL_CODE``: the engine and the modules that rebuild a network from a config,
``src.runs.build.load_network``) and the run's ``config.yaml`` and ``weights.npz``, so it
loads in any process with ``mlflow.pyfunc.load_model``. Loading a model runs the code it
carries: load models only from stores you trust.

What is done once and what per run: every model shares its code, environment files
(explicit requirements and conda environment, so MLflow infers none, copies no
``uv.lock`` and needs no installed pip) and signature,
so ``mlflow.pyfunc.save_model`` builds that directory once per (code, dtype, number of
classes) as a template, kept in a cache directory between processes. Per run, the
template's files are linked (not copied) into the model's directory of a local artifact
store (else into a staging directory beside the template, then uploaded), with the run's
config and weights and its ``MLmodel`` stamped with the run and model ids: an MLflow
logged model (``models:/m-...``) linked to the run as its output, in four store calls
instead of ``log_model``'s model building, inference and validation.
"""

from __future__ import annotations

import hashlib
import os
import platform
import shutil
import tempfile
import time
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from mlflow.entities import LoggedModelOutput, LoggedModelStatus
from mlflow.models import Model, infer_signature
from mlflow.tracking import MlflowClient

from src.engine.encoding import class_probabilities
from src.runs.contract import CONFIG_FILE, MODEL_NAME, WEIGHTS_FILE

SRC_DIR = Path(__file__).resolve().parents[1]
#: The code a model carries (paths under ``SRC_DIR``): what ``pyfunc_entry`` imports.
MODEL_CODE = (
    "__init__.py",
    "engine",
    "runs/__init__.py",
    "runs/build.py",
    "runs/config.py",
    "runs/constraints.py",
    "runs/contract.py",
    "runs/datasets.py",
    "runs/pyfunc_entry.py",
    "runs/pyfunc_model.py",
)

#: Templates unused for this many days are removed when a new one is built.
TEMPLATE_DAYS = 30
#: The model's artifacts, keyed as ``context.artifacts`` sees them.
CONFIG_KEY, WEIGHTS_KEY = Path(CONFIG_FILE).stem, Path(WEIGHTS_FILE).stem
#: (dtype, classes) -> (the template directory, its ``MLmodel``, stamped anew for each run)
_TEMPLATES: dict[tuple[str, int], tuple[Path, Model]] = {}


def log_pyfunc_model(
    client: MlflowClient, experiment_id: str, run_id: str, config_path: Path, weights_path: Path, output: np.ndarray
) -> str:
    """Log the run's model as ``MODEL_NAME``; ``output`` is the network's output on a few
    training rows (for the signature). Returns the model URI."""
    template, mlmodel = _template(np.dtype(output.dtype), output)
    model = client.create_logged_model(experiment_id, name=MODEL_NAME, source_run_id=run_id)
    in_place = _local_directory(model.artifact_location)
    if in_place is not None:  # a local artifact store: the model is assembled where it goes
        _assemble(in_place, template, mlmodel, model, run_id, config_path, weights_path)
    else:
        with tempfile.TemporaryDirectory(prefix="staging-", dir=template.parent.parent) as tmp:  # one file system
            staging = Path(tmp) / MODEL_NAME
            _assemble(staging, template, mlmodel, model, run_id, config_path, weights_path)
            client.log_model_artifacts(model.model_id, str(staging))
    client.finalize_logged_model(model.model_id, LoggedModelStatus.READY)
    client.log_outputs(run_id, [LoggedModelOutput(model.model_id, step=0)])
    return f"models:/{model.model_id}"


def _local_directory(artifact_location: str) -> Path | None:
    """The directory of a local artifact location (a path or a ``file:`` URI), else None."""
    from urllib.parse import urlparse
    from urllib.request import url2pathname

    parsed = urlparse(artifact_location)
    if parsed.scheme == "file" and parsed.netloc in ("", "localhost"):
        return Path(url2pathname(parsed.path))
    return Path(artifact_location) if parsed.scheme == "" else None


def _assemble(
    target: Path, template: Path, mlmodel: Model, model, run_id: str, config_path: Path, weights_path: Path
) -> None:
    """Write the run's model directory into ``target``: the template's files linked, the
    run's config and weights, and its ``MLmodel`` stamped with the run and model ids."""
    shutil.copytree(template, target, copy_function=_link_or_copy, ignore=_run_files, dirs_exist_ok=True)
    (target / "artifacts").mkdir(exist_ok=True)
    shutil.copyfile(config_path, target / "artifacts" / CONFIG_FILE)
    shutil.copyfile(weights_path, target / "artifacts" / WEIGHTS_FILE)
    mlmodel.run_id, mlmodel.model_uuid, mlmodel.model_id = run_id, model.model_id, model.model_id
    mlmodel.artifact_path = model.artifact_location
    mlmodel.utc_time_created = str(datetime.now(UTC).replace(tzinfo=None))
    for key, name in ((CONFIG_KEY, CONFIG_FILE), (WEIGHTS_KEY, WEIGHTS_FILE)):
        mlmodel.flavors["python_function"]["artifacts"][key]["uri"] = f"runs:/{run_id}/{name}"
    mlmodel.model_size_bytes = sum(f.stat().st_size for f in target.rglob("*") if f.is_file())
    mlmodel.save(str(target / "MLmodel"))


def _link_or_copy(source: str, target: str) -> None:
    try:
        os.link(source, target)
    except OSError:  # a file system without hard links
        shutil.copy2(source, target)


def _run_files(directory: str, names: list[str]) -> set[str]:
    """What a run's model gets of its own instead of the template's (``copytree``'s ignore)."""
    return {"MLmodel", "artifacts"} & set(names) if Path(directory).name == MODEL_NAME else set()


def _model_code() -> list[Path]:
    """The files of ``MODEL_CODE``."""
    files = []
    for entry in MODEL_CODE:
        path = SRC_DIR / entry
        files += sorted(path.rglob("*.py")) if path.is_dir() else [path]
    return files


def _template(dtype: np.dtype, output: np.ndarray) -> tuple[Path, Model]:
    """The model directory shared by every run whose network has this dtype and output
    width, and its ``MLmodel``: built once, kept in ``template_cache()`` under a digest of
    everything it holds (the model's code, the requirements, Python's version, dtype and
    width)."""
    key = (dtype.name, output.shape[1])
    if key not in _TEMPLATES:
        digest = hashlib.sha256("\n".join([*_requirements(), platform.python_version(), *map(str, key)]).encode())
        for path in _model_code():
            digest.update(path.relative_to(SRC_DIR).as_posix().encode() + b"\0" + path.read_bytes())
        home = template_cache() / digest.hexdigest()[:20]
        if not (home / MODEL_NAME / "MLmodel").is_file():
            _build_template(home, dtype, output)
            _forget_unused(TEMPLATE_DAYS)
        os.utime(home)  # in use: kept by ``_forget_unused``
        _TEMPLATES[key] = (home / MODEL_NAME, Model.load(str(home / MODEL_NAME)))
    return _TEMPLATES[key]


def _forget_unused(days: float) -> None:
    """Remove the templates no process used for ``days`` (each change of the model's code
    makes a new one)."""
    now = time.time()
    for entry in template_cache().iterdir():
        if entry.is_dir() and now - entry.stat().st_mtime > days * 86400:
            shutil.rmtree(entry, ignore_errors=True)


def template_cache() -> Path:
    """Where model templates are kept between processes: ``$XDG_CACHE_HOME`` (else
    ``~/.cache``) ``/backprop-harness/pyfunc``."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "backprop-harness" / "pyfunc"


def _build_template(home: Path, dtype: np.dtype, output: np.ndarray) -> None:
    """``mlflow.pyfunc.save_model`` into a fresh directory, renamed into place at the end
    (a process that loses the race to another one building the same template keeps that one)."""
    import mlflow.pyfunc

    template_cache().mkdir(parents=True, exist_ok=True)
    build = Path(tempfile.mkdtemp(prefix="building-", dir=template_cache()))
    placeholder = build / "placeholder"
    placeholder.mkdir()
    code = build / "code" / SRC_DIR.name
    for path in _model_code():
        (code / path.relative_to(SRC_DIR)).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, code / path.relative_to(SRC_DIR))
    for name in (CONFIG_FILE, WEIGHTS_FILE):
        (placeholder / name).write_bytes(b"")
    example = np.full((1, 2), 0.5, dtype=dtype)  # the input format, shown in the UI
    probabilities = class_probabilities(output[:1], "softmax" if output.shape[1] > 1 else "sigmoid")
    with _environment(MLFLOW_LOG_UV_FILES="false", MLFLOW_UV_AUTO_DETECT="false"):
        mlflow.pyfunc.save_model(
            str(build / MODEL_NAME),
            python_model=str(Path(__file__).with_name("pyfunc_entry.py")),
            artifacts={CONFIG_KEY: str(placeholder / CONFIG_FILE), WEIGHTS_KEY: str(placeholder / WEIGHTS_FILE)},
            code_paths=[str(code)],
            signature=infer_signature(example, probabilities),
            input_example=example,
            conda_env=_conda_env(),
        )
    shutil.rmtree(placeholder)
    shutil.rmtree(build / "code")
    try:
        build.rename(home)
    except OSError:  # built meanwhile by another process
        shutil.rmtree(build, ignore_errors=True)


@contextmanager
def _environment(**values: str):
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _conda_env() -> dict:
    """The model's environment: this Python, pip, and ``_requirements()``. Given whole, so
    MLflow does not look for an installed pip to pin (a uv environment has none)."""
    return {
        "name": "mlflow-env",
        "channels": ["conda-forge"],
        "dependencies": [f"python={platform.python_version()}", "pip", {"pip": _requirements()}],
    }


def _requirements() -> list[str]:
    from importlib.metadata import version

    return [f"{name}=={version(name)}" for name in ("mlflow", "numpy", "omegaconf")]
