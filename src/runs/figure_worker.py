"""Run figures drawn by a child process, off the training path.

Drawing a run's three PNGs costs about 0.1 s of matplotlib (``src.runs.figures``), plus
about a second to import it. ``FigureWorker`` starts ``python -m src.runs.figure_worker``
once per process, early, so that the child imports matplotlib on the second core while the
parent imports MLflow and trains. For every run the parent sends the run's history,
network and data (``FigureJob``, pickled over the child's stdin) and goes on; the child
writes the PNGs into a directory the parent named (the job directory's ``figures/``, else
a temporary one) and answers on its stdout; the parent uploads them to their run when
the answer is in (a store that does not take them leaves them in the job directory):
on ``collect()`` (called before each new job) and on ``close()``. A run's figures may
therefore land a moment after the run finished; ``close()`` waits for all of them (the
CLI calls it when a single run or a sweep ends). A sweep's report figures go the same
way to its parent run, after the last job's (``src.runs.sweep_report``), so that the
sweep's process never imports matplotlib. If the child dies, the parent draws the
pending figures itself, so nothing is lost.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import pickle
import select
import shutil
import subprocess
import sys
import tempfile
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from src.engine.network import MLP
from src.runs.config import RunConfig
from src.runs.contract import TEST_ACCURACY, TEST_LOSS, TRAIN_ACCURACY, TRAIN_LOSS, TRAIN_LOSS_RUNNING
from src.runs.datasets import Dataset
from src.runs.snapshots import Snapshots

if TYPE_CHECKING:  # the child never imports MLflow
    from src.runs.tracking import RunArtifacts

log = logging.getLogger(__name__)
#: The worker a sweep shares across the jobs it runs in this process (see ``shared``).
_shared: FigureWorker | None = None
_sweep_in_this_process = False
#: This process's ``RunFigures`` (made on first use).
_figures = None


class Drawable(Protocol):
    """What the worker draws: a picklable description of figures (``FigureJob``, a sweep's
    ``SweepFigures``) that writes its PNGs into a directory."""

    def draw(self, out_dir: Path) -> None: ...


@dataclass
class FigureJob:
    """What the figures of one run are drawn from."""

    title: str
    history: dict[str, list[float]]
    net: MLP  # a copy without training buffers (``MLP.copy``)
    data: Dataset
    threshold: float | None = None  # the loss threshold, drawn on the learning curve
    snapshots: Snapshots | None = None  # training snapshots: the boundary's evolution, weight distributions

    def draw(self, out_dir: Path) -> None:
        """Write the PNGs into ``out_dir``, reusing this process's figures."""
        global _figures
        if _figures is None:
            from src.runs.figures import RunFigures

            _figures = RunFigures()
        _figures.draw(self.history, self.net, self.data, self.title, out_dir, self.threshold, self.snapshots)


class FigureWorker:
    """The parent's end: sends jobs, uploads finished figures to their runs."""

    def __init__(self, rehearsal: FigureJob | None = None) -> None:
        """``rehearsal``: figures like the coming run's, drawn by the child and thrown away
        while the parent is busy, so that the run's own reuse that layout (see ``rehearse``)."""
        self._child = subprocess.Popen(
            [sys.executable, "-m", "src.runs.figure_worker"], stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )
        #: (the run's artifacts, output directory, whether it is temporary, job) in the order they were sent
        self._pending: deque[tuple[RunArtifacts, Path, bool, Drawable]] = deque()
        if rehearsal is not None:
            pickle.dump((rehearsal, None), self._child.stdin, protocol=pickle.HIGHEST_PROTOCOL)
            self._child.stdin.flush()

    def submit(self, artifacts: RunArtifacts, job: Drawable, out_dir: Path | None = None) -> None:
        """Hand a run's figures to the child (or draw them here if it is gone); they go
        into ``out_dir`` (None: a temporary directory, removed once they are uploaded),
        then to ``artifacts`` (``src.runs.tracking.RunArtifacts``)."""
        self.collect()
        temporary = out_dir is None
        out_dir = Path(tempfile.mkdtemp(prefix="figures-")) if temporary else out_dir
        out_dir.mkdir(parents=True, exist_ok=True)
        self._pending.append((artifacts, out_dir, temporary, job))
        try:
            pickle.dump((job, str(out_dir)), self._child.stdin, protocol=pickle.HIGHEST_PROTOCOL)
            self._child.stdin.flush()
        except (BrokenPipeError, OSError):
            self._fall_back()

    def collect(self, wait: bool = False) -> None:
        """Upload the figures the child has finished (all of them with ``wait``)."""
        while self._pending:
            if not wait and not select.select([self._child.stdout], [], [], 0)[0]:
                return
            try:
                error = pickle.load(self._child.stdout)
            except (EOFError, OSError, pickle.UnpicklingError):
                self._fall_back()
                return
            artifacts, out_dir, temporary, job = self._pending.popleft()
            if error:
                log.warning("figures of run %s: the worker failed (%s); drawing them here", artifacts.run_id, error)
                job.draw(out_dir)
            _upload(artifacts, out_dir, temporary)

    def close(self) -> None:
        """Wait for every pending figure and upload it; the child, its input closed, exits
        on its own (nobody waits for its interpreter to shut down)."""
        self.collect(wait=True)
        if self._child.stdin and not self._child.stdin.closed:
            try:
                self._child.stdin.close()
            except OSError:
                pass

    def _fall_back(self) -> None:
        """The child is gone: draw what it had not answered in this process."""
        log.warning("the figure worker stopped; drawing %d pending figure set(s) in this process", len(self._pending))
        while self._pending:
            artifacts, out_dir, temporary, job = self._pending.popleft()
            job.draw(out_dir)
            _upload(artifacts, out_dir, temporary)


