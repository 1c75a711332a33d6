"""One tracked training run: validate the config, train, and log everything to MLflow.

Everything the run produces goes to one MLflow run:

* params: the validated config flattened to dotted keys;
* metrics: ``train_loss``/``train_accuracy`` (``train_loss_running`` on mini-batches,
  and ``test_*``) per epoch, sent by a ``MetricWriter`` thread (every epoch up to 250,
  then thinned; ``history.parquet`` has every epoch); summary metrics ``final_*``,
  ``epochs_run``, ``updates_run``, ``examples_run``, ``epochs_to_threshold`` with
  ``updates_to_threshold`` and ``examples_to_threshold`` (when the threshold was reached
  and held, ``src.runs.loop``), ``first_below_threshold`` (when the loss ever went
  below it), ``epochs_to_full_accuracy`` (the first epoch with every training point
  right, when there was one), ``tail_loss_drop`` (the relative fall of the loss over the
  last tenth of the epochs) and ``train_seconds``;
* inputs: the training and test points as MLflow datasets (``mlflow.log_input``);
* artifacts: ``config.yaml``, ``weights.npz``, ``history.parquet`` (the per-epoch metrics
  as one table, for fast loading by ``src.analysis``), the figures ``learning_curve.png``,
  ``decision_boundary.png`` and ``ground_truth_vs_prediction.png``, and the trained
  network as an MLflow pyfunc model named ``model``;
* tags: the git commit (MLflow's tag) and ``git_dirty``, host and process id, Hydra
  overrides, sweep directory and job number, ``diverged``, ``reached_threshold``,
  ``unstable`` and ``overfitting`` (``training_warnings``; also printed after the summary
  line), ``model_uri``.

Every name is defined once, in ``src.runs.contract``.

With ``trainer.gradcheck`` the analytic gradients are compared with finite differences
before and after training (metric ``gradcheck_max_rel_error`` at step 0 and at the last
epoch); an error above ``trainer.gradcheck_tolerance`` fails the run.

A diverging run (non-finite loss) stops early, is tagged ``diverged=true`` and finishes
normally; an exception marks the run FAILED and an interrupt (Ctrl-C or SIGTERM,
``src.runs.interrupts``) KILLED, and in every case the metrics buffered so far are sent
first; an interrupted run also logs its history, weights and config as they were.
"""

from __future__ import annotations

import logging
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import mlflow
import numpy as np
from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig

from src.engine.encoding import encode_targets
from src.engine.gradcheck import check_gradients
from src.runs import contract as c
from src.runs.build import RunParts, assemble
from src.runs.config import RunConfig, validate
from src.runs.figure_worker import FigureJob, FigureWorker
from src.runs.loop import StackResult, TrainResult, evaluate, fit
from src.runs.metric_writer import MAX_METRICS_PER_BATCH, MetricWriter
from src.runs.progress import Progress
from src.runs.snapshots import Snapshots, layer_statistics, snapshot_epochs
from src.runs.tracking import config_name, flatten, git_tags, open_experiment, process_tags, resolve_tracking_uri

log = logging.getLogger(__name__)


class GradientCheckError(RuntimeError):
    """Backpropagation disagrees with finite differences beyond the configured tolerance."""


@dataclass
class JobContext:
    """Where a run sits in a sweep: its parent MLflow run, its name from the sweep's
    swept values (``src.runs.tracking.sweep_run_name``) and tags describing the job."""

    parent_run_id: str | None = None
    run_name: str | None = None
    tags: dict[str, str] = field(default_factory=dict)


@dataclass
class RunSummary:
    run_id: str
    name: str
    result: TrainResult
    final_metrics: dict[str, float]


