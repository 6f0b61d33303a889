"""Tests of rzs.plots: every figure renders from synthetic tables, reproducibly, with its intervals
and legibly at its printed size."""

import itertools

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.collections import PathCollection, PolyCollection  # noqa: E402
from matplotlib.container import ErrorbarContainer  # noqa: E402
from matplotlib.text import Text  # noqa: E402
from statsmodels.stats.proportion import proportion_confint  # noqa: E402

from rzs import analysis, metrics, plots  # noqa: E402

CLASS_NAMES = ["airplane", "automobile", "bird", "cat"]
NETWORKS = ["LeNet", "ResNet", "CapsNet"]
# Screen resolution keeps the suite fast; reproducibility does not depend on it.
TEST_DPI = 60


def synthetic_soft_labels_by_class(seed, images=12):
    generator = np.random.default_rng(seed)
    return {
        index: (
            generator.dirichlet(np.full(len(CLASS_NAMES) - 1, 0.7), size=images),
            generator.dirichlet(np.full(len(CLASS_NAMES), 0.7), size=images),
        )
        for index in range(len(CLASS_NAMES))
    }


def synthetic_tables():
    soft_labels = {name: synthetic_soft_labels_by_class(seed) for seed, name in
                   enumerate(NETWORKS)}
    table = pd.concat(
        [metrics.metrics_table(data, name, CLASS_NAMES) for name, data in soft_labels.items()]
    )
    return soft_labels, table


def synthetic_attack_summary(thresholds=(1.0, 3.0)):
    """``Study.attack_summary()``-like rows: counts out of 20 images, th stored as floats."""
    generator = np.random.default_rng(7)
    rows = []
    for network in NETWORKS:
        for attack in ("pixel", "threshold"):
            for th in thresholds:
                correct = int(generator.integers(12, 20))
                turned = int(generator.integers(0, correct + 1))
                rows.append(dict(network=network, defence="vanilla", attack=attack,
                                 strategy="cmaes", th=th, images=20,
                                 attack_accuracy=(turned + 20 - correct) / 20,
                                 correct_images=correct,
                                 attack_accuracy_on_correct=turned / correct,
                                 mean_queries=100.0))
    return pd.DataFrame(rows)


def synthetic_metric_intervals():
    generator = np.random.default_rng(3)
    values = generator.uniform(0.2, 0.8, size=(len(NETWORKS), 2))
    return pd.DataFrame(
        [
            dict(network=network, metric=metric, value=value, ci_low=value - 0.05,
                 ci_high=value + 0.08, n=len(CLASS_NAMES))
            for network, row in zip(NETWORKS, values)
            for metric, value in zip(("DBM", "AM"), row)
        ]
    )


def synthetic_outcome_intervals():
    """Attack accuracy on correct images per network and attack, th = 3."""
    intervals = analysis.attack_accuracy_intervals(synthetic_attack_summary())
    chosen = intervals[(intervals["quantity"] == "attack_accuracy_on_correct")
                       & (intervals["th"] == 3.0)]
    return chosen.drop(columns=["th"]).reset_index(drop=True)


def synthetic_correlations():
    return pd.DataFrame(dict(metric="DBM", attack=["pixel", "threshold"], value=[0.58, -0.12],
                             ci_low=[0.02, -0.7], ci_high=[0.86, 0.55], p=[0.047, 0.61],
                             p_adjusted=[0.094, 0.61]))


DEFENCES = ["jpeg", "adversarial training", analysis.NULL_CONTROL]
QUANTITIES = ["DBM", "AM", "pixel th=1"]


