"""Figures logged with every run, drawn on matplotlib ``Figure`` objects (no GUI backend).

Margins are fixed rather than computed by a layout engine, and labels are plain text
(no mathtext), which keeps drawing and saving a figure at a few tens of milliseconds.

Colours follow the reference labs: class 0 red, class 1 blue (further classes from
matplotlib's tab10 palette).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, NullLocator
from matplotlib.transforms import Bbox

from src.engine.encoding import predict_labels
from src.engine.network import MLP
from src.runs.contract import (
    BOUNDARY_EVOLUTION_FILE,
    BOUNDARY_IMAGE_KEY,
    DECISION_BOUNDARY_FILE,
    IMAGES_DIR,
    LEARNING_CURVE_FILE,
    PREDICTION_FILE,
    TEST_ACCURACY,
    TEST_LOSS,
    TRAIN_ACCURACY,
    TRAIN_LOSS,
    TRAIN_LOSS_RUNNING,
    WEIGHT_DISTRIBUTIONS_FILE,
)
from src.runs.datasets import Dataset
from src.runs.snapshots import Snapshots

#: PNG compression: zlib's fastest level writes a figure in a third of the default's time,
#: for files about half again as large.
PNG_OPTIONS = {"compress_level": 1}
#: The stepped images' small WebP copies (MLflow's UI shows those): libwebp's fastest
#: method encodes a panel in a quarter of the default's time, at the same quality.
WEBP_OPTIONS = {"method": 0}
FIGURE_DPI = 100

_CLASS_COLOURS = ["#d62728", "#1f4eb4", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"]


def _class_cmap(n_classes: int) -> ListedColormap:
    return ListedColormap(_CLASS_COLOURS[: max(n_classes, 2)])


#: Most points a learning curve draws per line: a longer history keeps the minimum and
#: the maximum of each of ``MAX_CURVE_POINTS / 2`` buckets, so spikes and oscillations
#: stay visible (a 100 000-epoch curve draws in 0.2 s instead of 0.7 s).
MAX_CURVE_POINTS = 2000


def curve_points(values: list[float]) -> tuple[np.ndarray, np.ndarray]:
    """``(epochs, values)`` to draw for a per-epoch history (epochs are 1-based)."""
    v = np.asarray(values, dtype=float)
    epochs = np.arange(1, len(v) + 1)
    if len(v) <= MAX_CURVE_POINTS:
        return epochs, v
    starts = np.linspace(0, len(v), MAX_CURVE_POINTS // 2, endpoint=False).astype(int)
    low, high = np.minimum.reduceat(v, starts), np.maximum.reduceat(v, starts)
    x = np.append(np.repeat(epochs[starts], 2), len(v))
    return x, np.append(np.column_stack([low, high]).ravel(), v[-1])


#: (loss metric, accuracy metric or None, legend label, colour) of each curve a learning
#: curve may show, in drawing order.
CURVES = (
    (TRAIN_LOSS, TRAIN_ACCURACY, "training set", "C0"),
    (TRAIN_LOSS_RUNNING, None, "running mean of batch losses", "C1"),
    (TEST_LOSS, TEST_ACCURACY, "test set", "C2"),
)


def _curves(history: dict[str, list[float]]) -> list[tuple]:
    """The ``CURVES`` a history has."""
    return [curve for curve in CURVES if curve[0] in history]


def set_title(ax, title: str) -> None:
    """``ax``'s title just above it: at a fixed height, which matplotlib otherwise finds
    at every draw by measuring every tick label (an eighth of the drawing time); nothing
    of these figures is drawn above an axes."""
    ax.set_title(title, y=1.0)


def learning_curve(history: dict[str, list[float]], title: str = "", threshold: float | None = None) -> Figure:
    """Loss (log scale) and accuracy per epoch: the training set, the running mean of the
    batch losses (mini-batch runs) and the test set when present; ``threshold`` as a
    dotted line on the loss."""
    fig = Figure(figsize=(10, 4))
    fig.subplots_adjust(left=0.09, right=0.98, bottom=0.13, top=0.84, wspace=0.24)  # room for "0.0001" and its label
    ax_loss, ax_acc = fig.subplots(1, 2)
    for loss, accuracy, label, colour in _curves(history):
        style = {"linestyle": "--", "linewidth": 1} if accuracy is None else {}
        ax_loss.plot(*curve_points(history[loss]), label=label, color=colour, **style)
        if accuracy is not None:
            ax_acc.plot(*curve_points(history[accuracy]), label=label, color=colour)
    if threshold is not None:
        ax_loss.axhline(threshold, color="0.3", linestyle=":", linewidth=1, label=f"loss threshold {threshold:g}")
    ax_loss.set(xlabel="epoch", ylabel="loss", yscale="log")
    set_title(ax_loss, "Loss")
    ax_loss.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))  # no mathtext to parse
    ax_loss.yaxis.set_minor_locator(NullLocator())  # eight ticks a decade: a fifth of the drawing time
    ax_acc.set(xlabel="epoch", ylabel="accuracy", ylim=(-0.02, 1.02))
    set_title(ax_acc, "Accuracy")
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    return fig


def legend_handles(n_classes: int, has_test: bool) -> list:
    """Legend entries of a decision-boundary plot: one colour per class (region and
    points), then the train (o) and test (X) markers."""
    from matplotlib.lines import Line2D

    colours = _class_cmap(n_classes).colors
    handles = [
        Line2D([], [], marker="s", linestyle="", markersize=9, color=colours[k], alpha=0.6, label=f"class {k}")
        for k in range(max(n_classes, 2))
    ]
    handles.append(Line2D([], [], marker="o", linestyle="", color="0.5", markeredgecolor="k", label="train point"))
    if has_test:
        handles.append(Line2D([], [], marker="X", linestyle="", color="0.5", markeredgecolor="k", label="test point"))
    return handles


def draw_decision_boundary(
    ax, net: MLP, data: Dataset, title: str = "", resolution: int = 200, legend: bool = True
) -> None:
    """Predicted class over a grid covering the data (shaded), with train (o) and test (X)
    points coloured by their true class; ``legend`` names the classes and markers."""
    x_all = np.concatenate([data.x_train, data.x_test])
    low, high = x_all.min(axis=0), x_all.max(axis=0)
    pad = 0.1 * np.maximum(high - low, 1e-9)
    g0, g1 = np.meshgrid(
        np.linspace(low[0] - pad[0], high[0] + pad[0], resolution),
        np.linspace(low[1] - pad[1], high[1] + pad[1], resolution),
    )
    grid = np.column_stack([g0.ravel(), g1.ravel()]).astype(net.dtype)
    with np.errstate(over="ignore", invalid="ignore"):
        labels = predict_labels(net.predict(grid)).reshape(g0.shape)
    cmap = _class_cmap(data.n_classes)
    ax.contourf(g0, g1, labels, levels=np.arange(data.n_classes + 1) - 0.5, cmap=cmap, alpha=0.25)
    kwargs = dict(cmap=cmap, vmin=0, vmax=max(data.n_classes, 2) - 1, edgecolors="k", linewidths=0.4)
    ax.scatter(data.x_train[:, 0], data.x_train[:, 1], c=data.y_train, marker="o", s=28, label="train", **kwargs)
    if data.has_test:
        ax.scatter(data.x_test[:, 0], data.x_test[:, 1], c=data.y_test, marker="X", s=40, label="test", **kwargs)
    if legend:
        ax.legend(handles=legend_handles(data.n_classes, data.has_test), loc="best", fontsize=7, framealpha=0.8)
    ax.set(xlabel="x₁", ylabel="x₂", xlim=(g0[0, 0], g0[0, -1]), ylim=(g1[0, 0], g1[-1, 0]))
    set_title(ax, title or "Decision boundary")


def decision_boundary(net: MLP, data: Dataset, title: str = "", resolution: int = 200) -> Figure:
    fig = Figure(figsize=(5.5, 5))
    fig.subplots_adjust(left=0.13, right=0.97, bottom=0.11, top=0.93)
    draw_decision_boundary(fig.subplots(), net, data, title, resolution)
    return fig


def ground_truth_vs_prediction(
    x: np.ndarray, y: np.ndarray, predicted: np.ndarray, n_classes: int, title: str = ""
) -> Figure:
    """The training points coloured by their true class (left) and by the predicted class
    (right), the misclassified ones circled in black on both, with the accuracy."""
    fig = Figure(figsize=(10, 5))
    fig.subplots_adjust(left=0.06, right=0.98, bottom=0.16, top=0.86, wspace=0.2)
    cmap = _class_cmap(n_classes)
    for ax, labels, name in zip(fig.subplots(1, 2), (y, predicted), ("Ground truth", "Prediction"), strict=True):
        ax.scatter(x[:, 0], x[:, 1], c=labels, cmap=cmap, vmin=0, vmax=max(n_classes, 2) - 1, s=28)
        ax.scatter([], [], s=110, facecolors="none", edgecolors="k", linewidths=1.2)
        ax.set(xlabel="x₁", ylabel="x₂")
        set_title(ax, name)
    handles = legend_handles(n_classes, has_test=False)[:-1]
    handles.append(_misclassified_handle())
    fig.legend(handles=handles, loc="lower center", ncols=len(handles), fontsize=8, frameon=False)
    _mark_misclassified(fig, x, y, predicted, title)
    return fig


def _misclassified_handle():
    from matplotlib.lines import Line2D

    return Line2D(
        [], [], marker="o", linestyle="", markersize=10, markerfacecolor="none", color="k", label="misclassified"
    )


def _mark_misclassified(fig: Figure, x: np.ndarray, y: np.ndarray, predicted: np.ndarray, title: str) -> None:
    """Circle the misclassified points on both panels and state the accuracy in the title."""
    wrong = predicted != y
    for ax in fig.axes:
        ax.collections[1].set_offsets(x[wrong] if wrong.any() else np.empty((0, 2)))
    accuracy = f"training accuracy {1 - wrong.mean():.3f} ({int(wrong.sum())} of {len(y)} misclassified)"
    fig.suptitle(f"{title}: {accuracy}" if title else accuracy)


class RunFigures:
    """The figures of a run. The three of every run are kept from one run to the next: a
    run whose figures have the same layout (test split or not, number of classes, number
    of points) updates the previous run's lines, points and boundary instead of building
    figures and axes anew, which saves about 40% of the drawing time in a sweep (and a
    single run's figures reuse its rehearsal's, ``src.runs.figure_worker``). With
    training snapshots, also the boundary's evolution (kept alike), the weight distributions and one
    stepped image of the boundary per snapshot (``BOUNDARY_IMAGE_KEY``, step = epoch): the
    evolution's panels with their titles, cut out of its rendered pixels (about 220 by 245
    pixels; MLflow's UI shows stepped images at most 256 wide), so that no boundary is
    drawn twice.

    What stays from run to run is rendered once (``Blit``), and each run draws over those
    pixels only what is its own: the learning curve's loss panel, accuracy curves and
    legend (while the epochs are the same); on the same data (a sweep's seeds aside, its
    usual case) the decision boundary and the points over it, and the predicted classes
    and misclassified points. That takes a third of the drawing time off and gives the
    very pixels of a whole drawing."""

    def __init__(self) -> None:
        self._curve: tuple[tuple, Figure] | None = None
        self._boundary: Figure | None = None
        self._prediction: tuple[tuple, Figure] | None = None
        self._blits: dict[str, Blit] = {}
        self._evolution: tuple[tuple, Figure] | None = None
        self._distributions: tuple[tuple, Figure] | None = None

    def draw(
        self,
        history: dict[str, list[float]],
        net: MLP,
        data: Dataset,
        title: str,
        out_dir: Path,
        threshold: float | None = None,
        snapshots: Snapshots | None = None,
    ) -> None:
        """Write the run's PNG files into ``out_dir`` (stepped images under ``images/``)."""
        with np.errstate(over="ignore", invalid="ignore"):
            predicted = predict_labels(net.predict(data.x_train.astype(net.dtype)))
        drawn = {
            LEARNING_CURVE_FILE: self._learning_curve(history, title, threshold),
            DECISION_BOUNDARY_FILE: self._decision_boundary(net, data, title),
            PREDICTION_FILE: self._ground_truth_vs_prediction(data, predicted, title),
        }
        if snapshots is not None and len(snapshots.epochs) > 1:
            drawn[WEIGHT_DISTRIBUTIONS_FILE] = self._weight_distributions(net, snapshots, title)
            _evolution_and_stepped_images(self._boundary_evolution(net, data, snapshots, title), snapshots, out_dir)
        shared = {  # what stays from run to run, and a run's own artists
            LEARNING_CURVE_FILE: _curve_parts,
            DECISION_BOUNDARY_FILE: lambda fig: (_data_key(data, test=True), _boundary_own(fig)),
            PREDICTION_FILE: lambda fig: (_data_key(data, test=False), _prediction_own(fig)),
        }
        for filename, fig in drawn.items():
            if filename not in shared:
                fig.savefig(out_dir / filename, dpi=FIGURE_DPI, pil_kwargs=PNG_OPTIONS)
                continue
            blit = self._blits.get(filename)
            if blit is None or blit.fig is not fig:
                blit = self._blits[filename] = Blit(fig)
            blit.save(out_dir / filename, *shared[filename](fig))

    def _boundary_evolution(self, net: MLP, data: Dataset, snapshots: Snapshots, title: str) -> Figure:
        key = (len(snapshots.epochs), data.n_classes, data.has_test)
        kept = self._evolution[1] if self._evolution is not None and self._evolution[0] == key else None
        self._evolution = (key, boundary_evolution(net, data, snapshots, title, fig=kept))
        return self._evolution[1]

    def _weight_distributions(self, net: MLP, snapshots: Snapshots, title: str) -> Figure:
        key = tuple(net.sizes)
        kept = self._distributions[1] if self._distributions is not None and self._distributions[0] == key else None
        self._distributions = (key, weight_distributions(net, snapshots, title, fig=kept))
        return self._distributions[1]

    def _learning_curve(self, history: dict[str, list[float]], title: str, threshold: float | None) -> Figure:
        key = (tuple(sorted(history)), threshold)
        if self._curve is None or self._curve[0] != key:
            fig = learning_curve(history, title, threshold)
            self._curve = (key, fig)
            return fig
        _, fig = self._curve
        ax_loss, ax_acc = fig.axes
        curves = _curves(history)
        for line, (loss, *_) in zip(ax_loss.get_lines(), curves, strict=False):  # the threshold line comes last
            line.set_data(*curve_points(history[loss]))
        accuracies = [accuracy for _, accuracy, *_ in curves if accuracy is not None]
        for line, accuracy in zip(ax_acc.get_lines(), accuracies, strict=True):
            line.set_data(*curve_points(history[accuracy]))
        for ax in fig.axes:
            ax.relim()
            ax.autoscale_view()
        ax_acc.set_ylim(-0.02, 1.02)
        fig.suptitle(title)
        return fig

    def _decision_boundary(self, net: MLP, data: Dataset, title: str) -> Figure:
        if self._boundary is None:
            self._boundary = decision_boundary(net, data, title)
            return self._boundary
        (ax,) = self._boundary.axes
        for artist in [*ax.collections, *ax.patches]:
            artist.remove()
        if ax.get_legend() is not None:
            ax.get_legend().remove()
        draw_decision_boundary(ax, net, data, title)
        return self._boundary

    def _ground_truth_vs_prediction(self, data: Dataset, predicted: np.ndarray, title: str) -> Figure:
        key = (len(data.y_train), data.n_classes)
        if self._prediction is None or self._prediction[0] != key:
            fig = ground_truth_vs_prediction(data.x_train, data.y_train, predicted, data.n_classes, title)
            self._prediction = (key, fig)
            return fig
        _, fig = self._prediction
        for ax, labels in zip(fig.axes, (data.y_train, predicted), strict=True):
            points = ax.collections[0]
            points.set_offsets(data.x_train)
            points.set_array(labels)
            ax.ignore_existing_data_limits = True
            ax.update_datalim(data.x_train)
            ax.autoscale_view()
        _mark_misclassified(fig, data.x_train, data.y_train, predicted, title)
        return fig


