"""The run-artifact contract: every name a run writes and every reader looks up.

A tracked run (``src.runs.tracked_run``) writes these artifacts, tags and metrics;
the sweep callback, the pyfunc model and the loaders of ``src.analysis`` read them
back by the same names. Nothing else spells them out.
"""

from __future__ import annotations

# --- artifacts of a run --------------------------------------------------------------
CONFIG_FILE = "config.yaml"  #: the validated config, as YAML
WEIGHTS_FILE = "weights.npz"  #: W0, b0, W1, b1, ... (``MLP.save``)
HISTORY_FILE = "history.parquet"  #: per-epoch metrics: ``epoch``, ``timestamp`` and one column per metric
EPOCH = "epoch"  #: the 1-based epoch column of the history (and the metrics' step)
TIMESTAMP = "timestamp"  #: the history's column of when each epoch ended (ms since 1970, the points' timestamps)
LEARNING_CURVE_FILE = "learning_curve.png"
DECISION_BOUNDARY_FILE = "decision_boundary.png"
PREDICTION_FILE = "ground_truth_vs_prediction.png"
#: Decision boundaries at the training snapshots (``src.runs.snapshots``), one panel each.
BOUNDARY_EVOLUTION_FILE = "boundary_evolution.png"
#: Each layer's weight distribution at the training snapshots.
WEIGHT_DISTRIBUTIONS_FILE = "weight_distributions.png"
#: The key of the decision boundary's stepped images (``mlflow.log_image(key=..., step=epoch)``).
BOUNDARY_IMAGE_KEY = "decision_boundary"
IMAGES_DIR = "images"  #: the run's artifact folder of stepped images, as ``log_image`` names it
MODEL_NAME = "model"  #: the pyfunc model's name within the run
#: In a sweep directory: the id of the sweep's parent run (a record for people and
#: scripts; each job gets the id through its own config, see ``PARENT_RUN_ENV``).
PARENT_RUN_FILE = "mlflow_parent_run_id"
#: The environment variable that carries a sweep's parent run id to every job: set in
#: each job's config (``hydra.job.env_set``), so it travels with the job to any launcher.
PARENT_RUN_ENV = "BACKPROP_PARENT_RUN_ID"
#: In a sweep directory: the sweep's plan, read by every job: the keys it varies (run
#: names), how many jobs it launches and when it started (progress).
SWEEP_PLAN_FILE = "sweep_plan.yaml"
#: On an interrupted sweep's parent: the jobs that never started, one per line
#: (``#k overrides``, or ``#k`` when the sweeper cannot list its jobs in advance).
JOBS_NOT_STARTED_FILE = "jobs_not_started.txt"
#: In a sweep directory once the sweep was interrupted (it holds the signal's name): a
#: job that a launcher hands out afterwards does not start.
SWEEP_INTERRUPTED_FILE = "interrupted"

#: In a job's output directory (``src.runs.job_dir``): the run's artifacts, written
#: there before they are uploaded ...
JOB_ARTIFACTS_DIR = "artifacts"
#: ... the figures drawn by the figure worker ...
JOB_FIGURES_DIR = "figures"
#: ... and the run's record: its name, tags, summary metrics, status, and its id in each store.
JOB_RECORD_FILE = "mlflow_run.json"

# --- tags ------------------------------------------------------------------------------
TAG_SWEEP = "sweep"  #: "true" on a sweep's parent run
TAG_SWEEP_DIR = "sweep_dir"
TAG_JOB_NUM = "job_num"
TAG_OVERRIDES = "hydra_overrides"
TAG_LAUNCHER = "launcher"  #: on a sweep's parent run: its hydra/launcher choice (basic, joblib, stacked, ...)
TAG_OUTPUT_DIR = "output_dir"
#: MLflow's own code-version tags, set from the working directory's checkout
#: (``src.runs.tracking.git_tags``) on every run, sweep parents and worker jobs alike.
TAG_GIT_COMMIT = "mlflow.source.git.commit"
TAG_GIT_BRANCH = "mlflow.source.git.branch"
TAG_GIT_DIRTY = "git_dirty"
#: MLflow's own kind of an experiment (its UI's experiment-kind selector shows it), set on
#: the experiments the harness creates: model training, not GenAI development.
TAG_EXPERIMENT_KIND, EXPERIMENT_KIND = "mlflow.experimentKind", "custom_model_development"
TAG_DIVERGED = "diverged"  #: "true" when the loss became non-finite
TAG_REACHED_THRESHOLD = "reached_threshold"
TAG_UNSTABLE = "unstable"  #: "true" when the training loss ended well above its best
TAG_OVERFITTING = "overfitting"  #: "true" when the test loss rose from its best while the training loss fell
TAG_INTERRUPTED = "interrupted"  #: "true" on a run (or sweep) stopped by Ctrl-C or SIGTERM
TAG_HOST = "host"  #: the host name of the run's process
TAG_PID = "pid"  #: the process id of the run's process (on ``host``)
#: Why ``python -m src.runs.stale --close`` closed a run its process had left RUNNING.
TAG_STALE = "closed_as_stale"
TAG_GRADCHECK = "gradcheck"  #: "failed" when the gradient check failed the run
TAG_MODEL_URI = "model_uri"
#: The config's short form (``xor-adam-2x8-tanh-s0``): a sweep's child is named by what
#: the sweep varies, and this tag keeps the fixed context.
TAG_SETTING = "setting"
TAG_DESCRIPTION = "mlflow.note.content"  #: MLflow's run description
TAG_PARENT_RUN = "mlflow.parentRunId"  #: MLflow's own link from a child to its parent
TAG_LOGGED_IMAGES = "mlflow.loggedImages"  #: MLflow's mark of a run with stepped images

