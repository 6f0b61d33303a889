"""The two Raw Zero-Shot metrics: the Davies-Bouldin Metric (DBM) and the Amalgam Metric (AM).

Notation (docs/metrics.md): a dataset has N classes. C_-i is the
classifier trained without class i; fed the M test images of class i it gives the Raw Zero-Shot
soft labels Q_i, shape (M, N-1), whose columns are the known classes in their original order with
class i left out. The full classifier C gives P_i, shape (M, N), on the same images in the same
order, so row m of Q_i and row m of P_i describe the same image.

The engine stores one network's soft labels as a mapping
``{i: (Q_i, P_i)}`` over the excluded classes i; the functions that take
``soft_labels_by_class`` expect exactly that.

Capsule networks output capsule lengths; the engine normalises each row to sum 1 before storing,
so they arrive here as probability rows like every other network and pass the same checks.
"""

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import optimize, special

# float32 softmax rows sum to 1 within ~N * 6e-8; 1e-3 accepts any float32 or float16 pipeline
# but still rejects raw capsule lengths or logits, which miss 1 by far more.
SUM_TOLERANCE = 1e-3

DISTANCE_ORDERS = {"l1": 1, "l2": 2}
REDUCTIONS = ("image", "mean")
MATRIX_SOURCES = ("amalgam", "zero_shot")
# Per-class metric columns of `metrics_table` and their names in `network_metric_values`; the
# calibrated ones exist when calibrated soft labels are given (docs/metrics.md, "Calibration").
CLASS_METRICS = {
    "dbm": "DBM",
    "am": "AM",
    "dbm_calibrated": "DBM (calibrated)",
    "am_calibrated": "AM (calibrated)",
}
# Network-level metric columns (one value per network, repeated on each of its rows).
NETWORK_METRICS = {
    "embedded_dbi": "embedded DBI",
    "embedded_dbi_calibrated": "embedded DBI (calibrated)",
}
# Temperatures the calibration may choose from (docs/metrics.md, "Calibration"): a model that
# separates its calibration images perfectly drives the fitted temperature towards 0, and the
# lower bound keeps it finite.
TEMPERATURE_BOUNDS = (1e-2, 1e2)
# A classifier of C classes is degenerate when its accuracy or its mean confidence on test images
# of its own classes closes less than this fraction of the gap from chance (1/C) to 1, or when it
# never predicts one of its classes (docs/metrics.md, "Metric hygiene").
DEGENERATE_GAP_FRACTION = 0.25


