"""Tests of rzs.metrics: hand-computed cases, invariances, properties, scikit-learn agreement."""

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from sklearn.metrics import davies_bouldin_score

from rzs import metrics

# A shared 2-core machine can stall any example; a deadline would turn that into a failure.
PROPERTY_SETTINGS = settings(deadline=None, max_examples=60)


@st.composite
def probability_rows(draw, rows=None, columns=None):
    """(M, C) float64 probability rows; M in [1, 12] and C in [2, 6] unless given."""
    row_count = rows if rows is not None else draw(st.integers(1, 12))
    column_count = columns if columns is not None else draw(st.integers(2, 6))
    weights = draw(
        arrays(np.float64, (row_count, column_count), elements=st.floats(0.0, 1.0))
    )
    # The offset keeps every row's total positive so it can be normalised.
    weights = weights + 1e-3
    return weights / weights.sum(axis=1, keepdims=True)


@st.composite
def zero_shot_and_full(draw):
    """(Q (M, N-1), P (M, N), excluded) for one excluded class."""
    full = draw(probability_rows())
    zero_shot = draw(probability_rows(rows=len(full), columns=full.shape[1] - 1))
    excluded = draw(st.integers(0, full.shape[1] - 1))
    return zero_shot, full, excluded


def random_soft_labels_by_class(num_classes=4, images=15, seed=0):
    generator = np.random.default_rng(seed)
    return {
        index: (
            generator.dirichlet(np.ones(num_classes - 1), size=images),
            generator.dirichlet(np.ones(num_classes), size=images),
        )
        for index in range(num_classes)
    }


# Davies-Bouldin Metric --------------------------------------------------------------------------

def test_davies_bouldin_metric_two_opposite_one_hot_rows():
    # Centroid (0.5, 0.5); each row is sqrt(0.5) from it, so every power mean is sqrt(0.5).
    soft_labels = [[1.0, 0.0], [0.0, 1.0]]
    assert metrics.davies_bouldin_metric(soft_labels) == pytest.approx(math.sqrt(0.5))
    assert metrics.davies_bouldin_metric(soft_labels, q=1) == pytest.approx(math.sqrt(0.5))