# --- params the readers look up (a run's params are its config's dotted keys) ---------
PARAM_SEED = "trainer.seed"
PARAM_PHASE = "study.phase"  #: ``tune`` or ``report`` under ``hydra/sweeper=tuned``

# --- metrics ---------------------------------------------------------------------------
TRAIN_LOSS = "train_loss"  #: the whole training set under the end-of-epoch weights
#: Mini-batch runs: the mean of the epoch's batch losses, each taken before its update.
TRAIN_LOSS_RUNNING = "train_loss_running"
TRAIN_ACCURACY = "train_accuracy"
TEST_LOSS = "test_loss"
TEST_ACCURACY = "test_accuracy"
EPOCHS_RUN = "epochs_run"
EPOCHS_TO_THRESHOLD = "epochs_to_threshold"
EPOCHS_TO_FULL_ACCURACY = "epochs_to_full_accuracy"
#: The first epoch below the threshold, whether or not the loss stayed there.
FIRST_BELOW_THRESHOLD = "first_below_threshold"
UPDATES_RUN = "updates_run"  #: parameter updates made (epochs x updates per epoch)
EXAMPLES_RUN = "examples_run"  #: training examples seen (epochs x training points)
UPDATES_TO_THRESHOLD = "updates_to_threshold"
EXAMPLES_TO_THRESHOLD = "examples_to_threshold"
#: Relative fall of ``train_loss`` over the last tenth of the epochs run, (L[e-k] - L[e]) / L[e-k]:
#: about 0 on a plateau.
TAIL_LOSS_DROP = "tail_loss_drop"
TRAIN_SECONDS = "train_seconds"
GRADCHECK_ERROR = "gradcheck_max_rel_error"
#: Per-layer statistics at the training snapshots (``src.runs.snapshots``).
LAYER_STATISTICS = ("weight_norm", "weight_std", "weight_min", "weight_max", "grad_norm")
JOBS_NOT_STARTED = "jobs_not_started"  #: on an interrupted sweep's parent


def layer_metric(layer: int, statistic: str) -> str:
    """A per-layer metric's name, e.g. ``layer0.weight_norm`` (layer 0: the input layer's weights)."""
    return f"layer{layer}.{statistic}"


def final(metric: str) -> str:
    """The summary metric of the trained weights, e.g. ``final_train_loss``."""
    return f"final_{metric}"


FINAL_TRAIN_LOSS = final(TRAIN_LOSS)
FINAL_TRAIN_ACCURACY = final(TRAIN_ACCURACY)
FINAL_TEST_LOSS = final(TEST_LOSS)
FINAL_TEST_ACCURACY = final(TEST_ACCURACY)
#: Summary metrics every run may log (the ``epochs_to_*`` only when reached).
SUMMARY_METRICS = (
    FINAL_TRAIN_LOSS,
    FINAL_TRAIN_ACCURACY,
    EPOCHS_RUN,
    EPOCHS_TO_THRESHOLD,
    EPOCHS_TO_FULL_ACCURACY,
    FIRST_BELOW_THRESHOLD,
    UPDATES_RUN,
    EXAMPLES_RUN,
    UPDATES_TO_THRESHOLD,
    EXAMPLES_TO_THRESHOLD,
    TAIL_LOSS_DROP,
    TRAIN_SECONDS,
)
#: What a study judges its runs on (``study.outcome`` in ``conf/experiment/``):
#: how fast the loss threshold or 100% train accuracy is reached, or the final accuracy
#: (held out when the runs have a test split).
OUTCOMES = (EPOCHS_TO_THRESHOLD, EPOCHS_TO_FULL_ACCURACY, "final_accuracy")
