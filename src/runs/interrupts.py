"""Ctrl-C (SIGINT) and SIGTERM stop a run or a sweep the same way.

SIGTERM is what ``timeout``, container stops and cluster schedulers send; Python's
default would end the process on the spot. ``install()`` makes both signals raise
``KeyboardInterrupt`` in the main thread (and the training loops ask
``raise_if_received`` once an epoch, as Python drops an exception raised while a
garbage collector's callback runs), so a training run stops at its current epoch,
sends every epoch so far and ends KILLED (``src.runs.tracked_run``), and a sweep closes
its parent and its children KILLED (``src.runs.sweep``). ``received()`` names the
signal that stopped this process, if one did; ``deferred`` holds both signals back
while a store's tables are created, so that an interrupt never leaves a half-migrated
store; ``exit_on_interrupt`` ends the command with one line and the shell's status for
that signal (130, 143) instead of a traceback.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Callable, Iterator

_received: list[str] = []
_first_steps: list[Callable[[int], None]] = []


def _raise(signum: int, frame) -> None:
    _received.append(signal.Signals(signum).name)
    if len(_received) == 1:
        for step in _first_steps:
            step(signum)
    raise KeyboardInterrupt(signal.Signals(signum).name)


def before_raising(step: Callable[[int], None]) -> None:
    """Call ``step(signal number)`` at the first signal, before it interrupts the main
    thread (a sweep forwards the signal to its worker processes)."""
    _first_steps.append(step)


def install() -> None:
    """Route SIGINT and SIGTERM to ``KeyboardInterrupt`` (in the main thread only, where
    Python runs signal handlers; elsewhere a no-op)."""
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, _raise)


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """Hold SIGINT and SIGTERM back in this thread until the block ends (then they act)."""
    signals = {signal.SIGINT, signal.SIGTERM}
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, signals)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def raise_if_received() -> None:
    """Raise ``KeyboardInterrupt`` if a signal came: the handler's own exception is lost
    when the signal lands in a garbage collector's callback (Python ignores exceptions
    there), so the training loops ask once an epoch."""
    if _received:
        raise KeyboardInterrupt(_received[0])


def received() -> str | None:
    """``SIGINT`` or ``SIGTERM`` when one of them stopped this process, else None."""
    return _received[0] if _received else None


@contextlib.contextmanager
def exit_on_interrupt() -> Iterator[None]:
    """Exit with status 128 + the signal's number and one line after an interrupt."""
    try:
        yield
    except KeyboardInterrupt:
        name = received() or "SIGINT"
        print(f"interrupted by {name}", file=sys.stderr)
        sys.exit(128 + signal.Signals[name].value)
