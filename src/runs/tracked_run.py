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
  last tenth of the epochs) and ``train_seconds``; per-layer weight and gradient
  statistics at the training snapshots (``src.runs.snapshots``, step = epoch);
* inputs: the training and test points as MLflow datasets (``dataset_inputs``);
* artifacts: ``config.yaml``, ``weights.npz``, ``history.parquet`` (the per-epoch metrics
  as one table, for fast loading by ``src.analysis``), the figures ``learning_curve.png``,
  ``decision_boundary.png`` and ``ground_truth_vs_prediction.png`` (in a single run also
  ``boundary_evolution.png``, ``weight_distributions.png`` and the stepped images of the
  boundary, ``tracking.evolution``), and the trained network as an MLflow pyfunc model
  named ``model``;
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
first; an interrupted run also logs its history and weights as they were.

Local first: the run's job directory (``src.runs.job_dir``) gets its config before the
run is created in the store, and its history, weights, summary metrics and tags when
training ends, however it ends, before they are sent. The store is checked before
anything is tracked (``src.runs.store``); one that stops answering during the run is
retried for ``tracking.outage_wait`` seconds, training going on meanwhile, and then the
run ends locally with the command that uploads it (``python -m src.runs.upload``).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from omegaconf import DictConfig

from src.engine.encoding import encode_targets
from src.engine.gradcheck import check_gradients
from src.engine.network import MLP
from src.runs import contract as c
from src.runs.build import RunParts, assemble
from src.runs.config import RunConfig, validate
from src.runs.datasets import Dataset
from src.runs.figure_worker import FigureJob, FigureWorker
from src.runs.job_dir import JobDir
from src.runs.loop import StackResult, TrainResult, evaluate, fit
from src.runs.progress import Progress
from src.runs.snapshots import Snapshots, layer_statistics, snapshot_epochs
from src.runs.store import StoreUnavailable, check_store, one_line, retry_while_down, unavailable
from src.runs.tracking import (
    RunArtifacts,
    config_name,
    context_tags,
    flatten,
    git_tags,
    open_experiment,
    process_tags,
    resolve_tracking_uri,
)

if TYPE_CHECKING:  # MLflow is imported once the store answered
    from mlflow.tracking import MlflowClient

    from src.runs.metric_writer import MetricWriter

log = logging.getLogger(__name__)


class GradientCheckError(RuntimeError):
    """Backpropagation disagrees with finite differences beyond the configured tolerance."""


@dataclass
class JobContext:
    """Where a run sits in a sweep: its parent MLflow run, its name from the sweep's
    swept values (``src.runs.tracking.sweep_run_name``) and tags describing the job
    (among them ``output_dir``, its job directory)."""

    parent_run_id: str | None = None
    run_name: str | None = None
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def output_dir(self) -> str | None:
        return self.tags.get(c.TAG_OUTPUT_DIR)


@dataclass
class RunSummary:
    run_id: str
    name: str
    result: TrainResult
    final_metrics: dict[str, float]