def synthetic_defence_tables():
    """Per-network values and one test row per (defence, quantity), AM in units of 1e-5."""
    generator = np.random.default_rng(11)
    values, tests = [], []
    for quantity in QUANTITIES:
        scale = 1e-5 if quantity == "AM" else 1.0
        for network in NETWORKS:
            base = generator.uniform(0.3, 0.7)
            values.append(dict(network=network, defence="vanilla", quantity=quantity,
                               value=base))
            for defence in DEFENCES:
                values.append(dict(network=network, defence=defence, quantity=quantity,
                                   value=base + scale * generator.normal(0.0, 0.05)))
        for defence in DEFENCES:
            estimate = scale * generator.normal(0.0, 0.03)
            tests.append(dict(defence=defence, quantity=quantity, value=estimate,
                              ci_low=estimate - 0.05 * scale, ci_high=estimate + 0.04 * scale,
                              p=generator.uniform(), p_adjusted=1.0, n=len(NETWORKS)))
    return pd.DataFrame(values), pd.DataFrame(tests)


def build_figures():
    soft_labels, _ = synthetic_tables()
    resnet = soft_labels["ResNet"]
    return {
        "zero_shot_grid": lambda: plots.plot_zero_shot_grid(resnet, "ResNet", CLASS_NAMES,
                                                            columns=2),
        "zero_shot_networks": lambda: plots.plot_zero_shot_networks(
            {name: data[1][0] for name, data in soft_labels.items()}, 1, CLASS_NAMES
        ),
        "amalgam_heatmap": lambda: plots.plot_amalgam_heatmap(
            {
                "amalgam": metrics.class_amalgam_matrix(resnet),
                "zero-shot": metrics.class_amalgam_matrix(resnet, source="zero_shot"),
            },
            CLASS_NAMES,
        ),
        **INTERVAL_FIGURES,
        "raw_zero_shot_illustration": lambda: plots.plot_raw_zero_shot_illustration(
            *illustration_inputs(resnet, excluded=3, channels=3), CLASS_NAMES[:3],
            CLASS_NAMES[3], "ResNet",
        ),
        "raw_zero_shot_illustration_grey": lambda: plots.plot_raw_zero_shot_illustration(
            illustration_inputs(resnet, excluded=0, channels=1)[0],
            resnet[0][0][:2], None, CLASS_NAMES[1:], CLASS_NAMES[0], "LeNet",
        ),
    }


# The figures of networks' values, which must fit a printed column or page.
INTERVAL_FIGURES = {
    "attack_accuracy": lambda: plots.plot_attack_accuracy(synthetic_attack_summary()),
    "attack_accuracy_one_attack": lambda: plots.plot_attack_accuracy(
        synthetic_attack_summary().query("attack == 'pixel'")
    ),
    "metric_intervals": lambda: plots.plot_metric_intervals(synthetic_metric_intervals()),
    "metrics_per_network": lambda: plots.plot_metrics_per_network(synthetic_tables()[1]),
    "metric_vs_attack": lambda: plots.plot_metric_vs_attack(
        synthetic_metric_intervals(), synthetic_outcome_intervals(), "DBM",
        correlations=synthetic_correlations(), band_resamples=200,
    ),
    "metric_vs_attack_one_panel": lambda: plots.plot_metric_vs_attack(
        synthetic_metric_intervals(), synthetic_outcome_intervals().query("attack == 'pixel'"),
        "AM", band_resamples=200,
    ),
    "defence_comparison": lambda: plots.plot_defence_comparison(*synthetic_defence_tables()),
}


def illustration_inputs(soft_labels_by_class, excluded, channels, count=2):
    """(images (K, 8, 8, C) uint8, Q_i[:K], G_i[:K]) of one excluded class."""
    zero_shot, full = soft_labels_by_class[excluded]
    images = np.random.default_rng(excluded).integers(0, 256, (count, 8, 8, channels),
                                                      dtype=np.uint8)
    return images, zero_shot[:count], metrics.amalgam_proportions(full[:count], excluded)


FIGURE_NAMES = list(build_figures())