class Blit:
    """A figure saved as the pixels of what stays from run to run plus the artists a run
    changes drawn over them, in the order a whole drawing paints them. What stays is
    rendered again only when its key (the data it shows) changes."""

    def __init__(self, fig: Figure) -> None:
        from matplotlib.backends.backend_agg import FigureCanvasAgg

        fig.set_dpi(FIGURE_DPI)
        self.fig = fig
        self.canvas = FigureCanvasAgg(fig)
        self.key: bytes | None = None
        self.background = None

    def save(self, path: Path, key: bytes, own: list) -> None:
        """Write the figure to ``path`` as a PNG; ``own``: the artists of this run (and
        every artist a whole drawing paints over one of them)."""
        from PIL import Image

        if key != self.key:
            shown = [artist for artist in own if artist is not None and artist.get_visible()]
            for artist in shown:
                artist.set_visible(False)
            self.canvas.draw()
            self.background = self.canvas.copy_from_bbox(self.fig.bbox)
            for artist in shown:
                artist.set_visible(True)
            self.key = key
        self.canvas.restore_region(self.background)
        renderer = self.canvas.get_renderer()
        for artist in _painting_order(self.fig, set(own)):
            artist.draw(renderer)
        Image.fromarray(np.asarray(self.canvas.buffer_rgba())).save(path, **PNG_OPTIONS)