def train_and_track(
    cfg: DictConfig | RunConfig,
    job: JobContext | None = None,
    figures: FigureWorker | None = None,
    trained: StackResult | None = None,
) -> RunSummary:
    """Validate ``cfg`` (unless it is a validated ``RunConfig``) and build the run
    (raising ``ConfigError`` before anything is tracked), check the store
    (``StoreUnavailable`` before anything is tracked), then train and log.

    Local first: the config, then the history, weights, summary metrics and tags go to
    the job directory (``src.runs.job_dir``) before the store is asked for them. Store
    round trips per run: the run's creation (with its tags), one ``log_batch`` of params,
    one ``log_inputs`` of the dataset splits, the per-epoch points from the
    ``MetricWriter`` thread, one ``log_batch`` of the end's tags, one insert of summary
    metrics (``src.runs.metric_store``), one upload of every artifact, and the model. A
    store that stops answering is retried for ``tracking.outage_wait`` seconds; then the
    run ends locally, raising ``StoreUnavailable`` with the command that uploads it. With
    a ``FigureWorker`` the figures are drawn by its child process and uploaded when done; without one they are
    drawn here. ``trained``: the run was trained in a stack
    (``src.runs.stacked_launcher``); its history and parameters are logged as if it had
    trained here.
    """
    run = cfg if isinstance(cfg, RunConfig) else validate(cfg)
    job = job or JobContext()
    parts = assemble(run)
    setting = config_name(run)
    name = run.tracking.run_name or job.run_name or setting
    uri = resolve_tracking_uri(run.tracking.uri)
    check_store(uri, run.tracking.timeout)

    import mlflow
    from mlflow.entities import Param
    from mlflow.exceptions import MlflowException

    from src.runs.metric_writer import MetricWriter

    mlflow.set_tracking_uri(uri)
    tags = {**context_tags(), **git_tags(), **process_tags(), **job.tags, c.TAG_SETTING: setting}
    if job.parent_run_id:
        tags[c.TAG_PARENT_RUN] = job.parent_run_id
    local = JobDir.open(job.output_dir)
    start_time = int(time.time() * 1000)
    record = {"tracking_uri": uri, "experiment": run.tracking.experiment, "run_name": name}
    local.start(run.to_yaml(), {**record, "start_time": start_time, "tags": tags})
    try:
        client, experiment_id = open_experiment(uri, run.tracking.experiment)
        info = client.create_run(experiment_id, start_time=start_time, tags=tags, run_name=name).info
    except MlflowException as err:
        raise unavailable(uri, run.tracking.timeout, one_line(err)) from None
    run_id, artifacts = info.run_id, RunArtifacts(client, info.run_id, info.artifact_uri)
    local.stored_in(uri, run_id, complete=False)
    writer = MetricWriter(client, run_id, run.trainer.epochs, outage_seconds=run.tracking.outage_wait)
    progress = Progress(name, run.trainer.epochs, run.trainer.log_every)

    def on_epoch(epoch: int, metrics: dict[str, float]) -> None:
        writer.add(epoch, metrics)
        progress(epoch, metrics)

    try:
        client.log_batch(run_id, params=[Param(k, v) for k, v in flatten(run.to_dict()).items()])
        log_dataset_inputs(client, run_id, run, parts.data)
        if trained is not None:
            result = _replay(trained, parts, writer)
            if trained.interrupted:  # its stack stopped at Ctrl-C or SIGTERM
                raise KeyboardInterrupt
        else:
            if run.trainer.gradcheck:
                _gradient_check(client, run_id, run, parts, step=0)
            try:
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
            finally:
                progress.close()
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
        layers = layer_statistics(parts.net.layout, result.snapshots)
        local.save(
            writer.points,
            "FINISHED",
            now,
            parts.net,
            tags={**tags, **end_tags},
            metrics=final,
            metrics_time=now,
            layer_statistics=layers,
        )
        _store_the_end(
            client,
            experiment_id,
            artifacts,
            run,
            parts,
            result,
            name,
            figures,
            local,
            writer,
            {**final, **layers},
            end_tags,
            now,
            evolution,
        )
    except KeyboardInterrupt:
        # Every epoch reached, and the weights as they were, stay in the job directory and
        # go to the store: the points through the writer, the history and weights as artifacts.
        tags_now = {**tags, c.TAG_INTERRUPTED: "true"}
        local.save(writer.points, "KILLED", int(time.time() * 1000), parts.net, tags=tags_now)
        writer.close()
        artifacts.upload(local.artifacts)
        client.set_tag(run_id, c.TAG_INTERRUPTED, "true")
        client.set_terminated(run_id, "KILLED")
        local.discard()
        log.warning(
            "%s: interrupted at epoch %d; every epoch so far is kept (run %s)", name, len(writer.points), run_id
        )
        raise
    except StoreUnavailable as err:
        raise StoreUnavailable(
            f"{err}; the run is kept in {local.path}: upload it with: uv run python -m src.runs.upload {local.path}"
        ) from None
    except Exception:
        local.save(writer.points, "FAILED", int(time.time() * 1000))
        if writer.close():
            client.set_terminated(run_id, "FAILED")
            local.discard()
        raise
    local.stored_in(uri, run_id, complete=True)
    local.discard()
    log.info(_summary_line(name, run_id, result, final))
    for tag, what in warned.items():
        log.warning("%s: %s: %s", name, tag.upper(), what)
    return RunSummary(run_id, name, result, final)