@pytest.mark.parametrize("name", FIGURE_NAMES)
def test_every_figure_writes_identical_png_and_pdf_twice(name, tmp_path):
    written = []
    for run in ("first", "second"):
        figure = build_figures()[name]()
        assert isinstance(figure, plt.Figure)
        written.append(plots.save_figure(figure, tmp_path / run / name, dpi=TEST_DPI))
        assert not plt.fignum_exists(figure.number)
    (png, pdf), (second_png, second_pdf) = written
    assert (png.suffix, pdf.suffix) == (".png", ".pdf")
    for first, second in ((png, second_png), (pdf, second_pdf)):
        assert first.stat().st_size > 0
        assert first.read_bytes() == second.read_bytes()
    # What differs between runs must not be in the files at all.
    assert b"CreationDate" not in pdf.read_bytes() and b"Producer" not in pdf.read_bytes()
    assert b"Software" not in png.read_bytes()


def test_polygon_vertices_of_a_square():
    np.testing.assert_allclose(
        plots.polygon_vertices(4), [[0, 1], [1, 0], [0, -1], [-1, 0]], atol=1e-12
    )


def test_polygon_projection_puts_one_hot_rows_on_vertices_and_uniform_in_the_centre():
    soft_labels = np.vstack([np.eye(5), np.full((1, 5), 0.2)])
    projected = plots.polygon_projection(soft_labels)
    np.testing.assert_allclose(projected[:5], plots.polygon_vertices(5), atol=1e-12)
    np.testing.assert_allclose(projected[5], [0.0, 0.0], atol=1e-12)


def test_polygon_projection_of_a_mixture_is_the_weighted_vertex_mean():
    np.testing.assert_allclose(plots.polygon_projection([[0.5, 0.5, 0.0, 0.0]]), [[0.5, 0.5]])


@pytest.mark.parametrize("count", [0, 2.0, True])
def test_polygon_vertices_rejects_bad_counts(count):
    with pytest.raises(ValueError, match="count must be an integer >= 1; received"):
        plots.polygon_vertices(count)


def test_plot_errors_name_the_bad_argument():
    soft_labels, _ = synthetic_tables()
    with pytest.raises(ValueError, match=r"metric must be one of \['AM', 'DBM'\]; received 'XX'"):
        plots.plot_metric_vs_attack(synthetic_metric_intervals(), synthetic_outcome_intervals(),
                                    "XX")
    with pytest.raises(ValueError, match=r"quantities must be among.*unknown \['XX'\]"):
        plots.plot_defence_comparison(*synthetic_defence_tables(), quantities=["XX"])
    with pytest.raises(ValueError, match=r"N x N matrix.*received shape \(2, 3\)"):
        plots.plot_amalgam_heatmap({"bad": np.zeros((2, 3))})
    with pytest.raises(ValueError, match="columns must be an integer >= 1; received 0"):
        plots.plot_zero_shot_grid(soft_labels["LeNet"], "LeNet", columns=0)
    with pytest.raises(ValueError, match=r"excluded must be a class index in \[0, 3\]"):
        plots.plot_zero_shot_networks({"LeNet": soft_labels["LeNet"][0][0]}, 4)


def test_raw_zero_shot_illustration_errors_name_the_bad_argument():
    soft_labels = synthetic_soft_labels_by_class(0)
    images, zero_shot, amalgam = illustration_inputs(soft_labels, excluded=3, channels=3)
    known = CLASS_NAMES[:3]

    def draw(images=images, zero_shot=zero_shot, amalgam=amalgam, known=known):
        return plots.plot_raw_zero_shot_illustration(images, zero_shot, amalgam, known, "cat",
                                                     "ResNet")

    with pytest.raises(ValueError, match="images must be uint8.*received dtype float64"):
        draw(images=images.astype(np.float64))
    with pytest.raises(ValueError, match=r"C = 1 \(grey\) or 3 \(RGB\); received shape "
                                         r"\(2, 8, 8, 2\)"):
        draw(images=images[..., :2])
    with pytest.raises(ValueError, match="one row per image, K = 2; received 3 rows"):
        draw(zero_shot=soft_labels[3][0][:3])
    with pytest.raises(ValueError, match=r"amalgam must have the shape.*\(2, 3\); received "
                                         r"\(1, 3\)"):
        draw(amalgam=amalgam[:1])
    with pytest.raises(ValueError, match="known_class_names must hold N-1 = 3 names"):
        draw(known=CLASS_NAMES)
    with pytest.raises(ValueError, match="zero_shot_soft_labels rows must sum to 1"):
        draw(zero_shot=zero_shot * 2)




