"""A run's progress on the console: a bar redrawn in place on a terminal, plain log lines
elsewhere.

``Progress(name, epochs, every)`` is called after every epoch with its metrics. When the
console (the stream of the root logger's console handler, Hydra's ``sys.stdout``) is a
terminal, it redraws one line at most ``REDRAW_SECONDS`` apart::

    xor-adam-2x8-tanh-s0  [██████······]  1234/2000  train_loss 0.0123  1.2 s, about 0.8 s left

and ``close()`` erases it, so the run's summary line takes its place. Otherwise (a file,
a pipe, CI) it logs a line every ``every`` epochs and at the last one::

    xor-adam-2x8-tanh-s0  epoch  200/2000  train_loss 0.249  train_accuracy 0.524
"""

from __future__ import annotations

import logging
import time
from typing import TextIO

log = logging.getLogger("src.runs.tracked_run")

REDRAW_SECONDS = 0.25
BAR_WIDTH = 24


def console_stream() -> TextIO | None:
    """The open stream the root logger's console handler writes to, if there is one."""
    for handler in logging.getLogger().handlers:
        if type(handler) is logging.StreamHandler and not getattr(handler.stream, "closed", False):
            return handler.stream
    return None


class Progress:
    def __init__(self, name: str, epochs: int, every: int, stream: TextIO | None = None) -> None:
        self.name, self.epochs, self.every = name, epochs, every
        self.stream = stream if stream is not None else console_stream()
        self.bar = self.stream is not None and self.stream.isatty()
        self.width = len(str(epochs))
        self.start = self._last_drawn = time.monotonic()
        self._drawn = False

    def __call__(self, epoch: int, metrics: dict[str, float]) -> None:
        if self.bar:
            now = time.monotonic()
            if now - self._last_drawn >= REDRAW_SECONDS or epoch == self.epochs:
                self._draw(epoch, metrics, now)
        elif epoch % self.every == 0 or epoch == self.epochs:
            values = "  ".join(f"{k} {v:.4g}" for k, v in metrics.items())
            log.info("%s  epoch %*d/%d  %s", self.name, self.width, epoch, self.epochs, values)

    def _draw(self, epoch: int, metrics: dict[str, float], now: float) -> None:
        done = epoch / self.epochs
        filled = int(BAR_WIDTH * done)
        elapsed = now - self.start
        left = elapsed / done - elapsed if done else 0.0
        loss = next(iter(metrics.items()), None)
        shown = f"  {loss[0]} {loss[1]:.4g}" if loss else ""
        line = (
            f"{self.name}  [{'█' * filled}{'·' * (BAR_WIDTH - filled)}]  {epoch:>{self.width}}/{self.epochs}"
            f"{shown}  {elapsed:.1f} s, about {left:.1f} s left"
        )
        self.stream.write(f"\r\033[K{line}")
        self.stream.flush()
        self._last_drawn, self._drawn = now, True

    def close(self) -> None:
        """Erase the bar (the summary line follows)."""
        if self._drawn:
            self.stream.write("\r\033[K")
            self.stream.flush()
            self._drawn = False