def _store_the_end(
    client: MlflowClient,
    experiment_id: str,
    artifacts: RunArtifacts,
    run: RunConfig,
    parts: RunParts,
    result: TrainResult,
    name: str,
    figures: FigureWorker | None,
    local: JobDir,
    writer: MetricWriter,
    final: dict[str, float | list[tuple[int, float]]],
    end_tags: dict[str, str],
    now: int,
    evolution: Snapshots | None,
) -> None:
    """Send what the run left in its job directory to the store: the rest of the
    per-epoch points, the summary metrics, layer statistics (``src.runs.snapshots``) and
    tags (``now``: their time), the figures (with ``evolution``'s, when given), the artifacts
    and the model, each retried while the store does not answer, for
    ``tracking.outage_wait`` seconds in all."""
    from mlflow.entities import RunTag

    from src.runs.metric_store import log_metrics

    run_id = artifacts.run_id
    if run.tracking.log_figures:
        job = FigureJob(name, result.history, parts.net.copy(), parts.data, run.trainer.loss_threshold, evolution)
        if figures is not None:  # drawn by the worker while this process goes on
            figures.submit(artifacts, job, None if local.temporary else local.figures)
        else:
            job.draw(local.artifacts)
    uri, timeout = client.tracking_uri, run.tracking.timeout
    if not writer.close():
        raise unavailable(uri, timeout, f"it did not take the run's metrics for {writer.outage_seconds:g} s")
    deadline = time.monotonic() + run.tracking.outage_wait

    def send(call):
        return retry_while_down(call, uri, timeout, deadline)

    send(lambda: client.log_batch(run_id, tags=[RunTag(k, v) for k, v in end_tags.items()]))
    send(lambda: log_metrics(client, run_id, summary_metrics(final, now)))
    send(lambda: artifacts.upload(local.artifacts))
    if run.tracking.log_model:
        send(lambda: log_model(client, experiment_id, run_id, local.artifacts, parts.net, parts.data))
    if run.trainer.gradcheck and not result.diverged:
        _gradient_check(client, run_id, run, parts, step=result.epochs_run)
    send(lambda: client.set_terminated(run_id, "FINISHED"))


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
    writer.add_epochs(trained.result.history, trained.epoch_times)
    return trained.result


def log_dataset_inputs(client: MlflowClient, run_id: str, run: RunConfig, data: Dataset) -> None:
    """Log ``dataset_inputs`` on the run, once more if the store refused them: MLflow looks
    a dataset up, then inserts it, so runs starting at the same moment (joblib workers, a
    SLURM array) can race to insert the same one; the second attempt finds it and links it."""
    from mlflow.exceptions import MlflowException

    inputs = dataset_inputs(run, data)
    try:
        client.log_inputs(run_id, datasets=inputs)
    except MlflowException:
        client.log_inputs(run_id, datasets=inputs)


def dataset_inputs(run: RunConfig, data: Dataset) -> list:
    """The training and test points as MLflow dataset inputs (contexts ``train`` and
    ``test``), named ``xor-train`` etc. and sourced to the generator and seed that made them."""
    from mlflow.data.code_dataset_source import CodeDatasetSource
    from mlflow.data.numpy_dataset import from_numpy
    from mlflow.entities import DatasetInput, InputTag
    from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT

    source = CodeDatasetSource({"generator": f"src.runs.datasets ({run.dataset.name})", "seed": str(run.trainer.seed)})
    return [
        DatasetInput(
            from_numpy(x, targets=y, name=f"{run.dataset.name}-{context}", source=source)._to_mlflow_entity(),
            [InputTag(MLFLOW_DATASET_CONTEXT, context)],
        )
        for context, x, y in (("train", data.x_train, data.y_train), ("test", data.x_test, data.y_test))
        if len(y)
    ]


def _gradient_check(client: MlflowClient, run_id: str, run: RunConfig, parts: RunParts, step: int) -> None:
    """Log the gradient-check error on the training set; raise if above tolerance."""
    net, data = parts.net, parts.data
    error = check_gradients(net, parts.objective, data.x_train, encode_targets(data.y_train, net.sizes[-1], np.float64))
    client.log_metric(run_id, c.GRADCHECK_ERROR, error, step=step)
    log.info("gradient check at epoch %d: max relative error %.3g", step, error)
    if not error <= run.trainer.gradcheck_tolerance:
        client.set_tag(run_id, c.TAG_GRADCHECK, "failed")
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


def log_model(client: MlflowClient, experiment_id: str, run_id: str, artifacts: Path, net: MLP, data: Dataset) -> None:
    """The trained network as the run's pyfunc model, from the ``config.yaml`` and
    ``weights.npz`` in ``artifacts`` (its input example: the first training points of
    ``data``), and its ``model_uri`` tag."""
    from src.runs.pyfunc_model import log_pyfunc_model

    with np.errstate(over="ignore", invalid="ignore"):
        output = net.predict(data.x_train[:5].astype(net.dtype))
    model_uri = log_pyfunc_model(
        client, experiment_id, run_id, artifacts / c.CONFIG_FILE, artifacts / c.WEIGHTS_FILE, output
    )
    client.set_tag(run_id, c.TAG_MODEL_URI, model_uri)


def summary_metrics(metrics: dict[str, float | list[tuple[int, float]]], timestamp: int) -> list:
    """A run's summary metrics (step 0) and per-layer statistics (``[(epoch, value), ...]``,
    step = epoch) as MLflow metrics, all at ``timestamp``."""
    from mlflow.entities import Metric

    points = []
    for key, value in metrics.items():
        if isinstance(value, list):
            points.extend(Metric(key, float(v), timestamp, int(epoch)) for epoch, v in value)
        else:
            points.append(Metric(key, float(value), timestamp, 0))
    return points


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