def test_davies_bouldin_metric_hand_computed_q1_and_q2_differ():
    # Centroid (2/3, 1/3, 0); distances sqrt(2)/3, sqrt(2)/3, 2 sqrt(2)/3.
    soft_labels = [[1.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]
    assert metrics.davies_bouldin_metric(soft_labels, q=1) == pytest.approx(4 * math.sqrt(2) / 9)
    assert metrics.davies_bouldin_metric(soft_labels, q=2) == pytest.approx(2 / 3)


def test_davies_bouldin_metric_single_image_is_zero():
    assert metrics.davies_bouldin_metric([[0.2, 0.3, 0.5]]) == 0.0


@PROPERTY_SETTINGS
@given(row=probability_rows(), copies=st.integers(1, 20))
def test_davies_bouldin_metric_is_zero_for_identical_rows(row, copies):
    identical = np.repeat(row[:1], copies, axis=0)
    assert metrics.davies_bouldin_metric(identical) == pytest.approx(0.0, abs=1e-12)


@PROPERTY_SETTINGS
@given(soft_labels=probability_rows(), seed=st.integers(0, 2**32 - 1),
       q=st.sampled_from([1, 2, 3.5]))
def test_davies_bouldin_metric_ignores_row_order(soft_labels, seed, q):
    permuted = np.random.default_rng(seed).permutation(soft_labels)
    assert metrics.davies_bouldin_metric(permuted, q=q) == pytest.approx(
        metrics.davies_bouldin_metric(soft_labels, q=q)
    )


@PROPERTY_SETTINGS
@given(soft_labels=probability_rows())
def test_davies_bouldin_metric_grows_with_q(soft_labels):
    # Power means are non-decreasing in the power.
    q1 = metrics.davies_bouldin_metric(soft_labels, q=1)
    q2 = metrics.davies_bouldin_metric(soft_labels, q=2)
    assert q1 <= q2 + 1e-12
    # No point of the simplex is farther than sqrt(2) from another.
    assert q2 <= math.sqrt(2) + 1e-12


# Davies-Bouldin index ---------------------------------------------------------------------------

def test_davies_bouldin_index_hand_computed():
    # Centroids 1 and 11, scatters 1 and 1: R = (1 + 1) / 10 for both clusters.
    points = [[0.0], [2.0], [10.0], [12.0]]
    assert metrics.davies_bouldin_index(points, [0, 0, 1, 1]) == pytest.approx(0.2)


@pytest.mark.parametrize("seed", range(5))
def test_davies_bouldin_index_with_q1_matches_scikit_learn(seed):
    generator = np.random.default_rng(seed)
    points = generator.normal(size=(60, 3))
    labels = generator.integers(0, 4, size=60)
    assert metrics.davies_bouldin_index(points, labels, q=1) == pytest.approx(
        davies_bouldin_score(points, labels), rel=1e-12
    )


def test_davies_bouldin_index_accepts_string_labels():
    points = [[0.0], [2.0], [10.0], [12.0]]
    assert metrics.davies_bouldin_index(points, ["a", "a", "b", "b"]) == pytest.approx(0.2)


def test_davies_bouldin_index_rejects_coinciding_centroids():
    with pytest.raises(ValueError, match="centroids coincide"):
        metrics.davies_bouldin_index([[0.0], [2.0], [1.0], [1.0]], [0, 0, 1, 1])


def test_davies_bouldin_index_rejects_one_cluster():
    with pytest.raises(ValueError, match="at least 2 distinct clusters; received 1"):
        metrics.davies_bouldin_index([[0.0], [1.0]], [3, 3])


def test_davies_bouldin_index_rejects_labels_of_wrong_length():
    with pytest.raises(ValueError, match=r"labels must have shape \(2,\).*received shape \(3,\)"):
        metrics.davies_bouldin_index([[0.0], [1.0]], [0, 1, 1])


def test_embedded_davies_bouldin_index_matches_scikit_learn_on_the_embedding():
    soft_labels_by_class = random_soft_labels_by_class()
    points = np.concatenate(
        [metrics.embed_zero_shot(q, i) for i, (q, _) in soft_labels_by_class.items()]
    )
    labels = np.repeat(np.arange(4), 15)
    assert metrics.embedded_davies_bouldin_index(soft_labels_by_class) == pytest.approx(
        davies_bouldin_score(points, labels)
    )


def test_embed_zero_shot_puts_zero_at_the_excluded_position():
    embedded = metrics.embed_zero_shot([[0.1, 0.2, 0.7]], excluded=1)
    np.testing.assert_allclose(embedded, [[0.1, 0.0, 0.2, 0.7]])
    np.testing.assert_allclose(metrics.embed_zero_shot([[0.4, 0.6]], 2), [[0.4, 0.6, 0.0]])


# Amalgam proportions and Amalgam Metric ---------------------------------------------------------

def test_amalgam_proportions_hand_computed():
    full = [[0.5, 0.3, 0.2], [0.1, 0.1, 0.8]]
    np.testing.assert_allclose(metrics.amalgam_proportions(full, 0), [[0.6, 0.4], [1 / 9, 8 / 9]])
    np.testing.assert_allclose(
        metrics.amalgam_proportions(full, 1), [[5 / 7, 2 / 7], [1 / 9, 8 / 9]]
    )


def test_amalgam_proportions_of_a_row_certain_of_the_excluded_class_are_uniform():
    np.testing.assert_allclose(
        metrics.amalgam_proportions([[0.0, 1.0, 0.0, 0.0]], 1), [[1 / 3, 1 / 3, 1 / 3]]
    )


@PROPERTY_SETTINGS
@given(case=zero_shot_and_full())
def test_amalgam_proportions_are_probability_rows(case):
    _, full, excluded = case
    proportions = metrics.amalgam_proportions(full, excluded)
    assert proportions.shape == (len(full), full.shape[1] - 1)
    np.testing.assert_allclose(proportions.sum(axis=1), 1.0)


def test_amalgam_metric_hand_computed_l1_and_l2():
    full = [[0.5, 0.3, 0.2]]  # amalgam proportions without class 0: (0.6, 0.4)
    assert metrics.amalgam_metric([[1.0, 0.0]], full, 0) == pytest.approx(0.8)
    assert metrics.amalgam_metric([[1.0, 0.0]], full, 0, distance="l2") == pytest.approx(
        math.sqrt(0.32)
    )


def test_amalgam_metric_per_image_and_class_mean_differ_as_defined():
    zero_shot = [[1.0, 0.0], [0.0, 1.0]]
    full = [[0.5, 0.0, 0.5], [0.5, 0.5, 0.0]]  # amalgam proportions (0, 1) and (1, 0)
    assert metrics.amalgam_metric(zero_shot, full, 0, reduce="image") == pytest.approx(2.0)
    # Both means are (0.5, 0.5): the opposite disagreements cancel.
    assert metrics.amalgam_metric(zero_shot, full, 0, reduce="mean") == pytest.approx(0.0)


@PROPERTY_SETTINGS
@given(case=zero_shot_and_full(), distance=st.sampled_from(["l1", "l2"]),
       reduce=st.sampled_from(["image", "mean"]))
def test_amalgam_metric_is_zero_when_zero_shot_equals_the_amalgam_proportions(
    case, distance, reduce
):
    _, full, excluded = case
    proportions = metrics.amalgam_proportions(full, excluded)
    assert metrics.amalgam_metric(
        proportions, full, excluded, distance=distance, reduce=reduce
    ) == pytest.approx(0.0, abs=1e-12)


@PROPERTY_SETTINGS
@given(case=zero_shot_and_full(), seed=st.integers(0, 2**32 - 1),
       reduce=st.sampled_from(["image", "mean"]))
def test_amalgam_metric_ignores_a_common_row_order(case, seed, reduce):
    zero_shot, full, excluded = case
    order = np.random.default_rng(seed).permutation(len(full))
    assert metrics.amalgam_metric(
        zero_shot[order], full[order], excluded, reduce=reduce
    ) == pytest.approx(metrics.amalgam_metric(zero_shot, full, excluded, reduce=reduce))


@PROPERTY_SETTINGS
@given(case=zero_shot_and_full())
def test_amalgam_metric_l1_is_between_0_and_2_and_mean_never_exceeds_image(case):
    zero_shot, full, excluded = case
    per_image = metrics.amalgam_metric(zero_shot, full, excluded)
    class_mean = metrics.amalgam_metric(zero_shot, full, excluded, reduce="mean")
    assert 0.0 <= per_image <= 2.0 + 1e-12
    # Triangle inequality: the norm of the mean difference is at most the mean norm.
    assert class_mean <= per_image + 1e-12


# Class-level amalgam matrix ---------------------------------------------------------------------

def test_class_amalgam_matrix_hand_computed():
    soft_labels_by_class = {
        0: ([[0.5, 0.5]], [[0.2, 0.4, 0.4]]),
        2: ([[1.0, 0.0], [0.0, 1.0]], [[0.3, 0.3, 0.4], [0.1, 0.7, 0.2]]),
    }
    amalgam = metrics.class_amalgam_matrix(soft_labels_by_class)
    np.testing.assert_allclose(amalgam[0], [0.0, 0.5, 0.5])
    assert np.isnan(amalgam[1]).all()
    # Class 2 rows: (0.5, 0.5) and (0.125, 0.875) -> mean (0.3125, 0.6875).
    np.testing.assert_allclose(amalgam[2], [0.3125, 0.6875, 0.0])
    zero_shot = metrics.class_amalgam_matrix(soft_labels_by_class, source="zero_shot")
    np.testing.assert_allclose(zero_shot[2], [0.5, 0.5, 0.0])


@pytest.mark.parametrize("source", ["amalgam", "zero_shot"])
def test_class_amalgam_matrix_rows_sum_to_one_with_zero_diagonal(source):
    matrix = metrics.class_amalgam_matrix(random_soft_labels_by_class(5), source=source)
    assert matrix.shape == (5, 5)
    np.testing.assert_allclose(matrix.sum(axis=1), 1.0)
    np.testing.assert_array_equal(np.diag(matrix), 0.0)


# Tidy tables ------------------------------------------------------------------------------------

def test_metrics_table_rows_match_the_metric_functions():
    soft_labels_by_class = random_soft_labels_by_class()
    table = metrics.metrics_table(soft_labels_by_class, "LeNet", ["a", "b", "c", "d"])
    assert list(table.columns) == [
        "network", "excluded_class", "class_name", "images", "dbm", "am", "embedded_dbi",
        "dbm_mean", "dbm_std", "am_mean", "am_std",
    ]
    assert list(table["class_name"]) == ["a", "b", "c", "d"]
    for row in table.itertuples():
        zero_shot, full = soft_labels_by_class[row.excluded_class]
        assert row.dbm == pytest.approx(metrics.davies_bouldin_metric(zero_shot))
        assert row.am == pytest.approx(metrics.amalgam_metric(zero_shot, full, row.excluded_class))
    assert table["dbm_mean"].iloc[0] == pytest.approx(table["dbm"].mean())
    assert table["am_std"].iloc[0] == pytest.approx(np.std(table["am"], ddof=1))
    assert (table["embedded_dbi"] == metrics.embedded_davies_bouldin_index(soft_labels_by_class)).all()


def test_metrics_table_options_reach_the_metrics():
    soft_labels_by_class = random_soft_labels_by_class()
    table = metrics.metrics_table(soft_labels_by_class, "N", q=1, distance="l2", reduce="mean")
    zero_shot, full = soft_labels_by_class[2]
    assert table["dbm"].iloc[2] == pytest.approx(metrics.davies_bouldin_metric(zero_shot, q=1))
    assert table["am"].iloc[2] == pytest.approx(
        metrics.amalgam_metric(zero_shot, full, 2, distance="l2", reduce="mean")
    )
    assert list(table["class_name"]) == ["0", "1", "2", "3"]


def test_metrics_table_sorts_classes_and_single_class_std_is_nan():
    soft_labels_by_class = random_soft_labels_by_class()
    table = metrics.metrics_table({3: soft_labels_by_class[3]}, "N")
    assert table["excluded_class"].tolist() == [3]
    assert np.isnan(table["dbm_std"].iloc[0])
    reversed_order = {index: soft_labels_by_class[index] for index in (3, 1, 0, 2)}
    assert metrics.metrics_table(reversed_order, "N")["excluded_class"].tolist() == [0, 1, 2, 3]


def test_network_metric_values_summarises_each_network():
    table = pd.concat(
        [
            metrics.metrics_table(random_soft_labels_by_class(seed=seed), name)
            for seed, name in enumerate(["LeNet", "ResNet"])
        ]
    )
    values = metrics.network_metric_values(table)
    assert list(values.columns) == ["network", "metric", "value", "std", "classes"]
    assert len(values) == 6 and set(values["metric"]) == {"DBM", "AM", "embedded DBI"}
    resnet_am = values[(values["network"] == "ResNet") & (values["metric"] == "AM")].iloc[0]
    assert resnet_am["value"] == pytest.approx(table[table["network"] == "ResNet"]["am"].mean())
    assert resnet_am["classes"] == 4


def test_network_metric_values_rejects_other_tables():
    with pytest.raises(ValueError, match="missing"):
        metrics.network_metric_values(pd.DataFrame({"network": ["a"], "value": [1.0]}))


# Input checks -----------------------------------------------------------------------------------

FULL = np.array([[0.5, 0.3, 0.2], [0.2, 0.2, 0.6]])
ZERO_SHOT = np.array([[0.5, 0.5], [0.1, 0.9]])


@pytest.mark.parametrize(
    ("zero_shot", "full", "excluded", "message"),
    [
        ([[1.5, -0.5], [0.5, 0.5]], FULL, 0, r"zero_shot_soft_labels must be probabilities >= 0; "
                                             r"received -0.5 at row 0, column 1"),
        ([[np.nan, 1.0], [0.5, 0.5]], FULL, 0,
         r"zero_shot_soft_labels must be finite.*received nan"),
        (ZERO_SHOT, FULL * 2, 0, r"full_soft_labels rows must sum to 1 within 0.001; received "
                                 r"row 0 summing to 2"),
        (ZERO_SHOT, FULL[:, :2] / FULL[:, :2].sum(1, keepdims=True), 0,
         r"must have N-1 = 1 columns.*received 2"),
        (np.array([[0.2, 0.3, 0.5]] * 2), FULL, 0, r"N-1 = 2 columns.*received 3"),
        (ZERO_SHOT[:1], FULL, 0, r"same images in the same order; received 1 and 2 rows"),
        (ZERO_SHOT, FULL, 3, r"excluded must be a class index in \[0, 2\]; received 3"),
        (ZERO_SHOT, FULL, -1, r"received -1"),
        (ZERO_SHOT, FULL, 1.0, r"excluded must be an integer.*received 1.0"),
        (ZERO_SHOT, FULL, True, r"excluded must be an integer.*received True"),
        ([0.5, 0.5], FULL, 0, r"zero_shot_soft_labels must be a 2-D array.*received shape \(2,\)"),
        ([[0.5, 0.5], [0.5]], FULL, 0, r"zero_shot_soft_labels must be a numeric array.*list"),
    ],
)
def test_amalgam_metric_rejects_bad_soft_labels(zero_shot, full, excluded, message):
    with pytest.raises(ValueError, match=message):
        metrics.amalgam_metric(zero_shot, full, excluded)


@pytest.mark.parametrize(
    ("keyword", "value", "message"),
    [
        ("distance", "cosine", r"distance must be one of \['l1', 'l2'\]; received 'cosine'"),
        ("reduce", "median", r"reduce must be one of \['image', 'mean'\]; received 'median'"),
    ],
)
def test_amalgam_metric_rejects_unknown_options(keyword, value, message):
    with pytest.raises(ValueError, match=message):
        metrics.amalgam_metric(ZERO_SHOT, FULL, 0, **{keyword: value})


@pytest.mark.parametrize("q", [0, -1, float("inf"), float("nan"), "2", True])
def test_davies_bouldin_metric_rejects_bad_q(q):
    with pytest.raises(ValueError, match="q must be a real number > 0; received"):
        metrics.davies_bouldin_metric(ZERO_SHOT, q=q)


def test_raw_capsule_lengths_are_rejected_and_normalised_ones_accepted():
    lengths = np.array([[0.9, 0.3, 0.2], [0.1, 0.8, 0.4]], dtype=np.float32)
    with pytest.raises(ValueError, match="Normalise capsule lengths"):
        metrics.davies_bouldin_metric(lengths)
    normalised = lengths / lengths.sum(axis=1, keepdims=True)
    assert metrics.davies_bouldin_metric(normalised) > 0


def test_float32_softmax_rows_are_accepted():
    logits = np.random.default_rng(0).normal(size=(50, 10)).astype(np.float32)
    soft = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    assert metrics.amalgam_metric(soft[:, 1:] / soft[:, 1:].sum(1, keepdims=True), soft, 0) == (
        pytest.approx(0.0, abs=1e-6)
    )


@pytest.mark.parametrize(
    ("mapping", "message"),
    [
        ({}, "non-empty mapping.*received an empty dict"),
        ([1, 2], "non-empty mapping.*received list"),
        ({0: ZERO_SHOT}, r"soft_labels_by_class\[0\] must be a pair.*received ndarray"),
        ({0: (ZERO_SHOT, FULL), 1: (ZERO_SHOT[:, :1] / ZERO_SHOT[:, :1], FULL[:, :2] /
                                    FULL[:, :2].sum(1, keepdims=True))},
         r"same N-class dataset; received full soft labels of widths \[2, 3\]"),
    ],
)
def test_check_soft_labels_by_class_rejects_bad_mappings(mapping, message):
    with pytest.raises(ValueError, match=message):
        metrics.metrics_table(mapping, "N")


def test_metrics_table_rejects_class_names_of_wrong_length():
    with pytest.raises(ValueError, match="class_names must hold N = 4 names; received 2"):
        metrics.metrics_table(random_soft_labels_by_class(), "N", class_names=["a", "b"])


def test_class_amalgam_matrix_rejects_unknown_source():
    with pytest.raises(ValueError, match=r"source must be one of.*received 'full'"):
        metrics.class_amalgam_matrix(random_soft_labels_by_class(), source="full")


# Metric hygiene ----------------------------------------------------------------------------------

def confident_correct_soft_labels(labels, num_classes, confidence=0.9):
    """Rows putting `confidence` on the true class and the rest evenly on the others."""
    rows = np.full((len(labels), num_classes), (1 - confidence) / (num_classes - 1))
    rows[np.arange(len(labels)), labels] = confidence
    return rows


def test_a_constant_output_classifier_is_degenerate():
    labels = np.repeat(np.arange(9), 20)
    constant = np.tile(np.random.default_rng(0).dirichlet(np.ones(9)), (len(labels), 1))
    hygiene = metrics.classifier_hygiene(constant, labels)
    assert hygiene["degenerate"] and hygiene["classes_predicted"] == 1
    assert "predicts 1 of its 9 classes" in hygiene["reason"]
    assert hygiene["accuracy"] == pytest.approx(1 / 9)


def test_near_uniform_outputs_are_degenerate_even_when_accurate():
    labels = np.repeat(np.arange(9), 20)
    # Every argmax right, but each row barely leaves the uniform 1/9.
    rows = confident_correct_soft_labels(labels, 9, confidence=0.13)
    hygiene = metrics.classifier_hygiene(rows, labels)
    assert hygiene["accuracy"] == 1 and hygiene["classes_predicted"] == 9
    assert hygiene["degenerate"] and hygiene["reason"].startswith("mean confidence 0.130 <")


def test_a_working_classifier_is_not_degenerate():
    labels = np.repeat(np.arange(9), 20)
    hygiene = metrics.classifier_hygiene(confident_correct_soft_labels(labels, 9), labels)
    assert not hygiene["degenerate"] and hygiene["reason"] == ""
    assert (hygiene["accuracy"], hygiene["classes_predicted"], hygiene["images"]) == (1.0, 9, len(labels))
    assert hygiene["mean_confidence"] == pytest.approx(0.9)


def test_classifier_hygiene_rejects_labels_that_do_not_match_the_rows():
    with pytest.raises(ValueError, match="one class per row"):
        metrics.classifier_hygiene([[0.5, 0.5]], [0, 1])


# Temperature calibration -------------------------------------------------------------------------

def sampled_logits_and_labels(temperature, images=4000, classes=5, seed=0):
    """Logits z and labels drawn from softmax(z / temperature), so T = temperature fits best."""
    generator = np.random.default_rng(seed)
    logits = generator.normal(0, 3, (images, classes))
    probabilities = metrics.softmax_at_temperature(logits, temperature)
    labels = np.array([generator.choice(classes, p=row) for row in probabilities])
    return logits, labels


def test_fit_temperature_recovers_the_temperature_labels_were_drawn_at():
    for temperature in (0.5, 2.5):
        logits, labels = sampled_logits_and_labels(temperature)
        assert metrics.fit_temperature(logits, labels) == pytest.approx(temperature, rel=0.1)


def test_calibration_undoes_a_change_of_the_logits_scale():
    # The confound: the same logits divided by 0.5 ... 4 move DBM from 0.79 to 0.24.
    # Fitted on the same labelled images, the calibrated soft labels are the same at every scale.
    logits, labels = sampled_logits_and_labels(1.0, images=600)
    reference = metrics.softmax_at_temperature(logits, metrics.fit_temperature(logits, labels))
    for scale in (0.25, 2.0):
        scaled = logits / scale
        raw = metrics.softmax_at_temperature(scaled, 1.0)
        calibrated = metrics.softmax_at_temperature(scaled, metrics.fit_temperature(scaled, labels))
        assert abs(metrics.davies_bouldin_metric(raw) - metrics.davies_bouldin_metric(reference)) > 0.05
        np.testing.assert_allclose(calibrated, reference, atol=2e-3)


def test_temperature_ignores_a_constant_per_row_so_log_probabilities_serve_as_logits():
    logits, labels = sampled_logits_and_labels(1.5, images=300)
    log_probabilities = np.log(metrics.softmax_at_temperature(logits, 1.0))
    assert metrics.fit_temperature(log_probabilities, labels) == pytest.approx(
        metrics.fit_temperature(logits, labels), rel=1e-4
    )
    np.testing.assert_allclose(
        metrics.softmax_at_temperature(log_probabilities, 3.0), metrics.softmax_at_temperature(logits, 3.0)
    )


def test_a_separable_calibration_set_sharpens_towards_the_lower_temperature_bound():
    logits = np.array([[10.0, 0.0], [0.0, 10.0]])
    temperature = metrics.fit_temperature(logits, [0, 1])
    # The likelihood only falls as T shrinks, until it is 0 to double precision.
    assert metrics.TEMPERATURE_BOUNDS[0] <= temperature < 0.1
    np.testing.assert_allclose(metrics.softmax_at_temperature(logits, temperature), np.eye(2), atol=1e-12)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: metrics.fit_temperature([[1.0, 2.0]], [2]), "labels must lie in"),
        (lambda: metrics.fit_temperature([[1.0, 2.0]], [0.5]), "integer classes"),
        (lambda: metrics.fit_temperature([[1.0, np.inf]], [0]), "finite"),
        (lambda: metrics.softmax_at_temperature([[1.0, 2.0]], 0), "temperature"),
    ],
)
def test_calibration_rejects_bad_input_naming_it(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_metrics_table_computes_the_calibrated_metrics_beside_the_raw():
    soft_labels_by_class = random_soft_labels_by_class()
    calibrated = random_soft_labels_by_class(seed=1)
    table = metrics.metrics_table(soft_labels_by_class, "N", calibrated=calibrated)
    zero_shot, full = calibrated[1]
    assert table["dbm_calibrated"].iloc[1] == pytest.approx(metrics.davies_bouldin_metric(zero_shot))
    assert table["am_calibrated"].iloc[1] == pytest.approx(metrics.amalgam_metric(zero_shot, full, 1))
    assert table["embedded_dbi_calibrated"].iloc[0] == pytest.approx(
        metrics.embedded_davies_bouldin_index(calibrated)
    )
    assert table["dbm"].iloc[1] == pytest.approx(metrics.davies_bouldin_metric(soft_labels_by_class[1][0]))
    with pytest.raises(ValueError, match="same excluded classes and images"):
        metrics.metrics_table(soft_labels_by_class, "N", calibrated={0: calibrated[0]})


def test_network_metric_values_per_seed_with_calibrated_metrics_and_degenerate_models():
    tables = []
    for seed in (0, 1):
        table = metrics.metrics_table(
            random_soft_labels_by_class(seed=seed), "LeNet", calibrated=random_soft_labels_by_class(seed=seed + 5)
        )
        tables.append(table.assign(seed=seed, degenerate=[seed == 1, False, False, False]))
    values = metrics.network_metric_values(pd.concat(tables))
    assert list(values.columns) == ["network", "seed", "metric", "value", "std", "classes", "degenerate_models"]
    assert set(values["metric"]) == {
        "DBM", "AM", "DBM (calibrated)", "AM (calibrated)", "embedded DBI", "embedded DBI (calibrated)"
    }
    assert len(values) == 12
    embedded = values[values["metric"] == "embedded DBI"]
    assert embedded["std"].isna().all() and list(embedded["degenerate_models"]) == [0, 1]
    seed_one_dbm = values[(values["seed"] == 1) & (values["metric"] == "DBM (calibrated)")].iloc[0]
    assert seed_one_dbm["value"] == pytest.approx(tables[1]["dbm_calibrated"].mean())


def test_embedded_dbi_is_scale_free_in_space_but_not_in_temperature():
    generator = np.random.default_rng(0)
    points = generator.normal(size=(60, 4))
    labels = np.repeat(np.arange(3), 20)
    centre = points.mean(axis=0)
    assert metrics.davies_bouldin_index(centre + 0.1 * (points - centre), labels) == pytest.approx(
        metrics.davies_bouldin_index(points, labels)
    )
    # A temperature shrinks each excluded class towards its own uniform point, the centroids stay
    # apart: the index falls with T as DBM does, which only calibration undoes.
    logits = {index: generator.normal(0, 3, (30, 4)) for index in range(5)}
    values = [
        metrics.embedded_davies_bouldin_index(
            {index: (metrics.softmax_at_temperature(z, temperature), np.full((30, 5), 0.2)) for index, z in logits.items()}
        )
        for temperature in (0.5, 2.0, 8.0)
    ]
    assert values[0] > values[1] > values[2]
