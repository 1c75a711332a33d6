"""Sweep jobs derived from one composition per shape instead of composed one by one.

Hydra's sweepers compose every job of a batch to check it before launching it
(``Sweeper.validate_batch_is_legal``), and a launcher that runs the jobs in this process
(the basic one, ``hydra/launcher=stacked``) then composes each job again. A composition
reads and merges every config file of the defaults list: about 60 ms a job.

``install()`` patches the loader's ``load_sweep_config``, which both call. A job's
overrides split into *plain values* (``key=value``: no ``+``/``~`` prefix, no package,
not a config group, not under ``hydra``, and a value that is neither a list nor a dict)
and the rest. The first job of each shape (the rest's overrides and the plain values'
keys, under one master config) is composed by Hydra and kept pickled as a template;
every later load of that shape (the check's other jobs, then the launcher's) is the
template unpickled (under a millisecond), its plain values set as Hydra sets them
(``ConfigLoaderImpl._apply_overrides_to_config``), and the fields Hydra derives from the
overrides (``hydra.overrides.task``, ``hydra.job.override_dirname``,
``hydra.runtime.cwd``) and the master's resolver cache set again: 2 ms a job. Its keys
are the template's, so every value the template's job set is replaced. A job whose
values cannot be set that way (an unknown key, a wrong type) is composed by Hydra, which
reports it as it always does. ``tests/runs/test_compositions.py`` checks that derived
and composed configs are equal, node types and flags included.
"""

from __future__ import annotations

import functools
import os
import pickle
from collections.abc import Sequence

from hydra._internal.config_loader_impl import ConfigLoaderImpl, get_overrides_dirname
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override, OverrideType
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

#: a job's shape (see ``_shape``) -> (its master config, the pickled composition of its first
#: job); the master is held so that its id is not reused while its templates live
_templates: dict[tuple, tuple[DictConfig, bytes]] = {}


@functools.cache
def _parser() -> OverridesParser:
    return OverridesParser.create()


def _plain_value(loader: ConfigLoaderImpl, override: Override) -> bool:
    """Whether Hydra would only set ``override``'s key to its value (see the module docstring)."""
    key = override.key_or_group
    return (
        override.type == OverrideType.CHANGE
        and override.package is None
        and not override.is_hydra_override()
        and not override.is_sweep_override()
        and not isinstance(override.value(), (dict, list))
        and not loader.repository.group_exists(key)
        and not loader.repository.group_exists(key.replace(".", "/"))
    )


def _shape(
    loader: ConfigLoaderImpl, master: DictConfig, overrides: Sequence[str]
) -> tuple[tuple, list[Override], list[Override]]:
    """``(the job's shape, its parsed overrides, its plain values)``."""
    parsed = _parser().parse_overrides(list(overrides))
    plain = [_plain_value(loader, o) for o in parsed]
    values = [o for o, is_plain in zip(parsed, plain, strict=True) if is_plain]
    rest = tuple(o.input_line for o, is_plain in zip(parsed, plain, strict=True) if not is_plain)
    hydra_overrides = tuple(OmegaConf.to_container(master.hydra.overrides.hydra))
    shape = (id(loader), id(master), hydra_overrides, rest, tuple(o.key_or_group for o in values))
    return shape, parsed, values


def _derived(template: bytes, master: DictConfig, parsed: list[Override], values: list[Override]) -> DictConfig | None:
    """The template with the job's plain values and overrides, or None if they do not apply."""
    config = pickle.loads(template)
    try:
        ConfigLoaderImpl._apply_overrides_to_config(values, config)
    except (HydraException, OmegaConfBaseException):
        return None
    task = [o for o in parsed if not o.is_hydra_override()]
    job = config.hydra.job
    config.hydra.overrides.task = [o.input_line for o in task]
    job.override_dirname = get_overrides_dirname(
        overrides=task,
        kv_sep=job.config.override_dirname.kv_sep,
        item_sep=job.config.override_dirname.item_sep,
        exclude_keys=job.config.override_dirname.exclude_keys,
    )
    config.hydra.runtime.cwd = os.getcwd()
    OmegaConf.copy_cache(from_config=master, to_config=config)
    return config


def _deriving(load_sweep_config):
    @functools.wraps(load_sweep_config)
    def load(self: ConfigLoaderImpl, master_config: DictConfig, sweep_overrides: list[str]) -> DictConfig:
        shape, parsed, values = _shape(self, master_config, sweep_overrides)
        template = _templates.get(shape)  # the shape holds the master's id, and the template the master
        if template is not None:
            derived = _derived(template[1], master_config, parsed, values)
            if derived is not None:
                return derived
        config = load_sweep_config(self, master_config, sweep_overrides)
        if template is None:
            for stale in [k for k, (master, _) in _templates.items() if master is not master_config]:
                del _templates[stale]  # one sweep's templates at a time
            try:
                _templates[shape] = (master_config, pickle.dumps(config))
            except pickle.PicklingError:  # a structured config's class was imported anew (a joblib worker)
                pass
        return config

    return load


def install() -> None:
    """Patch Hydra's config loader (once per process)."""
    if not getattr(ConfigLoaderImpl.load_sweep_config, "derives_jobs", False):
        ConfigLoaderImpl.load_sweep_config = _deriving(ConfigLoaderImpl.load_sweep_config)
        ConfigLoaderImpl.load_sweep_config.derives_jobs = True