def _painting_order(fig: Figure, artists: set) -> list:
    """``artists`` in the order ``fig.draw`` paints them: by z-order, each axes' children
    within the axes (an axes among ``artists`` is painted whole)."""
    from matplotlib.axes import Axes

    order = []
    for child in sorted(fig.get_children(), key=lambda artist: artist.get_zorder()):
        if isinstance(child, Axes) and child not in artists:
            order += [a for a in sorted(child.get_children(), key=lambda a: a.get_zorder()) if a in artists]
        elif child in artists:
            order.append(child)
    return order


def _data_key(data: Dataset, test: bool) -> bytes:
    """What a figure's unchanging part shows: the training points (and the test points)."""
    arrays = [data.x_train, data.y_train] + ([data.x_test, data.y_test] if test else [])
    return b"|".join([str(data.n_classes).encode()] + [np.ascontiguousarray(a).tobytes() for a in arrays])


def _curve_parts(fig: Figure) -> tuple[bytes, list]:
    """A learning curve's key and own artists: the loss panel whole (its scale follows the
    run's losses) and the accuracy panel's curves, frame and legend, and the title; the
    rest (the accuracy panel's ticks, grid and labels) stays while its limits do."""
    ax_loss, ax_acc = fig.axes
    key = repr((ax_acc.get_xlim(), ax_acc.get_ylim(), [line.get_label() for line in ax_acc.lines])).encode()
    return key, [ax_loss, *ax_acc.lines, *ax_acc.spines.values(), ax_acc.get_legend(), fig._suptitle]


