"""Declarative value constraints for config fields (after scikit-learn's
``_parameter_constraints``).

A schema field declares its rule once, ``lr: float = constrained(Interval(0, None,
closed="neither"))``, and ``violations(section, obj)`` checks every field of a dataclass
instance against its rule. Fields carry no default value (``MISSING``): the values live
in the YAML files of ``conf/``, the schemas hold only types and rules.

Every rule is callable (``rule(value) -> bool``) and prints as the expectation shown to
the user (``str(rule)``, e.g. ``a number > 0``). Numbers must be finite whatever the
bounds. A rule whose ``local`` is true checks this machine (a file exists), not the value
itself; ``violations(..., local=False)`` skips it, e.g. for a config logged elsewhere.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field, fields
from pathlib import Path

from omegaconf import MISSING

CLOSED = ("left", "right", "both", "neither")
#: The longest value a message repeats whole; a longer one is cut and its length given.
SHOWN_CHARACTERS = 60


def shown(value) -> str:
    """``repr(value)`` for a message: whole when short, else its start, its end (where a
    path names its file) and its length."""
    text = repr(value)
    if len(text) <= SHOWN_CHARACTERS:
        return text
    half = SHOWN_CHARACTERS // 2
    length = len(value) if isinstance(value, str) else len(text)
    return f"{text[:half]}...{text[-half:]} ({length} characters)"


@dataclass(frozen=True)
class Interval:
    """A finite number between ``low`` and ``high`` (None: unbounded); ``closed`` says
    which bounds belong to the interval; ``integer`` only changes the wording."""

    low: float | None = None
    high: float | None = None
    closed: str = "left"
    integer: bool = False

    def __call__(self, value) -> bool:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            return False
        if self.low is not None and (value < self.low or (value == self.low and self.closed in ("right", "neither"))):
            return False
        if self.high is not None and (value > self.high or (value == self.high and self.closed in ("left", "neither"))):
            return False
        return True

    def __str__(self) -> str:
        kind = "an integer" if self.integer else "a number"
        low_op = ">=" if self.closed in ("left", "both") else ">"
        high_op = "<=" if self.closed in ("right", "both") else "<"
        if self.low is None and self.high is None:
            return f"a finite {kind.split()[-1]}"
        if self.high is None:
            return f"{kind} {low_op} {self.low:g}"
        if self.low is None:
            return f"{kind} {high_op} {self.high:g}"
        return f"{kind} with {self.low:g} {'<=' if low_op == '>=' else '<'} x {high_op} {self.high:g}"


@dataclass(frozen=True)
class OneOf:
    """One of a fixed set of values."""

    choices: tuple

    def __call__(self, value) -> bool:
        return value in self.choices

    def __str__(self) -> str:
        return f"one of {list(self.choices)}"


@dataclass(frozen=True)
class Each:
    """A list whose every item satisfies ``rule`` (and has ``length`` items, when given)."""

    rule: Interval | OneOf
    length: int | None = None

    def __call__(self, value) -> bool:
        if not isinstance(value, (list, tuple)) or (self.length is not None and len(value) != self.length):
            return False
        return len(value) > 0 and all(self.rule(v) for v in value)

    def __str__(self) -> str:
        count = f"{self.length} items" if self.length is not None else "a non-empty list of items"
        return f"{count}, each {self.rule}"


@dataclass(frozen=True)
class Text:
    """A non-blank string of at most ``max_length`` characters."""

    max_length: int

    def __call__(self, value) -> bool:
        return isinstance(value, str) and bool(value.strip()) and len(value) <= self.max_length

    def __str__(self) -> str:
        return f"a non-empty name of at most {self.max_length} characters"


@dataclass(frozen=True)
class TrackingUri:
    """An MLflow tracking URI with a scheme MLflow stores runs under (a database driver
    may follow it, ``postgresql+psycopg``), or a local path (a file store). sqlite needs
    a database file, not ``:memory:``, which would lose every run."""

    schemes: tuple

    def __call__(self, value) -> bool:
        if not isinstance(value, str) or not value.strip():
            return False
        scheme, separator, rest = value.partition(":")
        if not separator or len(scheme) == 1:  # a relative path, or a Windows drive letter
            return True
        if scheme.split("+", 1)[0] not in self.schemes:
            return False
        return scheme != "sqlite" or sqlite_path(value) not in (None, "", ":memory:")

    def __str__(self) -> str:
        return f"a tracking URI of scheme {', '.join(self.schemes)} (sqlite with a database file)"


def sqlite_path(uri: str) -> str | None:
    """The database file of a ``sqlite:///path`` URI (None when it is not one)."""
    return uri[len("sqlite:///") :] if uri.startswith("sqlite:///") else None


@dataclass(frozen=True)
class ExistingFile:
    """The path of an existing file."""

    local = True

    def __call__(self, value) -> bool:
        return isinstance(value, str) and Path(value).is_file()

    def __str__(self) -> str:
        return "the path of an existing file"


Rule = Interval | OneOf | Each | Text | TrackingUri | ExistingFile


def constrained(rule: Rule | None = None, nullable: bool = False):
    """A schema field without a default, checked by ``rule`` (``None`` passes when
    ``nullable``; ``rule=None`` leaves the value to the type check alone)."""
    return field(default=MISSING, metadata={"rule": rule, "nullable": nullable})


def violations(section: str, obj, local: bool = True) -> Iterator[str]:
    """``"section.key: invalid value V; expected ..."`` for every field of ``obj`` that
    breaks its rule (``local=False``: rules that check this machine are skipped)."""
    for f in fields(obj):
        rule, nullable = f.metadata.get("rule"), f.metadata.get("nullable", False)
        value = getattr(obj, f.name)
        if (value is None and nullable) or (not local and getattr(rule, "local", False)):
            continue
        if value is None or (rule is not None and not rule(value)):
            expected = str(rule) if rule is not None else f"a value of type {f.type}"
            if nullable:
                expected = f"null or {expected}"
            yield f"{section}.{f.name}: invalid value {shown(value)}; expected {expected}"