def train_and_track(
    cfg: DictConfig,
    job: JobContext | None = None,
    figures: FigureWorker | None = None,
    trained: StackResult | None = None,
) -> RunSummary:
    """Validate ``cfg`` and build the run (raising ``ConfigError`` before anything is
    tracked), then train and log.

    Store round trips per run: the run's creation (with its tags), one ``log_batch`` of
    params, one ``log_input`` per dataset split, the per-epoch points from the
    ``MetricWriter`` thread, one ``log_batch`` of summary metrics, layer statistics and tags, one upload of
    every artifact, and the model. With a ``FigureWorker`` the figures are drawn by its
    child process and uploaded when done; without one they are drawn here. ``trained``:
    the run was trained in a stack (``src.runs.stacked_launcher``); its history and
    parameters are logged as if it had trained here.
    """
    run = validate(cfg)
    job = job or JobContext()
    parts = assemble(run)
    setting = config_name(run)
    name = run.tracking.run_name or job.run_name or setting

    uri = resolve_tracking_uri(run.tracking.uri)
    mlflow.set_tracking_uri(uri)
    client, experiment_id = open_experiment(uri, run.tracking.experiment)
    tags = {**git_tags(), **process_tags(), **job.tags, c.TAG_SETTING: setting}
    with mlflow.start_run(
        experiment_id=experiment_id, run_name=name, parent_run_id=job.parent_run_id, tags=tags
    ) as active:
        run_id = active.info.run_id
        client.log_batch(run_id, params=[Param(k, v) for k, v in flatten(run.to_dict()).items()])
        _log_datasets(run, parts.data)
        writer = MetricWriter(client, run_id, run.trainer.epochs)
        progress = Progress(name, run.trainer.epochs, run.trainer.log_every)
        reached: list[dict[str, float]] = []  # every epoch so far, kept if training is interrupted

        def on_epoch(epoch: int, metrics: dict[str, float]) -> None:
            writer.add(epoch, metrics)
            reached.append(metrics)
            progress(epoch, metrics)

        try:
            if trained is not None:
                result = _replay(trained, parts, writer)
                if trained.interrupted:  # its stack stopped at Ctrl-C or SIGTERM
                    reached.extend({k: v[i] for k, v in result.history.items()} for i in range(result.epochs_run))
                    raise KeyboardInterrupt
            else:
                if run.trainer.gradcheck:
                    _gradient_check(run, parts, step=0)
                result = fit(
                    parts.net,
                    parts.optimizer,
                    parts.objective,
                    parts.data,
                    epochs=run.trainer.epochs,
                    rng=parts.shuffle_rng,
                    batch_size=run.trainer.batch_size,
                    shuffle=run.trainer.shuffle,
                    loss_threshold=run.trainer.loss_threshold,
                    threshold_patience=run.trainer.threshold_patience,
                    on_epoch=on_epoch,
                    snapshot_at=snapshot_epochs(run.trainer.epochs, run.tracking.snapshots),
                )
        except KeyboardInterrupt:
            writer.close()
            client.set_tag(run_id, c.TAG_INTERRUPTED, "true")
            _log_interrupted(client, run_id, run, parts, reached)
            mlflow.end_run("KILLED")
            log.warning("%s: interrupted at epoch %d; every epoch so far is kept (run %s)", name, len(reached), run_id)
            raise
        finally:
            progress.close()
            writer.close()

        final = _final_metrics(parts, result)
        warned = training_warnings(result.history)
        end_tags = {
            c.TAG_DIVERGED: str(result.diverged).lower(),
            c.TAG_REACHED_THRESHOLD: str(result.epochs_to_threshold is not None).lower(),
            **{tag: str(tag in warned).lower() for tag in (c.TAG_UNSTABLE, c.TAG_OVERFITTING)},
        }
        evolution = _evolution(run, job, result)
        if evolution is not None:
            end_tags[c.TAG_LOGGED_IMAGES] = "true"
        now = int(time.time() * 1000)
        metrics = [Metric(key, float(value), now, 0) for key, value in final.items()]
        for key, points in layer_statistics(parts.net.layout, result.snapshots).items():
            metrics.extend(Metric(key, value, now, epoch) for epoch, value in points)
        tags = [RunTag(key, value) for key, value in end_tags.items()]
        for start in range(0, len(metrics), MAX_METRICS_PER_BATCH):
            client.log_batch(run_id, metrics=metrics[start : start + MAX_METRICS_PER_BATCH], tags=tags)
            tags = []
        _log_artifacts(client, experiment_id, run_id, run, parts, result, name, figures, evolution)
        if run.trainer.gradcheck and not result.diverged:
            _gradient_check(run, parts, step=result.epochs_run)
    log.info(_summary_line(name, run_id, result, final))
    for tag, what in warned.items():
        log.warning("%s: %s: %s", name, tag.upper(), what)
    return RunSummary(run_id, name, result, final)


#: A training loss that ends above this many times its best marks the run unstable.
UNSTABLE_RATIO = 2.0
#: A test loss that ends this fraction above its best, while the training loss has fallen
#: since that epoch, marks the run overfitting.
OVERFIT_RISE = 0.1