def _boundary_own(fig: Figure) -> list:
    """A run's own artists of the decision boundary: everything inside the axes (the
    boundary, the points and the frame over it, the legend) and the title."""
    (ax,) = fig.axes
    return [*ax.collections, *ax.spines.values(), ax.get_legend(), ax.title]


def _prediction_own(fig: Figure) -> list:
    """A run's own artists of the ground truth and prediction: the predicted classes, the
    misclassified circles (and the frames they may touch) and the title with the accuracy."""
    truth, prediction = fig.axes
    return [truth.collections[1], prediction.collections[0], prediction.collections[1]] + [
        *truth.spines.values(),
        *prediction.spines.values(),
        fig._suptitle,
    ]


def _evolution_and_stepped_images(fig: Figure, snapshots: Snapshots, out_dir: Path) -> None:
    """Render the boundary's evolution once: write it whole, and each panel (with its
    title) as the stepped image of its epoch, a PNG and its small WebP copy."""
    import time

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from PIL import Image

    fig.set_dpi(FIGURE_DPI)
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    pixels = np.asarray(canvas.buffer_rgba())
    Image.fromarray(pixels).save(out_dir / BOUNDARY_EVOLUTION_FILE, **PNG_OPTIONS)
    (out_dir / IMAGES_DIR).mkdir(exist_ok=True)
    now, height, renderer = int(time.time() * 1000), pixels.shape[0], canvas.get_renderer()
    for ax, epoch in zip(fig.axes, snapshots.epochs, strict=False):  # panels beyond the snapshots are blank
        # the panel and its title (it has no ticks or labels): its tight box, without
        # matplotlib measuring every artist of the panel to find it
        box = Bbox.union([ax.bbox, ax.title.get_window_extent(renderer)])
        rows = slice(max(0, height - math.ceil(box.y1)), height - math.floor(box.y0))
        columns = slice(max(0, math.floor(box.x0)), math.ceil(box.x1))
        panel = Image.fromarray(pixels[rows, columns])
        full, small = stepped_image_paths(BOUNDARY_IMAGE_KEY, epoch, now)
        panel.save(out_dir / full, **PNG_OPTIONS)
        panel.save(out_dir / small, **WEBP_OPTIONS)


