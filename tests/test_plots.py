"""Tests of rzs.plots: every figure renders from synthetic soft labels, reproducibly."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from rzs import metrics, plots  # noqa: E402

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
    values = metrics.network_metric_values(table)
    generator = np.random.default_rng(7)
    attacks = pd.DataFrame(
        [
            (network, attack, th, generator.uniform())
            for network in NETWORKS
            for attack in ("pixel", "threshold")
            for th in (1, 3)
        ],
        columns=["network", "attack", "th", "accuracy"],
    )
    paired = pd.DataFrame(
        [
            (defence, network, quantity, generator.uniform())
            for defence in ("vanilla", "jpeg", "adversarial training")
            for network in NETWORKS
            for quantity in ("DBM", "pixel th=1")
        ],
        columns=["defence", "network", "quantity", "value"],
    )
    return soft_labels, table, values, attacks, paired


def build_figures():
    soft_labels, table, values, attacks, paired = synthetic_tables()
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
        "metrics_per_network": lambda: plots.plot_metrics_per_network(table),
        "attack_accuracy": lambda: plots.plot_attack_accuracy(
            attacks.rename(columns={"accuracy": "attack_accuracy"})
        ),
        "metric_vs_attack": lambda: plots.plot_metric_vs_attack(values, attacks, "AM",
                                                                columns=2),
        "defence_comparison": lambda: plots.plot_defence_comparison(paired),
        "raw_zero_shot_illustration": lambda: plots.plot_raw_zero_shot_illustration(
            *illustration_inputs(resnet, excluded=3, channels=3), CLASS_NAMES[:3],
            CLASS_NAMES[3], "ResNet",
        ),
        "raw_zero_shot_illustration_grey": lambda: plots.plot_raw_zero_shot_illustration(
            illustration_inputs(resnet, excluded=0, channels=1)[0],
            resnet[0][0][:2], None, CLASS_NAMES[1:], CLASS_NAMES[0], "LeNet",
        ),
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
    soft_labels, _, values, attacks, paired = synthetic_tables()
    with pytest.raises(ValueError, match=r"metric must be one of \['AM', 'DBM'\]; received 'XX'"):
        plots.plot_metric_vs_attack(values, attacks, "XX")
    with pytest.raises(ValueError, match=r"quantities must be among.*unknown \['AM'\]"):
        plots.plot_defence_comparison(paired, quantities=["AM"])
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


def test_attack_accuracy_names_missing_columns():
    with pytest.raises(ValueError, match="attack_accuracy"):
        plots.plot_attack_accuracy(pd.DataFrame({"network": ["a"], "attack": ["pixel"], "th": [1]}))