def error_bars(axis):
    return [container for container in axis.containers if isinstance(container,
                                                                      ErrorbarContainer)]


def visible_texts(figure):
    """Every drawn, non-empty text with its extent in display pixels (the figure drawn first).

    Tick labels outside an axis's view or of an axis turned off exist as objects but are not
    drawn, so they are left out.
    """
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    drawn, tick_labels = [], set()
    for axis in figure.findobj(matplotlib.axis.Axis):
        if not axis.axes.axison:
            tick_labels.update(id(tick.label1) for tick in axis.get_major_ticks())
            continue
        low, high = sorted(axis.get_view_interval())
        margin = 1e-9 * max(1.0, high - low)
        for tick in axis.get_major_ticks() + axis.get_minor_ticks():
            labels = (tick.label1, tick.label2)
            tick_labels.update(map(id, labels))
            if low - margin <= tick.get_loc() <= high + margin:
                drawn.extend(labels)
    drawn.extend(text for text in figure.findobj(Text) if id(text) not in tick_labels)
    texts = []
    for text in drawn:
        if not text.get_visible() or not text.get_text().strip():
            continue
        extent = text.get_window_extent(renderer)
        if extent.width > 0 and extent.height > 0:
            texts.append((text.get_text(), extent))
    return texts


@pytest.mark.parametrize("name", [*INTERVAL_FIGURES, "zero_shot_grid", "zero_shot_networks"])
def test_figures_fit_a_column_or_the_page_without_overprinting(name):
    figure = build_figures()[name]()
    width, height = figure.get_size_inches()
    assert width in (plots.ONE_COLUMN_INCHES, plots.TWO_COLUMN_INCHES)
    assert 1.0 <= height <= plots.PAGE_HEIGHT_INCHES
    texts = visible_texts(figure)
    for axis in figure.axes:
        # Offset and power-of-ten texts at an axis end overprinted the old figure's annotation.
        assert axis.xaxis.get_offset_text().get_text() == ""
        assert axis.yaxis.get_offset_text().get_text() == ""
    # Within the figure (a legend or label running off the page is lost in print) ...
    page = figure.bbox.padded(1.0)
    for label, extent in texts:
        assert page.containsx(extent.x0) and page.containsx(extent.x1), label
        assert page.containsy(extent.y0) and page.containsy(extent.y1), label
    # ... and no two texts on top of each other.
    for (first, first_extent), (second, second_extent) in itertools.combinations(texts, 2):
        assert not first_extent.shrunk(0.98, 0.9).overlaps(second_extent.shrunk(0.98, 0.9)), (
            first, second)
    plt.close(figure)


def test_attack_accuracy_draws_a_wilson_interval_per_network_and_th_with_integer_th():
    summary = synthetic_attack_summary(thresholds=(1.0, 3.0, 10.0))
    figure = plots.plot_attack_accuracy(summary)
    panels = [axis for axis in figure.axes if axis.get_title()]
    assert [axis.get_title() for axis in panels] == ["pixel attack", "threshold attack"]
    for axis in panels:
        bars = error_bars(axis)
        assert len(bars) == 3  # one per th level ...
        assert sum(len(bar.lines[0].get_xdata()) for bar in bars) == 3 * len(NETWORKS)
    assert [tick.get_text() for tick in panels[0].get_yticklabels()] == NETWORKS
    legend = [text.get_text() for text in figure.legends[0].get_texts()]
    assert legend[:3] == ["th = 1", "th = 3", "th = 10"]
    assert "on all images (authors')" in legend
    # The pixel panel's first bar, th = 1: the Wilson interval of the first network's counts.
    first = summary.iloc[0]
    turned = round(first["attack_accuracy_on_correct"] * first["correct_images"])
    low, high = proportion_confint(turned, first["correct_images"], method="wilson")
    segment = error_bars(panels[0])[0].lines[2][0].get_segments()[0]
    np.testing.assert_allclose([segment[0][0], segment[1][0]], [low, high])
    plt.close(figure)