def training_warnings(history: dict[str, list[float]]) -> dict[str, str]:
    """``{tag: what happened}`` for a run that trained badly: ``unstable`` when its final
    training loss is over ``UNSTABLE_RATIO`` times its best, ``overfitting`` when its test
    loss ended over ``OVERFIT_RISE`` above its best while the training loss fell."""
    found = {}
    train = np.asarray(history.get(c.TRAIN_LOSS, []), dtype=float)
    if len(train) > 1 and np.isfinite(train).all():
        best = int(np.argmin(train))
        if train[-1] > UNSTABLE_RATIO * train[best]:
            found[c.TAG_UNSTABLE] = (
                f"the training loss ended at {train[-1]:.3g}, {train[-1] / train[best]:.1f} times its best "
                f"({train[best]:.3g} at epoch {best + 1})"
            )
    test = np.asarray(history.get(c.TEST_LOSS, []), dtype=float)
    if len(test) > 1 and np.isfinite(test).all():
        best = int(np.argmin(test))
        if test[-1] > (1 + OVERFIT_RISE) * test[best] and train[-1] < train[best]:
            found[c.TAG_OVERFITTING] = (
                f"the test loss rose {100 * (test[-1] / test[best] - 1):.0f}% from its best at epoch {best + 1} "
                "while the training loss fell"
            )
    return found


def _replay(trained: StackResult, parts: RunParts, writer: MetricWriter) -> TrainResult:
    """Put a stacked run's parameters into its network and its epochs into the writer."""
    parts.net.params[...] = trained.params
    history = trained.result.history
    for index, timestamp in enumerate(trained.epoch_times):
        writer.add(index + 1, {name: values[index] for name, values in history.items()}, timestamp)
    return trained.result


def _log_datasets(run: RunConfig, data) -> None:
    """The training and test points as MLflow dataset inputs (contexts ``train`` and
    ``test``), named ``xor-train`` etc. and sourced to the generator and seed that made them."""
    from mlflow.data.code_dataset_source import CodeDatasetSource
    from mlflow.data.numpy_dataset import from_numpy

    source = CodeDatasetSource({"generator": f"src.runs.datasets ({run.dataset.name})", "seed": str(run.trainer.seed)})
    for context, x, y in (("train", data.x_train, data.y_train), ("test", data.x_test, data.y_test)):
        if len(y):
            mlflow.log_input(from_numpy(x, targets=y, name=f"{run.dataset.name}-{context}", source=source), context)


def _log_interrupted(
    client: MlflowClient, run_id: str, run: RunConfig, parts: RunParts, epochs: list[dict[str, float]]
) -> None:
    """An interrupted run's history (every epoch reached), weights (as they were when it
    stopped) and config, as artifacts."""
    import pandas as pd

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        history = pd.DataFrame(epochs)
        history.insert(0, c.EPOCH, np.arange(1, len(epochs) + 1))
        history.to_parquet(out / c.HISTORY_FILE, index=False)
        parts.net.save(out / c.WEIGHTS_FILE)
        (out / c.CONFIG_FILE).write_text(run.to_yaml())
        client.log_artifacts(run_id, str(out))


def _gradient_check(run: RunConfig, parts: RunParts, step: int) -> None:
    """Log the gradient-check error on the training set; raise if above tolerance."""
    net, data = parts.net, parts.data
    error = check_gradients(net, parts.objective, data.x_train, encode_targets(data.y_train, net.sizes[-1], np.float64))
    mlflow.log_metric(c.GRADCHECK_ERROR, error, step=step)
    log.info("gradient check at epoch %d: max relative error %.3g", step, error)
    if not error <= run.trainer.gradcheck_tolerance:
        mlflow.set_tag(c.TAG_GRADCHECK, "failed")
        raise GradientCheckError(
            f"gradient check at epoch {step}: max relative error {error:.3g} "
            f"> tolerance {run.trainer.gradcheck_tolerance}"
        )