def check_soft_labels(soft_labels, name="soft_labels"):
    """Return ``soft_labels`` as a float64 array (M, C) whose rows are probability vectors.

    Raises ValueError naming ``name`` when the array is not 2-D with M >= 1 and C >= 1, holds a
    NaN or infinity, a negative entry, or a row whose sum is not 1 within SUM_TOLERANCE.
    """
    try:
        array = np.asarray(soft_labels, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise ValueError(
            f"{name} must be a numeric array of shape (M images, C classes); received "
            f"{type(soft_labels).__name__} that NumPy cannot read as numbers ({error})"
        ) from error
    if array.ndim != 2 or array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError(
            f"{name} must be a 2-D array of shape (M images, C classes) with M >= 1 and C >= 1; "
            f"received shape {array.shape}"
        )
    non_finite = np.argwhere(~np.isfinite(array))
    if len(non_finite):
        row, column = non_finite[0]
        raise ValueError(
            f"{name} must be finite probabilities; received {array[row, column]} at row {row}, "
            f"column {column} ({len(non_finite)} non-finite entries in all)"
        )
    negative = np.argwhere(array < 0)
    if len(negative):
        row, column = negative[0]
        raise ValueError(
            f"{name} must be probabilities >= 0; received {array[row, column]} at row {row}, "
            f"column {column} ({len(negative)} negative entries in all)"
        )
    sums = array.sum(axis=1)
    off = np.flatnonzero(np.abs(sums - 1.0) > SUM_TOLERANCE)
    if len(off):
        raise ValueError(
            f"{name} rows must sum to 1 within {SUM_TOLERANCE}; received row {off[0]} summing to "
            f"{sums[off[0]]} ({len(off)} such rows in all). Normalise capsule lengths or apply "
            f"softmax to logits before computing the metrics."
        )
    return array


def check_soft_labels_by_class(soft_labels_by_class):
    """Check the engine's mapping {i: (Q_i (M_i, N-1), P_i (M_i, N))} of one network.

    Returns (the mapping sorted by i with float64 arrays, N). Raises ValueError when the mapping
    is empty, a value is not a pair, an array is not probability rows, Q_i is not N-1 wide, Q_i
    and P_i differ in rows, i is outside [0, N-1], or the classes disagree on N.
    """
    if not isinstance(soft_labels_by_class, Mapping) or not soft_labels_by_class:
        raise ValueError(
            "soft_labels_by_class must be a non-empty mapping {excluded_class_index: "
            "(zero_shot_soft_labels, full_soft_labels)}; received "
            f"{'an empty ' if isinstance(soft_labels_by_class, Mapping) else ''}"
            f"{type(soft_labels_by_class).__name__}"
        )
    checked = {}
    widths = set()
    for excluded, pair in soft_labels_by_class.items():
        if not isinstance(pair, Sequence) or len(pair) != 2:
            raise ValueError(
                f"soft_labels_by_class[{excluded!r}] must be a pair (zero_shot_soft_labels, "
                f"full_soft_labels); received {type(pair).__name__}"
            )
        zero_shot, full, index = _check_pair(pair[0], pair[1], excluded)
        checked[index] = (zero_shot, full)
        widths.add(full.shape[1])
    if len(widths) != 1:
        raise ValueError(
            f"every excluded class must come from the same N-class dataset; received full soft "
            f"labels of widths {sorted(widths)}"
        )
    return dict(sorted(checked.items())), widths.pop()


def check_class_names(class_names, num_classes):
    """Return N class names as strings; None gives "0" ... "N-1"."""
    if class_names is None:
        return [str(index) for index in range(num_classes)]
    names = [str(name) for name in class_names]
    if len(names) != num_classes:
        raise ValueError(
            f"class_names must hold N = {num_classes} names; received {len(names)}: {names}"
        )
    return names


def check_class_index(excluded, num_classes):
    """Return ``excluded`` as an int after checking it indexes one of N >= 2 classes."""
    if isinstance(excluded, bool) or not isinstance(excluded, (int, np.integer)):
        raise ValueError(
            f"excluded must be an integer class index in [0, {num_classes - 1}]; "
            f"received {excluded!r}"
        )
    if num_classes < 2:
        raise ValueError(
            f"Raw Zero-Shot needs at least 2 classes; received soft labels of {num_classes} "
            f"class, so excluded={excluded!r} leaves none"
        )
    if not 0 <= excluded < num_classes:
        raise ValueError(
            f"excluded must be a class index in [0, {num_classes - 1}]; received {excluded!r}"
        )
    return int(excluded)


def davies_bouldin_metric(soft_labels, q=2):
    """Within-cluster scatter S of one cluster of soft labels (the Davies-Bouldin S_i).

        S = ( 1/M * sum_m ||x_m - xbar||_2^q )^(1/q),   xbar = 1/M * sum_m x_m

    soft_labels: (M, C) probability rows, one cluster (for Raw Zero-Shot: Q_i, C = N-1).
    q: power > 0 of the mean; 2 (default, Davies and Bouldin's choice for Euclidean clusters) is
    the root-mean-square distance to the centroid, 1 the mean distance (scikit-learn's scatter).
    Returns S >= 0; lower = denser cluster. The network's DBM is the mean of S over the excluded
    classes (see ``metrics_table``).
    """
    return _scatter(check_soft_labels(soft_labels, "soft_labels"), _check_power(q))


def davies_bouldin_index(points, labels, q=1):
    """Davies-Bouldin index of a labelled point set.

        S_k  = ( 1/|k| * sum_{x in k} ||x - A_k||_2^q )^(1/q)      (A_k: centroid of cluster k)
        R_kl = (S_k + S_l) / ||A_k - A_l||_2
        DBI  = 1/K * sum_k max_{l != k} R_kl

    points: (M, D) real vectors. labels: (M,) cluster labels, at least two distinct values.
    q: power of the scatter; with q = 1 (default) the value equals
    ``sklearn.metrics.davies_bouldin_score``. Returns DBI >= 0; lower = better separated.
    Raises ValueError when two centroids coincide, where the index is undefined.
    """
    points = np.asarray(points, dtype=np.float64)
    labels = np.asarray(labels)
    if points.ndim != 2 or not np.isfinite(points).all():
        raise ValueError(
            f"points must be a finite 2-D array of shape (M, D); received shape {points.shape}"
        )
    if labels.shape != (points.shape[0],):
        raise ValueError(
            f"labels must have shape ({points.shape[0]},), one per row of points; "
            f"received shape {labels.shape}"
        )
    clusters = np.unique(labels)
    if len(clusters) < 2:
        raise ValueError(
            f"labels must hold at least 2 distinct clusters; received {len(clusters)}"
        )
    power = _check_power(q)
    members = [points[labels == cluster] for cluster in clusters]
    centroids = np.stack([member.mean(axis=0) for member in members])
    scatters = np.array([_scatter(member, power) for member in members])
    separations = np.linalg.norm(centroids[:, None, :] - centroids[None, :, :], axis=-1)
    np.fill_diagonal(separations, np.inf)
    if (separations == 0).any():
        first, second = np.argwhere(separations == 0)[0]
        raise ValueError(
            f"the Davies-Bouldin index is undefined when two centroids coincide; received "
            f"clusters {clusters[first]!r} and {clusters[second]!r} with the same centroid"
        )
    ratios = (scatters[:, None] + scatters[None, :]) / separations
    return float(ratios.max(axis=1).mean())


def embed_zero_shot(zero_shot_soft_labels, excluded):
    """Embed Raw Zero-Shot soft labels of excluded class i into R^N with a zero at position i.

    zero_shot_soft_labels: (M, N-1) rows of C_-i. excluded: i in [0, N-1].
    Returns (M, N): column j < i is column j, column i is 0, column j > i is column j - 1, so
    every excluded class lives in the same space and columns name the same class throughout.
    """
    zero_shot = check_soft_labels(zero_shot_soft_labels, "zero_shot_soft_labels")
    index = check_class_index(excluded, zero_shot.shape[1] + 1)
    return np.insert(zero_shot, index, 0.0, axis=1)


def embedded_davies_bouldin_index(soft_labels_by_class, q=1):
    """Davies-Bouldin index over the N excluded-class clusters (the alternative to DBM).

    Each Q_i is embedded in R^N with a zero at position i (``embed_zero_shot``), the N clusters
    are pooled, and ``davies_bouldin_index`` is taken with cluster label i. Unlike DBM, this also
    rewards excluded classes whose clusters lie far apart.

    soft_labels_by_class: {i: (Q_i (M_i, N-1), P_i (M_i, N))}, at least two classes.
    q: scatter power; 1 (default) is the standard index, as in scikit-learn.
    """
    checked, _ = check_soft_labels_by_class(soft_labels_by_class)
    points = np.concatenate([embed_zero_shot(q_i, i) for i, (q_i, _) in checked.items()])
    labels = np.concatenate([np.full(len(q_i), i) for i, (q_i, _) in checked.items()])
    return davies_bouldin_index(points, labels, q=q)


def amalgam_proportions(full_soft_labels, excluded):
    """Amalgam proportions G_i: the full model's view of class-i images without class i.

        G_i[m, :] = P_i[m, -i] / sum_{j != i} P_i[m, j]

    full_soft_labels: P_i (M, N) of the full model on the images of class i. excluded: i.
    Returns (M, N-1), columns in the order of Q_i, rows summing to 1. A row whose mass is all on
    class i (float32 softmax underflows to exactly 0 beyond a logit gap of ~104) carries no
    information on the other classes, so it becomes the uniform row 1/(N-1).
    """
    full = check_soft_labels(full_soft_labels, "full_soft_labels")
    index = check_class_index(excluded, full.shape[1])
    remaining = np.delete(full, index, axis=1)
    totals = remaining.sum(axis=1, keepdims=True)
    uniform = np.full_like(remaining, 1.0 / remaining.shape[1])
    return np.divide(remaining, totals, out=uniform, where=totals > 0)


def amalgam_metric(zero_shot_soft_labels, full_soft_labels, excluded, distance="l1",
                   reduce="image"):
    """Amalgam Metric AM_i of excluded class i: distance of Q_i to the amalgam proportions G_i.

        reduce="image" (default):  AM_i = 1/M * sum_m || Q_i[m] - G_i[m] ||
        reduce="mean":             AM_i = || 1/M sum_m Q_i[m] - 1/M sum_m G_i[m] ||

    zero_shot_soft_labels: Q_i (M, N-1). full_soft_labels: P_i (M, N), same images, same order.
    excluded: i. distance: "l1" (default; the total-variation scale, AM_i in [0, 2]) or "l2".
    The per-image default also penalises images that disagree with G_i in opposite directions,
    which the comparison of means would cancel. Lower = better. The network's AM is the mean of
    AM_i over the excluded classes (see ``metrics_table``).
    """
    zero_shot, full, index = _check_pair(zero_shot_soft_labels, full_soft_labels, excluded)
    order = DISTANCE_ORDERS[_check_choice(distance, "distance", tuple(DISTANCE_ORDERS))]
    reduction = _check_choice(reduce, "reduce", REDUCTIONS)
    amalgam = amalgam_proportions(full, index)
    if reduction == "mean":
        difference = zero_shot.mean(axis=0) - amalgam.mean(axis=0)
        return float(np.linalg.norm(difference, ord=order))
    distances = np.linalg.norm(zero_shot - amalgam, ord=order, axis=1)
    return float(distances.mean())


def softmax_at_temperature(log_scores, temperature):
    """Soft labels of log-scale class scores z divided by a temperature T.

        p[m, c] = exp(z[m, c] / T) / sum_k exp(z[m, k] / T)

    log_scores: (M, C) logits, or log-probabilities (they differ from logits by one constant per
    row, which the softmax ignores). temperature: T > 0; T = 1 gives the model's own soft labels,
    T > 1 flattens them, T < 1 sharpens them. Returns (M, C) float64 probability rows.
    """
    scores = _check_log_scores(log_scores, "log_scores")
    if isinstance(temperature, bool) or not np.isfinite(temperature) or temperature <= 0:
        raise ValueError(f"temperature must be a finite number > 0; received {temperature!r}")
    return special.softmax(scores / float(temperature), axis=1)


def fit_temperature(log_scores, labels):
    """The temperature T minimising the mean negative log-likelihood of `labels` (Guo et al. 2017).

        T* = argmin_T  -1/M * sum_m log softmax(z_m / T)[y_m],   T in TEMPERATURE_BOUNDS

    log_scores: (M, C) logits or log-probabilities of M in-distribution images the model was not
    trained on. labels: (M,) their classes in [0, C-1]. The likelihood is convex in 1/T, so the
    bounded scalar search finds its minimum. Images the model separates perfectly drive T down
    until the likelihood is 1 to double precision (a T near the lower bound); a T at the upper
    bound means outputs no better than uniform. Returns T as a float.
    """
    scores = _check_log_scores(log_scores, "log_scores")
    labels = np.asarray(labels)
    if labels.shape != (len(scores),) or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(
            f"labels must be {len(scores)} integer classes, one per row of log_scores; received "
            f"{labels.dtype} array of shape {labels.shape}"
        )
    if len(labels) and not (0 <= labels.min() and labels.max() < scores.shape[1]):
        raise ValueError(
            f"labels must lie in [0, {scores.shape[1] - 1}]; received values from {labels.min()} "
            f"to {labels.max()}"
        )
    rows = np.arange(len(labels))

    def negative_log_likelihood(log_temperature):
        scaled = scores / np.exp(log_temperature)
        return float(np.mean(special.logsumexp(scaled, axis=1) - scaled[rows, labels]))

    low, high = np.log(TEMPERATURE_BOUNDS)
    fitted = optimize.minimize_scalar(negative_log_likelihood, bounds=(low, high), method="bounded")
    return float(np.exp(fitted.x))


def classifier_hygiene(soft_labels, labels):
    """Is a classifier usable? Its accuracy, classes predicted and confidence on its own classes.

    soft_labels: (M, C) soft labels of test images of the classifier's own C classes (for C_-i:
    every test image but class i's). labels: (M,) their classes in the classifier's numbering.
    With chance = 1/C and bound = chance + DEGENERATE_GAP_FRACTION * (1 - chance), the classifier
    is degenerate when

        classes_predicted < C            (a class it never predicts),
        accuracy < bound                 (barely better than guessing), or
        mean_confidence < bound          (near-uniform outputs: mean of max_c p[m, c]).

    Returns a dict with accuracy, images (M, the accuracy's denominator), classes_predicted,
    mean_confidence, degenerate (bool) and reason ("" when not degenerate, else every rule it
    breaks, separated by "; ").
    """
    probabilities = check_soft_labels(soft_labels, "soft_labels")
    labels = np.asarray(labels)
    if labels.shape != (len(probabilities),):
        raise ValueError(
            f"labels must hold one class per row of soft_labels ({len(probabilities)}); received "
            f"shape {labels.shape}"
        )
    num_classes = probabilities.shape[1]
    predictions = probabilities.argmax(axis=1)
    accuracy = float(np.mean(predictions == labels))
    classes_predicted = len(np.unique(predictions))
    mean_confidence = float(probabilities.max(axis=1).mean())
    chance = 1.0 / num_classes
    bound = chance + DEGENERATE_GAP_FRACTION * (1.0 - chance)
    reasons = []
    if classes_predicted < num_classes:
        reasons.append(f"predicts {classes_predicted} of its {num_classes} classes")
    if accuracy < bound:
        reasons.append(f"accuracy {accuracy:.3f} < {bound:.3f}")
    if mean_confidence < bound:
        reasons.append(f"mean confidence {mean_confidence:.3f} < {bound:.3f}")
    return {
        "accuracy": accuracy,
        "images": len(probabilities),
        "classes_predicted": classes_predicted,
        "mean_confidence": mean_confidence,
        "degenerate": bool(reasons),
        "reason": "; ".join(reasons),
    }


def metrics_table(soft_labels_by_class, network, class_names=None, q=2, distance="l1",
                  reduce="image", calibrated=None, embedded_q=1):
    """Tidy table of one network's metrics: one row per excluded class.

    soft_labels_by_class: {i: (Q_i (M_i, N-1), P_i (M_i, N))} as stored by the engine.
    network: name written in every row. class_names: N names (default: "0" ... "N-1").
    q, distance, reduce: as in ``davies_bouldin_metric`` and ``amalgam_metric``.
    calibrated: optional mapping like soft_labels_by_class holding the same images' soft labels
    after temperature calibration; adds dbm_calibrated, am_calibrated, embedded_dbi_calibrated.
    embedded_q: scatter power of ``embedded_davies_bouldin_index`` (1: the standard index).
    Returns columns network, excluded_class, class_name, images (M_i), dbm (S_i), am (AM_i), the
    network-level embedded_dbi (the same on every row; NaN for fewer than two classes or
    coinciding centroids, where it is undefined), and for every per-class metric its
    network-level <metric>_mean and <metric>_std over the excluded classes in the mapping (std
    with ddof=1: the spread of the class values, NaN for a single class).
    Tables of several networks concatenate with ``pd.concat``.
    """
    checked, num_classes = check_soft_labels_by_class(soft_labels_by_class)
    names = check_class_names(class_names, num_classes)
    versions = {"": checked}
    if calibrated is not None:
        calibrated_checked, _ = check_soft_labels_by_class(calibrated)
        if calibrated_checked.keys() != checked.keys() or any(
            calibrated_checked[i][0].shape != checked[i][0].shape for i in checked
        ):
            raise ValueError(
                "calibrated must hold the same excluded classes and images as "
                f"soft_labels_by_class; received classes {sorted(calibrated_checked)} for "
                f"{sorted(checked)}"
            )
        versions["_calibrated"] = calibrated_checked
    rows = []
    for index, (zero_shot, _) in checked.items():
        row = {"network": network, "excluded_class": index, "class_name": names[index],
               "images": len(zero_shot)}
        for suffix, pairs in versions.items():
            zero_shot_version, full_version = pairs[index]
            row[f"dbm{suffix}"] = davies_bouldin_metric(zero_shot_version, q=q)
            row[f"am{suffix}"] = amalgam_metric(
                zero_shot_version, full_version, index, distance=distance, reduce=reduce
            )
        rows.append(row)
    table = pd.DataFrame(rows)
    for suffix, pairs in versions.items():
        table[f"embedded_dbi{suffix}"] = _embedded_index_or_nan(pairs, embedded_q)
    for column in CLASS_METRICS:
        if column in table:
            table[f"{column}_mean"] = table[column].mean()
            table[f"{column}_std"] = table[column].std(ddof=1)
    return table


def network_metric_values(table):
    """Long table of per-network metric values (the per-network tables and figures of notebook 02).

    table: one or more ``metrics_table`` results concatenated, optionally with seed and defence
    columns (as ``rzs.study.Study.metrics_table`` gives) and a boolean degenerate column.
    Returns one row per network (and seed and defence, where the table has them) and metric:
    columns network, [seed, defence,] metric (the names of CLASS_METRICS and NETWORK_METRICS:
    "DBM", "AM", "embedded DBI", and "DBM (calibrated)" ... where the table has them), value (for
    per-class metrics the mean over excluded classes), std (ddof=1; NaN for network-level
    metrics), classes (how many excluded classes the value rests on) and, with a degenerate
    column, degenerate_models (how many of those classes' leave-one-out models are degenerate).
    """
    missing = {"network", "dbm", "am"} - set(table.columns)
    if missing:
        raise ValueError(
            f"table must be a metrics_table result; received columns {list(table.columns)}, "
            f"missing {sorted(missing)}"
        )
    keys = [column for column in ("network", "seed", "defence") if column in table]
    class_metrics = [column for column in CLASS_METRICS if column in table]
    network_metrics = [column for column in NETWORK_METRICS if column in table]
    long = table.melt(id_vars=keys, value_vars=class_metrics + network_metrics, var_name="metric")
    names = {**CLASS_METRICS, **NETWORK_METRICS}
    grouped = long.groupby([*keys, "metric"], sort=False)["value"]
    summary = grouped.agg(
        value="mean", std=lambda values: values.std(ddof=1), classes="count"
    ).reset_index()
    # A network-level value is repeated on every class row: its spread over classes is not one.
    summary.loc[summary["metric"].isin(network_metrics), "std"] = np.nan
    if "degenerate" in table:
        degenerate = table.groupby(keys, sort=False)["degenerate"].sum().rename("degenerate_models")
        summary = summary.merge(degenerate.astype(int).reset_index(), on=keys, how="left")
    summary["metric"] = summary["metric"].map(names)
    return summary


def class_amalgam_matrix(soft_labels_by_class, source="amalgam"):
    """Class-level amalgam proportions: the N x N matrix of what each class is "made of".

        row i = 1/M_i * sum_m embed(G_i[m], i)    (source="amalgam", the full model's view)
        row i = 1/M_i * sum_m embed(Q_i[m], i)    (source="zero_shot", C_-i's view)

    where embed puts a zero at position i (``embed_zero_shot``). Rows sum to 1, the diagonal is 0.
    soft_labels_by_class: {i: (Q_i, P_i)}. Returns (N, N); rows of classes missing from the
    mapping are NaN.
    """
    kind = _check_choice(source, "source", MATRIX_SOURCES)
    checked, num_classes = check_soft_labels_by_class(soft_labels_by_class)
    matrix = np.full((num_classes, num_classes), np.nan)
    for index, (zero_shot, full) in checked.items():
        rows = zero_shot if kind == "zero_shot" else amalgam_proportions(full, index)
        matrix[index] = embed_zero_shot(rows, index).mean(axis=0)
    return matrix


def _embedded_index_or_nan(soft_labels_by_class, q):
    if len(soft_labels_by_class) < 2:
        return np.nan
    try:
        return embedded_davies_bouldin_index(soft_labels_by_class, q=q)
    except ValueError:  # coinciding centroids: the index is undefined there
        return np.nan


def _check_log_scores(log_scores, name):
    try:
        scores = np.asarray(log_scores, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{name} must be a numeric (M, C) array; received {type(log_scores).__name__}") from error
    if scores.ndim != 2 or scores.shape[1] < 2 or not np.isfinite(scores).all():
        raise ValueError(
            f"{name} must be a finite 2-D array of shape (M images, C >= 2 classes); received "
            f"shape {scores.shape}{'' if np.isfinite(scores).all() else ' with non-finite entries'}"
        )
    return scores


def _scatter(points, power):
    distances = np.linalg.norm(points - points.mean(axis=0), axis=1)
    return float(np.mean(distances**power) ** (1.0 / power))


def _check_power(q):
    if isinstance(q, bool) or not isinstance(q, (int, float, np.integer, np.floating)):
        raise ValueError(f"q must be a real number > 0; received {q!r}")
    if not np.isfinite(q) or q <= 0:
        raise ValueError(f"q must be a real number > 0; received {q!r}")
    return float(q)


def _check_choice(value, name, allowed):
    if value not in allowed:
        raise ValueError(f"{name} must be one of {list(allowed)}; received {value!r}")
    return value


def _check_pair(zero_shot_soft_labels, full_soft_labels, excluded):
    full = check_soft_labels(full_soft_labels, "full_soft_labels")
    index = check_class_index(excluded, full.shape[1])
    zero_shot = check_soft_labels(zero_shot_soft_labels, "zero_shot_soft_labels")
    if zero_shot.shape[1] != full.shape[1] - 1:
        raise ValueError(
            f"zero_shot_soft_labels must have N-1 = {full.shape[1] - 1} columns (the model "
            f"without class {index}) for full_soft_labels of N = {full.shape[1]} columns; "
            f"received {zero_shot.shape[1]}"
        )
    if zero_shot.shape[0] != full.shape[0]:
        raise ValueError(
            f"zero_shot_soft_labels and full_soft_labels must hold the same images in the same "
            f"order; received {zero_shot.shape[0]} and {full.shape[0]} rows"
        )
    return zero_shot, full, index