@pytest.mark.parametrize("show_all_images, diamonds_per_panel", [(True, 2), (False, 0)])
def test_attack_accuracy_draws_the_authors_number_as_open_diamonds(show_all_images,
                                                                  diamonds_per_panel):
    figure = plots.plot_attack_accuracy(synthetic_attack_summary(),
                                        show_all_images=show_all_images)
    for axis in figure.axes:
        diamonds = [collection for collection in axis.collections
                    if isinstance(collection, PathCollection)]
        assert len(diamonds) == diamonds_per_panel  # one per th level
        assert all(len(collection.get_offsets()) == len(NETWORKS) for collection in diamonds)
    plt.close(figure)


def test_attack_accuracy_pools_the_counts_of_several_seeds():
    one = synthetic_attack_summary().assign(seed=0)
    # A second seed that turns no correct image and misclassifies none: the pooled share falls.
    other = one.assign(seed=1, attack_accuracy=0.0, correct_images=20,
                       attack_accuracy_on_correct=0.0)
    figure = plots.plot_attack_accuracy(pd.concat([one, other]), show_all_images=False)
    points = error_bars(figure.axes[0])[0].lines[0].get_xdata()
    first = one[(one["attack"] == "pixel") & (one["th"] == 1.0)]
    turned = np.round(first["attack_accuracy_on_correct"] * first["correct_images"])
    np.testing.assert_allclose(points, turned / (first["correct_images"] + 20))
    plt.close(figure)


def test_attack_accuracy_refuses_to_pool_defences():
    summary = synthetic_attack_summary()
    summary.loc[summary.index[:4], "defence"] = "jpeg"
    with pytest.raises(ValueError, match=r"summary must hold one defence; received \['jpeg', "
                                         r"'vanilla'\]"):
        plots.plot_attack_accuracy(summary)


def test_metric_intervals_draw_one_interval_per_network_in_each_metric_panel():
    intervals = synthetic_metric_intervals()
    figure = plots.plot_metric_intervals(intervals)
    for axis, metric in zip(figure.axes, ("DBM", "AM")):
        (bars,) = error_bars(axis)
        assert len(bars.lines[0].get_xdata()) == len(NETWORKS)
        segments = bars.lines[2][0].get_segments()
        expected = intervals[intervals["metric"] == metric]
        np.testing.assert_allclose([segment[0][0] for segment in segments], expected["ci_low"])
        np.testing.assert_allclose([segment[1][0] for segment in segments], expected["ci_high"])
        assert axis.get_xlabel() == f"{metric} (lower = better)"
    plt.close(figure)


def test_metric_vs_attack_draws_intervals_on_both_axes_and_states_r_as_given():
    figure = plots.plot_metric_vs_attack(
        synthetic_metric_intervals(), synthetic_outcome_intervals(), "DBM",
        correlations=synthetic_correlations(), band_resamples=200,
    )
    pixel, threshold = figure.axes
    for axis in (pixel, threshold):
        bars = error_bars(axis)
        assert len(bars) == len(NETWORKS)
        assert all(bar.has_xerr and bar.has_yerr for bar in bars)
        assert any(isinstance(collection, PolyCollection) for collection in axis.collections)
    assert pixel.get_title() == "pixel\nr = 0.58 [0.02, 0.86], p = 0.047 (adj. 0.094)"
    plt.close(figure)


def test_metric_vs_attack_band_comes_from_the_given_replicates():
    outcome = synthetic_outcome_intervals().query("attack == 'pixel'")
    # Every replicate is the flat line y = 0.5, so the band is that line.
    replicates = pd.DataFrame(dict(attack="pixel", slope=np.zeros(20), intercept=0.5))
    figure = plots.plot_metric_vs_attack(synthetic_metric_intervals(), outcome, "DBM",
                                         line_replicates=replicates)
    (band,) = [collection for collection in figure.axes[0].collections
               if isinstance(collection, PolyCollection)]
    np.testing.assert_allclose(band.get_paths()[0].vertices[:, 1], 0.5)
    plt.close(figure)