def _final_metrics(parts: RunParts, result: TrainResult) -> dict[str, float]:
    """Loss and accuracy of the final parameters, plus run-level counts."""
    final = {
        c.EPOCHS_RUN: result.epochs_run,
        c.UPDATES_RUN: result.epochs_run * result.updates_per_epoch,
        c.EXAMPLES_RUN: result.epochs_run * result.examples_per_epoch,
        c.TRAIN_SECONDS: result.seconds,
    }
    if result.epochs_to_threshold is not None:
        final[c.EPOCHS_TO_THRESHOLD] = result.epochs_to_threshold
        final[c.UPDATES_TO_THRESHOLD] = result.epochs_to_threshold * result.updates_per_epoch
        final[c.EXAMPLES_TO_THRESHOLD] = result.epochs_to_threshold * result.examples_per_epoch
    if result.first_below_threshold is not None:
        final[c.FIRST_BELOW_THRESHOLD] = result.first_below_threshold
    losses = result.history.get(c.TRAIN_LOSS, [])
    if losses:
        before = losses[-1 - max(1, len(losses) // 10)] if len(losses) > 1 else losses[0]
        with np.errstate(divide="ignore", invalid="ignore"):
            final[c.TAIL_LOSS_DROP] = float(np.float64(before - losses[-1]) / before)
    accuracies = np.asarray(result.history.get(c.TRAIN_ACCURACY, []))
    if np.any(accuracies == 1.0):
        final[c.EPOCHS_TO_FULL_ACCURACY] = int(np.argmax(accuracies == 1.0)) + 1
    splits = [(c.TRAIN_LOSS, c.TRAIN_ACCURACY, parts.data.x_train, parts.data.y_train)]
    if parts.data.has_test:
        splits.append((c.TEST_LOSS, c.TEST_ACCURACY, parts.data.x_test, parts.data.y_test))
    with np.errstate(over="ignore", invalid="ignore"):
        for loss_name, accuracy_name, x, y in splits:
            final[c.final(loss_name)], final[c.final(accuracy_name)] = evaluate(parts.net, parts.objective, x, y)
    return final


def _log_artifacts(
    client: MlflowClient,
    experiment_id: str,
    run_id: str,
    run: RunConfig,
    parts: RunParts,
    result: TrainResult,
    name: str,
    figures: FigureWorker | None,
    evolution: Snapshots | None,
) -> None:
    """Weights, history, figures (``tracking.log_figures``) and the pyfunc model
    (``tracking.log_model``); matplotlib and MLflow's model flavour are imported only
    when they are used."""
    import pandas as pd

    data, net = parts.data, parts.net
    threshold = run.trainer.loss_threshold
    job = FigureJob(name, result.history, net.copy(), data, threshold, evolution) if run.tracking.log_figures else None
    if job is not None and figures is not None:
        figures.submit(client, run_id, job)  # drawn by the worker while this process goes on
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        net.save(out / c.WEIGHTS_FILE)
        history = pd.DataFrame({c.EPOCH: np.arange(1, result.epochs_run + 1), **result.history})
        history.to_parquet(out / c.HISTORY_FILE, index=False)
        (out / c.CONFIG_FILE).write_text(run.to_yaml())
        if job is not None and figures is None:
            job.draw(out)
        client.log_artifacts(run_id, str(out))
        if run.tracking.log_model:
            from src.runs.pyfunc_model import log_pyfunc_model

            with np.errstate(over="ignore", invalid="ignore"):
                output = net.predict(data.x_train[:5].astype(net.dtype))
            model_uri = log_pyfunc_model(
                client, experiment_id, run_id, out / c.CONFIG_FILE, out / c.WEIGHTS_FILE, output
            )
            client.set_tag(run_id, c.TAG_MODEL_URI, model_uri)


def _evolution(run: RunConfig, job: JobContext, result: TrainResult) -> Snapshots | None:
    """The snapshots to draw figures of (``tracking.evolution``: in every run, or only in
    a single run, where the figure worker has nothing else to do), or None."""
    wanted = run.tracking.evolution == "always" or (run.tracking.evolution == "single" and job.parent_run_id is None)
    if wanted and run.tracking.log_figures and len(result.snapshots.epochs) > 1:
        return result.snapshots
    return None


def _summary_line(name: str, run_id: str, result: TrainResult, final: dict[str, float]) -> str:
    parts = [f"{name}: {result.epochs_run} epochs", f"loss {final[c.FINAL_TRAIN_LOSS]:.4g}"]
    parts.append(f"accuracy {final[c.FINAL_TRAIN_ACCURACY]:.3f}")
    if c.FINAL_TEST_ACCURACY in final:
        parts.append(f"test accuracy {final[c.FINAL_TEST_ACCURACY]:.3f}")
    if result.epochs_to_threshold is not None:
        parts.append(f"threshold reached at epoch {result.epochs_to_threshold}")
    elif result.first_below_threshold is not None:
        parts.append(f"UNSTABLE: below the threshold at epoch {result.first_below_threshold}, ended above it")
    if result.diverged:
        parts.append("DIVERGED (non-finite loss)")
    parts.append(f"{result.seconds:.2f}s, run {run_id}")
    return ", ".join(parts)