def for_job(run: RunConfig, single_run: bool) -> tuple[FigureWorker | None, bool]:
    """``(worker, close it after the job)`` for a job: its own worker for a single run
    (rehearsing its figures), the shared one for a sweep whose jobs run in this process
    (the basic launcher), none where jobs run in worker processes (their figures are
    drawn in place)."""
    if not run.tracking.log_figures:
        return None, False
    if single_run:
        return FigureWorker(rehearse(run)), True
    if _sweep_in_this_process:
        return shared(), False
    return None, False


def sweep_starts(draws: bool) -> None:
    """Called by the sweep callback: the sweep's jobs may share this process's worker,
    started now when they run in this process and draw figures (``draws``)."""
    global _sweep_in_this_process
    _sweep_in_this_process = True
    if draws:
        shared()


def running() -> FigureWorker | None:
    """The worker of this process's sweep if it has one (the sweep report's figures go to
    it, ``src.runs.sweep_report``), else None."""
    return _shared


def shared() -> FigureWorker:
    """The process's worker for a sweep whose jobs run in this process: started by the
    first job, closed by ``close_shared`` when the sweep ends (or at exit)."""
    global _shared
    if _shared is None:
        _shared = FigureWorker()
        atexit.register(close_shared)
    return _shared


def close_shared() -> None:
    global _shared
    if _shared is not None:
        worker, _shared = _shared, None
        worker.close()


def _upload(artifacts: RunArtifacts, out_dir: Path, temporary: bool) -> None:
    """Upload a run's figures, then remove a temporary ``out_dir``; a store that does not
    take them leaves them where they are (a job directory's are uploaded by
    ``python -m src.runs.upload``), with a warning."""
    try:
        artifacts.upload(out_dir)
    except Exception as err:
        log.warning(
            "figures of run %s not uploaded (%s); they are in %s", artifacts.run_id, str(err).splitlines()[0], out_dir
        )
        return
    if temporary:
        shutil.rmtree(out_dir, ignore_errors=True)


def _warm_up() -> None:
    """Import matplotlib and render a throw-away figure (fonts, the PNG writer) while
    the parent is still busy, so that the first run's figures come out at full speed."""
    import io

    from src.runs.figures import learning_curve

    learning_curve({"train_loss": [1.0, 0.5], "train_accuracy": [0.5, 1.0]}, "warm-up").savefig(io.BytesIO())


def rehearse(run: RunConfig) -> FigureJob | None:
    """Figures laid out like a single run's: its data and untrained network, the metrics
    its history will have, its threshold and planned snapshot epochs; None when its data
    cannot be built (the run itself then says why)."""
    from src.runs.build import assemble
    from src.runs.config import ConfigError
    from src.runs.snapshots import snapshot_epochs

    try:
        parts = assemble(run)
    except ConfigError:
        return None
    t = run.trainer
    names = [TRAIN_LOSS, TRAIN_ACCURACY] + ([TRAIN_LOSS_RUNNING] if t.batch_size is not None else [])
    names += [TEST_LOSS, TEST_ACCURACY] if parts.data.has_test else []
    snapshots = None
    if run.tracking.evolution != "never":
        epochs = snapshot_epochs(t.epochs, run.tracking.snapshots)
        snapshots = Snapshots(
            frozenset(epochs), epochs, [parts.net.params] * len(epochs), [parts.net.grads] * len(epochs)
        )
    history = {name: [1.0, 0.5] for name in names}
    return FigureJob("rehearsal", history, parts.net.copy(), parts.data, t.loss_threshold, snapshots)


def main() -> None:
    """The child: draw every job read from stdin; answer ``None`` or the error text."""
    answers = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # stray prints must not corrupt the answers
    _warm_up()
    stdin, stdout = sys.stdin.buffer, answers
    while True:
        try:
            job, out_dir = pickle.load(stdin)
        except EOFError:
            return
        if out_dir is None:  # a rehearsal: drawn, thrown away, not answered
            with tempfile.TemporaryDirectory() as scratch, contextlib.suppress(Exception):
                job.draw(Path(scratch))
            continue
        try:
            job.draw(Path(out_dir))
            answer = None
        except Exception as err:  # reported to the parent, which draws the figures itself
            answer = f"{type(err).__name__}: {err}"
        pickle.dump(answer, stdout)
        stdout.flush()


if __name__ == "__main__":
    main()