def test_metric_vs_attack_needs_one_outcome_row_per_network_and_panel():
    outcome = synthetic_outcome_intervals()
    with pytest.raises(ValueError, match=r"outcome_intervals must have one row per "
                                         r"\['network'\]"):
        plots.plot_metric_vs_attack(synthetic_metric_intervals(), outcome, "DBM", panel_keys=[])


def test_defence_comparison_draws_each_test_with_the_null_control_last():
    values, tests = synthetic_defence_tables()
    figure = plots.plot_defence_comparison(values, tests)
    panels = [axis for axis in figure.axes if axis.get_title()]
    assert [axis.get_title() for axis in panels] == [f"{quantity} (n = 3)" for quantity in
                                                     QUANTITIES]
    for axis, quantity in zip(panels, QUANTITIES):
        bars = error_bars(axis)
        assert len(bars) == len(DEFENCES)
        estimates = [bar.lines[0].get_xdata()[0] for bar in bars]
        np.testing.assert_allclose(estimates, tests[tests["quantity"] == quantity]["value"])
        # Each network's own difference as a dot: three per defence.
        dots = [collection for collection in axis.collections
                if isinstance(collection, PathCollection)]
        assert sum(len(collection.get_offsets()) for collection in dots) == (
            len(DEFENCES) * len(NETWORKS))
    labels = [tick.get_text() for tick in panels[0].get_yticklabels()]
    assert labels == ["jpeg", "adversarial training", "null control (vanilla, next seed)"]
    assert figure.get_size_inches()[0] == plots.TWO_COLUMN_INCHES
    plt.close(figure)


def test_defence_comparison_of_one_quantity_is_one_column_wide():
    values, tests = synthetic_defence_tables()
    tests = tests[tests["defence"] != analysis.NULL_CONTROL]
    figure = plots.plot_defence_comparison(values, tests, quantities=["DBM"], null_control=None)
    assert figure.get_size_inches()[0] == plots.ONE_COLUMN_INCHES
    # Without a null control, only the defences are rows.
    assert len(error_bars(figure.axes[0])) == len(DEFENCES) - 1
    plt.close(figure)


@pytest.mark.parametrize(
    "draw, column",
    [
        (lambda: plots.plot_attack_accuracy(
            synthetic_attack_summary().drop(columns="correct_images")), "correct_images"),
        (lambda: plots.plot_metric_intervals(
            synthetic_metric_intervals().drop(columns="ci_low")), "ci_low"),
        (lambda: plots.plot_metric_vs_attack(
            synthetic_metric_intervals(), synthetic_outcome_intervals().drop(columns="ci_high"),
            "DBM"), "ci_high"),
        (lambda: plots.plot_metric_vs_attack(
            synthetic_metric_intervals(), synthetic_outcome_intervals(), "DBM",
            correlations=synthetic_correlations().drop(columns="p")), "p"),
        (lambda: plots.plot_defence_comparison(
            synthetic_defence_tables()[0],
            synthetic_defence_tables()[1].drop(columns="p_adjusted")), "p_adjusted"),
        (lambda: plots.plot_defence_comparison(
            synthetic_defence_tables()[0].drop(columns="network"),
            synthetic_defence_tables()[1]), "network"),
    ],
)
def test_interval_figures_name_a_missing_column(draw, column):
    with pytest.raises(ValueError, match=rf"missing \['{column}'\]"):
        draw()


def test_defence_comparison_rejects_an_unknown_null_control():
    values, tests = synthetic_defence_tables()
    with pytest.raises(ValueError, match=r"null_control must be a defence of tests.*received "
                                         r"'null_control' \(None draws no null-control row\)"):
        plots.plot_defence_comparison(values, tests[tests["defence"] != analysis.NULL_CONTROL])
