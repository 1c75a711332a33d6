"""Ctrl-C (SIGINT) and SIGTERM stop a run or a sweep the same way.

SIGTERM is what ``timeout``, container stops and cluster schedulers send; Python's
default would end the process on the spot. ``install()`` makes both signals raise
``KeyboardInterrupt`` in the main thread, so a training run stops at its current epoch,
sends every epoch so far and ends KILLED (``src.runs.tracked_run``), and a sweep closes
its parent and its children KILLED (``src.runs.sweep``). ``received()`` names the
signal that stopped this process, if one did.
"""

from __future__ import annotations

import signal
import threading

_received: list[str] = []


def _raise(signum: int, frame) -> None:
    _received.append(signal.Signals(signum).name)
    raise KeyboardInterrupt(signal.Signals(signum).name)


def install() -> None:
    """Route SIGINT and SIGTERM to ``KeyboardInterrupt`` (in the main thread only, where
    Python runs signal handlers; elsewhere a no-op)."""
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, _raise)


def received() -> str | None:
    """``SIGINT`` or ``SIGTERM`` when one of them stopped this process, else None."""
    return _received[0] if _received else None
