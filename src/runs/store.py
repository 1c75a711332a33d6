"""Whether the tracking store answers: a quick check before a run or a sweep starts, and
the bounded wait for a store that stops answering during a run.

``check_store(uri, timeout)`` raises ``StoreUnavailable`` (one line naming the URI and
the cause) when a tracking server does not answer ``GET <uri>/health`` within ``timeout``
seconds, or when a sqlite store's directory does not exist; other stores (``file:``,
``databricks``, ...) are left to MLflow. It also sets MLflow's HTTP client to the same
timeout and to no retries of its own (``MLFLOW_HTTP_REQUEST_TIMEOUT``,
``MLFLOW_HTTP_REQUEST_MAX_RETRIES``, read by MLflow at every request): the run retries
where it can afford to, within ``tracking.outage_wait`` (``retry_while_down``).

Only the standard library is imported here: the check runs before MLflow is imported.
"""

from __future__ import annotations

import os
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar
from urllib.parse import unquote, urlparse

T = TypeVar("T")
#: Seconds between two attempts at a store that does not answer.
RETRY_SECONDS = 1.0


class StoreUnavailable(RuntimeError):
    """The tracking store does not answer; the message is one line naming the URI and the cause."""


def check_store(uri: str, timeout: float) -> None:
    """Raise ``StoreUnavailable`` unless the store at ``uri`` answers within ``timeout`` seconds."""
    os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] = str(max(1, round(timeout)))
    os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = "0"
    cause = _problem(uri, timeout)
    if cause:
        raise StoreUnavailable(f"tracking store {uri}: {cause}")


def _problem(uri: str, timeout: float) -> str | None:
    """Why the store at ``uri`` cannot be used, or None."""
    parsed = urlparse(uri)
    if parsed.scheme in ("http", "https"):
        try:
            with urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=timeout):
                return None
        except urllib.error.HTTPError as err:  # the server answered
            return f"the server answered HTTP {err.code} {err.reason}" if err.code >= 500 else None
        except (TimeoutError, urllib.error.URLError, OSError) as err:
            reason = getattr(err, "reason", err)
            if isinstance(reason, TimeoutError) or "timed out" in str(reason):
                return f"no answer within {timeout:g} s"
            return str(reason).strip() or type(reason).__name__
    if parsed.scheme == "sqlite":
        path = unquote(parsed.path)[1:]  # sqlite:///relative.db, sqlite:////absolute.db
        if path not in ("", ":memory:") and not Path(path).parent.is_dir():
            return f"directory {Path(path).parent} does not exist"
    return None


def retry_while_down(call: Callable[[], T], uri: str, timeout: float, deadline: float) -> T:
    """``call()``, retried every ``RETRY_SECONDS`` while the store at ``uri`` does not answer,
    until ``deadline`` (``time.monotonic()``); then ``StoreUnavailable``. An error from a
    store that answers is raised as it is."""
    while True:
        try:
            return call()
        except Exception as err:
            cause = _problem(uri, timeout)
            if cause is None:
                raise
            if time.monotonic() >= deadline:
                raise StoreUnavailable(f"tracking store {uri}: {cause}") from err
            time.sleep(RETRY_SECONDS)


def unavailable(uri: str, timeout: float, otherwise: str) -> StoreUnavailable:
    """The error for a store that failed: why it does not answer now, else ``otherwise``."""
    return StoreUnavailable(f"tracking store {uri}: {_problem(uri, timeout) or otherwise}")


def one_line(err: BaseException) -> str:
    """The first line of an error's message (its type when it has none)."""
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__