def _snapshot_net(net: MLP, params: np.ndarray) -> MLP:
    twin = net.copy()
    twin.params[...] = params
    return twin


def boundary_evolution(
    net: MLP, data: Dataset, snapshots: Snapshots, title: str = "", resolution: int = 80, fig: Figure | None = None
) -> Figure:
    """The decision boundary at every training snapshot (``src.runs.snapshots``), one
    panel per snapshot epoch, in rows of four, with one class legend. ``fig``: a figure
    this function drew before for as many snapshots and the same classes and splits,
    redrawn in place."""
    count = len(snapshots.epochs)
    if fig is None:
        rows, cols = -(-count // 4), min(count, 4)
        height = 2.6 * rows + 1.0
        fig = Figure(figsize=(2.6 * cols, height))
        fig.subplots_adjust(left=0.03, right=0.99, bottom=0.5 / height, top=1 - 0.6 / height, hspace=0.25)
        axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False).ravel())
        for ax in axes[count:]:
            ax.set_axis_off()
        handles = legend_handles(data.n_classes, data.has_test)
        fig.legend(handles=handles, loc="lower center", ncols=len(handles), fontsize=8, frameon=False)
    for ax, epoch, params in zip(fig.axes, snapshots.epochs, snapshots.params, strict=False):
        for artist in ax.collections:  # a previous run's boundary and points
            artist.remove()
        draw_decision_boundary(ax, _snapshot_net(net, params), data, f"epoch {epoch}", resolution, legend=False)
        ax.set(xlabel="", ylabel="", xticks=[], yticks=[])
    fig.suptitle(f"{title}: decision boundary during training" if title else "Decision boundary during training")
    return fig


