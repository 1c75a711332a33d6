"""Per-run figures: long learning curves are decimated without losing their extremes."""

import numpy as np

from src.runs.figures import MAX_CURVE_POINTS, curve_points


def test_short_curves_are_drawn_as_they_are():
    epochs, values = curve_points([0.5, 0.25, 0.125])
    assert epochs.tolist() == [1, 2, 3] and values.tolist() == [0.5, 0.25, 0.125]


def test_long_curves_keep_every_buckets_extremes_and_the_last_epoch():
    rng = np.random.default_rng(0)
    history = np.exp(-np.linspace(0, 5, 100_000)) * (1 + 0.5 * rng.random(100_000))
    history[73_123] = 7.0  # one spike
    epochs, values = curve_points(history.tolist())
    assert len(epochs) == len(values) == MAX_CURVE_POINTS + 1
    assert values.max() == 7.0 and values.min() == history.min()
    assert (epochs[-1], values[-1]) == (100_000, history[-1])
    assert np.all(np.diff(epochs) >= 0)


def _fit(compose_config, *overrides):
    from src.runs.build import assemble
    from src.runs.config import validate
    from src.runs.loop import fit

    run = validate(compose_config(*overrides))
    parts = assemble(run)
    t = run.trainer
    result = fit(parts.net, parts.optimizer, parts.objective, parts.data, t.epochs, parts.shuffle_rng, t.batch_size)
    return result, parts


def test_figures_carry_the_threshold_the_running_loss_legends_and_the_misclassified_points(compose_config, tmp_path):
    from src.runs.figures import RunFigures

    figures = RunFigures()
    for overrides in (["trainer.epochs=30"], ["trainer.epochs=40", "trainer.batch_size=4", "trainer.seed=1"]):
        result, parts = _fit(compose_config, *overrides)
        figures.draw(result.history, parts.net, parts.data, "a-run", tmp_path, threshold=0.01)
        _, curve = figures._curve
        ax_loss, ax_acc = curve.axes
        labels = [line.get_label() for line in ax_loss.get_lines()]
        mini_batch = "trainer.batch_size=4" in overrides
        expected = ["training set", "running mean of batch losses"] if mini_batch else ["training set"]
        assert labels == [*expected, "loss threshold 0.01"]
        assert ax_loss.get_lines()[0].get_xdata()[-1] == result.epochs_run  # redrawn, not stale
        _, prediction = figures._prediction
        predicted = (parts.net.predict(parts.data.x_train)[:, 0] > 0.5).astype(int)
        wrong = int((predicted != parts.data.y_train).sum())
        assert wrong > 0 and len(prediction.axes[1].collections[1].get_offsets()) == wrong
        assert prediction._suptitle.get_text().startswith(
            f"a-run: training accuracy {1 - wrong / 21:.3f} ({wrong} of 21"
        )
        assert [t.get_text() for t in prediction.legends[0].get_texts()] == ["class 0", "class 1", "misclassified"]
        assert {f.name for f in tmp_path.iterdir()} == {
            "learning_curve.png",
            "decision_boundary.png",
            "ground_truth_vs_prediction.png",
        }


def test_figures_drawn_over_what_runs_share_have_the_pixels_of_a_whole_drawing(compose_config, tmp_path):
    """Runs on the same data share the rendered pixels of what does not change (drawn
    once); each PNG is still exactly what matplotlib draws of the figure whole, also when
    the data, the epochs or the classes change from one run to the next."""
    from PIL import Image

    from src.runs.figures import FIGURE_DPI, RunFigures

    sequence = [
        ("dataset=moons", "dataset.test_fraction=0.25", "optimizer.lr=0.01", "trainer.epochs=60"),
        ("dataset=moons", "dataset.test_fraction=0.25", "optimizer.lr=0.3", "trainer.epochs=60"),  # same data
        ("dataset=moons", "dataset.test_fraction=0.25", "trainer.seed=1", "trainer.epochs=60"),  # other points
        ("dataset=moons", "dataset.test_fraction=0.25", "trainer.seed=1", "trainer.epochs=45"),  # other epochs
        ("dataset=blobs", "trainer.epochs=30"),  # three classes, no test split
    ]
    figures = RunFigures()
    backgrounds = []
    for index, overrides in enumerate(sequence):
        result, parts = _fit(compose_config, *overrides)
        out = tmp_path / str(index)
        out.mkdir()
        figures.draw(result.history, parts.net, parts.data, f"run {index}", out, threshold=0.05)
        backgrounds.append({name: id(blit.background) for name, blit in figures._blits.items()})
        whole = {
            "learning_curve.png": figures._curve[1],
            "decision_boundary.png": figures._boundary,
            "ground_truth_vs_prediction.png": figures._prediction[1],
        }
        for name, fig in whole.items():
            fig.savefig(out / f"whole-{name}", dpi=FIGURE_DPI)
            drawn, expected = (np.asarray(Image.open(out / prefix)) for prefix in (name, f"whole-{name}"))
            assert drawn.shape == expected.shape and (drawn == expected).all(), (index, name)
    same = [name for name in backgrounds[1] if backgrounds[1][name] == backgrounds[0][name]]
    assert sorted(same) == ["decision_boundary.png", "ground_truth_vs_prediction.png", "learning_curve.png"]
    assert backgrounds[2]["learning_curve.png"] == backgrounds[1]["learning_curve.png"]  # the epochs did not change
    assert backgrounds[2]["decision_boundary.png"] != backgrounds[1]["decision_boundary.png"]
    assert backgrounds[3]["learning_curve.png"] != backgrounds[2]["learning_curve.png"]


def test_the_loss_axis_label_stays_inside_the_figure_for_small_losses():
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from src.runs.figures import learning_curve

    history = {"train_loss": list(np.geomspace(0.3, 2.5e-5, 5000)), "train_accuracy": [1.0] * 5000}
    fig = learning_curve(history, "lr=3-s7")
    renderer = FigureCanvasAgg(fig).get_renderer()
    fig.draw(renderer)
    ax_loss = fig.axes[0]
    assert "0.0001" in [label.get_text() for label in ax_loss.get_yticklabels()]
    assert ax_loss.yaxis.label.get_window_extent(renderer).x0 >= 0