#: Percentile bands of a weight distribution, outermost first (TensorBoard's distributions).
_BANDS = ((0, 100), (7, 93), (16, 84), (31, 69))


def weight_distributions(net: MLP, snapshots: Snapshots, title: str = "", fig: Figure | None = None) -> Figure:
    """Each layer's weights over training: the median and the 0-100, 7-93, 16-84 and
    31-69 percentile bands of ``W_i``'s entries at every snapshot epoch. The snapshots are
    log-spaced, so they are drawn evenly spaced, labelled with their epochs (a log axis
    whose epoch 0 shows; fixed ticks cost a fraction of a symlog axis's). ``fig``: a
    figure this function drew before for the same layers, redrawn in place."""
    layers = [(name, where) for name, where, _ in net.layout if name.startswith("W")]
    if fig is None:
        fig = Figure(figsize=(4 * len(layers), 3.6))
        fig.subplots_adjust(left=0.06, right=0.98, bottom=0.15, top=0.82, wspace=0.28)
        for ax in np.atleast_1d(fig.subplots(1, len(layers), squeeze=False).ravel()):
            ax.set(xlabel="epoch (log-spaced snapshots)", ylabel="weight")
            ax.grid(alpha=0.3)
    epochs = np.asarray(snapshots.epochs)
    at = np.arange(len(epochs))
    ticks = np.unique(np.linspace(0, len(epochs) - 1, min(len(epochs), 6)).round().astype(int))
    for ax, (name, where) in zip(fig.axes, layers, strict=True):
        for artist in [*ax.collections, *ax.lines]:  # a previous run's bands and median
            artist.remove()
        weights = np.stack([params[where] for params in snapshots.params])  # (snapshots, entries)
        for shade, (low, high) in enumerate(_BANDS):
            below, above = np.percentile(weights, [low, high], axis=1)
            ax.fill_between(at, below, above, color="C0", alpha=0.15 + 0.12 * shade, linewidth=0)
        ax.plot(at, np.median(weights, axis=1), color="C0", linewidth=1.2, label="median")
        ax.set_xticks(ticks, [str(epochs[i]) for i in ticks])
        set_title(ax, f"layer {name[1:]} weights ({weights.shape[1]})")
        ax.relim()
        ax.autoscale_view()
    fig.axes[0].legend(fontsize=8, loc="upper left")
    fig.suptitle(
        f"{title}: weight distributions (bands: 0-100, 7-93, 16-84, 31-69th percentiles)"
        if title
        else "Weight distributions (bands: 0-100, 7-93, 16-84, 31-69th percentiles)"
    )
    return fig


def stepped_image_paths(key: str, step: int, timestamp_ms: int) -> tuple[str, str]:
    """Where ``MlflowClient.log_image(run_id, image, key=key, step=step)`` puts an image in
    a run's artifacts: ``(full-size PNG, its small WebP copy)``, which share one name; files
    uploaded there appear in the run's image chart with a slider over the steps."""
    import uuid

    name = f"{IMAGES_DIR}/{key.replace('/', '~')}+step+{step}+timestamp+{timestamp_ms}+{uuid.uuid4()}"
    return f"{name}.png", f"{name}+compressed.webp"
