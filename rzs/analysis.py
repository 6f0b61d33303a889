"""The pre-specified primary analysis of docs/analysis.md, its intervals and its verdict rules.

This module is the one place that implements what docs/analysis.md writes down before any number
is seen. It works on plain arrays and long DataFrames; ``rzs.study.Study`` gathers the inputs.

Sampled levels and how they are resampled (every interval resamples every level):

- the attacked images of a network: the robustness outcome of network k is the mean, over its
  correctly classified attacked images, of each image's share of th levels at which the attack
  succeeds, y_k = 1/|C_k| sum_{m in C_k} 1/T sum_t success_{m,t}; its interval is
  ``scipy.stats.bootstrap`` (BCa) over those images;
- the test images of an excluded class: DBM_k = 1/N sum_i S_i and AM_k = 1/N sum_i AM_i are
  recomputed on multinomial resamples of each class's images (a stratified bootstrap);
- the networks: a correlation across networks is recomputed on networks drawn with replacement,
  each network contributing its own within-network bootstrap replicate (a two-level bootstrap).

Within-network bootstrap replicates travel as ``replicates``: a dict from a key tuple (e.g.
("LeNet", "DBM")) to an array of shape (B,). Every interval table is long, with columns value (the
estimate), ci_low, ci_high, n and key columns, as ``rzs.plots`` reads them.
"""

import math
import warnings

import numpy as np
import pandas as pd
from scipy import stats as scipy_stats
from statsmodels.stats import proportion

from rzs import metrics, tables

SUPPORTED, CONTRADICTED, INCONCLUSIVE = "supported", "contradicted", "inconclusive"
VERDICTS = (SUPPORTED, CONTRADICTED, INCONCLUSIVE)
PRIMARY_METRICS = ("DBM", "AM")
PRIMARY_ATTACKS = ("pixel", "threshold")
# Lower DBM and AM mean more transferable, lower attack accuracy more robust: "more transferable
# is more robust" predicts a positive correlation between either metric and attack accuracy.
PAPER_DIRECTION = "greater"
OPPOSITE = {"greater": "less", "less": "greater"}
OUTCOME = tables.ROBUSTNESS_QUANTITY  # the quantity name of the pooled outcome over correctly classified images
RESAMPLES = 2000  # bootstrap replicates at every level
PERMUTATIONS = 9999  # random permutations where the exact permutation distribution is larger
SEED = 0  # every resampling draws from numpy's default_rng(SEED): tables are reproducible
# A correlation needs three networks (two always lie on a line).
MINIMUM_NETWORKS = 3
NULL_CONTROL = "null_control"  # the defence column's value of vanilla retrained with seed + 1
# Holm families of the defence table: each claim about defences is tested over its own family.
DEFAULT_FAMILIES = {"DBM": "transferability", "AM": "transferability", "pixel": "robustness",
                    "threshold": "robustness"}


# Per-network estimates ---------------------------------------------------------------------------

def attack_accuracy_intervals(attack_summary, alpha=0.05):
    """Wilson intervals of attack accuracy per network, attack and th.

        p = s / n,  interval = Wilson score interval at level 1 - alpha (statsmodels)

    attack_summary: ``Study.attack_summary()`` rows (network, attack, th, images, attack_accuracy,
    correct_images, attack_accuracy_on_correct; seed, defence and strategy where present).
    Returns one row per summary row and quantity, columns *keys (those present of network, seed,
    defence, attack, strategy, th), quantity ("attack_accuracy": over
    all attacked images, the authors'; "attack_accuracy_on_correct": over the correctly classified
    ones), value, ci_low, ci_high, n (images the share is over), successes.
    """
    tables.check_columns(attack_summary, tables.ATTACK_SUMMARY, "attack_summary")
    keys = [column for column in _SUMMARY_KEYS if column in attack_summary.columns]
    frames = []
    for quantity, count_column in tables.ATTACK_COUNTS.items():
        counts = attack_summary[count_column].to_numpy(dtype=np.float64)
        values = attack_summary[quantity].to_numpy(dtype=np.float64)
        successes = np.rint(np.nan_to_num(values) * counts)
        low, high = wilson_interval(successes, counts, alpha)
        frames.append(attack_summary[keys].assign(
            quantity=quantity, value=values, ci_low=low, ci_high=high,
            n=counts.astype(int), successes=successes.astype(int),
        ))
    return pd.concat(frames, ignore_index=True)


def image_scores(attack_tables, keys=("network", "attack")):
    """Per attacked image: whether it was classified correctly and its share of successful th.

        score_m = 1/T sum_t success_{m,t}      (T: the th levels the image was attacked at)

    attack_tables: per-image attack tables (``Study.attack_tables()``) with columns *keys, image,
    th, true_label, original_label, success. Returns columns *keys, image, correct, score.
    """
    keys = list(keys)
    tables.check_columns(attack_tables, [*keys, *tables.ATTACK_TABLE], "attack_tables")
    frame = attack_tables.assign(
        correct=attack_tables["original_label"] == attack_tables["true_label"],
        success=attack_tables["success"].astype(np.float64),
    )
    return frame.groupby([*keys, "image"], sort=False).agg(
        correct=("correct", "first"), score=("success", "mean")
    ).reset_index()


def robustness_outcomes(attack_tables, keys=("network", "attack"), alpha=0.05,
                        resamples=RESAMPLES, seed=SEED):
    """The primary robustness outcome per network and attack, with a BCa interval over images.

        y = 1/|C| sum_{m in C} score_m     (C: the correctly classified attacked images)

    which equals the mean over th of the per-th attack accuracy on correctly classified images.
    attack_tables: as in ``image_scores``. Returns (table, replicates): table columns *keys,
    quantity ("robustness"), value, ci_low, ci_high, n (correctly classified images), images,
    value_all_images (the same mean over every attacked image, the authors' denominator); and
    replicates {key tuple: (B,) bootstrap replicates of y}. Where every correct image has the same
    score the bootstrap collapses, so the interval is then the Wilson interval of y over n images.
    """
    keys = list(keys)
    scores = image_scores(attack_tables, keys)
    rng = np.random.default_rng(seed)
    rows, replicates = [], {}
    for key, group in scores.groupby(keys, sort=False):
        key = key if isinstance(key, tuple) else (key,)
        correct = group.loc[group["correct"], "score"].to_numpy(dtype=np.float64)
        value = correct.mean() if len(correct) else np.nan
        low, high, draws = _mean_interval(correct, alpha, resamples, rng)
        replicates[key] = draws
        rows.append({**dict(zip(keys, key)), "quantity": OUTCOME, "value": value, "ci_low": low,
                     "ci_high": high, "n": len(correct), "images": len(group),
                     "value_all_images": group["score"].mean()})
    return pd.DataFrame(rows), replicates


def bootstrap_weights(count, resamples, rng):
    """Multinomial resampling counts: (resamples, count) integers, each row summing to count.

    Row b says how often each of the count observations is drawn in replicate b; a statistic that
    is a weighted mean of per-observation terms is then one matrix product for all replicates.
    """
    drawn = rng.integers(0, count, size=(resamples, count)) + count * np.arange(resamples)[:, None]
    # One bincount over the flattened rows: much faster than rng.multinomial row by row.
    return np.bincount(drawn.ravel(), minlength=resamples * count).reshape(resamples, count).astype(np.float64)


def scatter_replicates(points, weights, q=2):
    """DBM's within-cluster scatter S on every bootstrap replicate of one cluster's rows.

        c_b = 1/M sum_m w_bm x_m,   S_b = ( 1/M sum_m w_bm ||x_m - c_b||_2^q )^(1/q)

    points: (M, C) soft labels. weights: (B, M) resampling counts. Returns (B,). With weights of
    ones this is ``rzs.metrics.davies_bouldin_metric(points, q)``.
    """
    points = np.asarray(points, dtype=np.float64)
    count = points.shape[0]
    centroids = weights @ points / count
    squared_norms = (points**2).sum(axis=1)
    if q == 2:
        # S^2 = 1/M sum_m w_bm ||x_m||^2 - ||c_b||^2: no (B, M) distance matrix needed.
        return np.sqrt(np.clip(weights @ squared_norms / count - (centroids**2).sum(axis=1), 0.0, None))
    squared = (squared_norms[None, :] - 2.0 * centroids @ points.T
               + (centroids**2).sum(axis=1)[:, None])
    distances = np.sqrt(np.clip(squared, 0.0, None))
    return ((weights * distances**q).sum(axis=1) / count) ** (1.0 / q)


def amalgam_replicates(zero_shot, full, excluded, weights, distance="l1", reduce="image"):
    """AM_i on every bootstrap replicate of class i's images.

        reduce="image": AM_b = 1/M sum_m w_bm ||Q[m] - G[m]||
        reduce="mean":  AM_b = || 1/M sum_m w_bm (Q[m] - G[m]) ||

    zero_shot: Q_i (M, N-1). full: P_i (M, N). weights: (B, M). Returns (B,); with weights of ones
    this is ``rzs.metrics.amalgam_metric``.
    """
    order = metrics.DISTANCE_ORDERS[distance]
    differences = np.asarray(zero_shot, dtype=np.float64) - metrics.amalgam_proportions(full, excluded)
    count = differences.shape[0]
    if reduce == "mean":
        return np.linalg.norm(weights @ differences / count, ord=order, axis=1)
    return weights @ np.linalg.norm(differences, ord=order, axis=1) / count


def metric_estimates(soft_labels_by_network, alpha=0.05, resamples=RESAMPLES, seed=SEED, q=2,
                     distance="l1", reduce="image"):
    """DBM and AM per network with percentile intervals from resampling each class's images.

    soft_labels_by_network: {network: {i: (Q_i (M_i, N-1), P_i (M_i, N))}} (``soft_label_pairs``).
    q, distance, reduce: the metric options (``rzs.metrics``).
    Returns (table, replicates): columns network, metric, value (the mean over excluded classes,
    as ``rzs.metrics.network_metric_values``), ci_low, ci_high, n (excluded classes), images;
    replicates {(network, metric): (B,)}.
    """
    rng = np.random.default_rng(seed)
    rows, replicates = [], {}
    for network, pairs in soft_labels_by_network.items():
        checked, _ = metrics.check_soft_labels_by_class(pairs)
        draws = {"DBM": [], "AM": []}
        values = {"DBM": [], "AM": []}
        for excluded, (zero_shot, full) in checked.items():
            weights = bootstrap_weights(len(zero_shot), resamples, rng)
            draws["DBM"].append(scatter_replicates(zero_shot, weights, q))
            draws["AM"].append(amalgam_replicates(zero_shot, full, excluded, weights, distance, reduce))
            values["DBM"].append(metrics.davies_bouldin_metric(zero_shot, q=q))
            values["AM"].append(metrics.amalgam_metric(zero_shot, full, excluded, distance, reduce))
        images = sum(len(zero_shot) for zero_shot, _ in checked.values())
        for metric in ("DBM", "AM"):
            network_draws = np.mean(draws[metric], axis=0)
            low, high = np.percentile(network_draws, [50 * alpha, 100 - 50 * alpha])
            replicates[(network, metric)] = network_draws
            rows.append({"network": network, "metric": metric, "value": float(np.mean(values[metric])),
                         "ci_low": low, "ci_high": high, "n": len(checked), "images": images})
    return pd.DataFrame(rows), replicates


# Correlations across networks --------------------------------------------------------------------

def pearson(x, y):
    """Pearson r along the last axis: x, y (..., n) -> (...); NaN where a row is constant.

        r = sum_k (x_k - xbar)(y_k - ybar) / sqrt( sum_k (x_k - xbar)^2 sum_k (y_k - ybar)^2 )
    """
    x_centred = x - x.mean(axis=-1, keepdims=True)
    y_centred = y - y.mean(axis=-1, keepdims=True)
    denominator = np.sqrt((x_centred**2).sum(axis=-1) * (y_centred**2).sum(axis=-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, (x_centred * y_centred).sum(axis=-1) / denominator, np.nan)


def two_level_interval(x_replicates, y_replicates, rng, alpha=0.05):
    """Percentile interval of Pearson r from resampling networks and, within each, its replicates.

        for b = 1..B: k_1..k_n drawn with replacement from the n networks,
                      r_b = pearson( x_replicates[k_j, b], y_replicates[k_j, b] )
        interval = (alpha/2, 1 - alpha/2) percentiles of the defined r_b

    x_replicates, y_replicates: (..., n, B) within-network bootstrap replicates of the two
    variables (a variable without within-network sampling repeats its value B times); the leading
    axes are independent tests sharing the drawn networks. Returns (low, high), each (...).
    """
    count, resamples = x_replicates.shape[-2:]
    drawn = rng.integers(0, count, size=(resamples, count))
    columns = np.arange(resamples)[:, None]
    correlations = pearson(x_replicates[..., drawn, columns], y_replicates[..., drawn, columns])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows stay NaN
        low, high = np.nanpercentile(correlations, [50 * alpha, 100 - 50 * alpha], axis=-1)
    return low, high


def permutation_p_values(x, y, permutations=PERMUTATIONS, seed=SEED):
    """One-sided permutation p-values of Pearson r over networks: (p for r > 0, p for r < 0).

    x, y: (..., n); the leading axes are independent tests. scipy.stats.permutation_test pairs x
    with every ordering of y (exactly when n! <= permutations, else ``permutations`` random
    orderings); both p-values come from the same orderings. NaN where r is undefined.
    """
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    # scipy holds (batch, ..., n) permuted copies at once; bound them to about 16 MB.
    batch = max(1, int(2e6 // x.size))
    p_values = [
        scipy_stats.permutation_test(
            (x,), lambda permuted, axis=-1: pearson(permuted, y), permutation_type="pairings",
            vectorized=True, n_resamples=permutations, alternative=alternative, batch=batch,
            axis=-1, random_state=np.random.default_rng(seed),
        ).pvalue
        for alternative in ("greater", "less")
    ]
    undefined = ~np.isfinite(pearson(x, y))
    return tuple(np.where(undefined, np.nan, p_value) for p_value in p_values)


def smallest_permutation_p(count, permutations=PERMUTATIONS):
    """The smallest one-sided p a permutation test of a correlation over ``count`` networks can give.

        1 / n!  when the n! orderings are enumerated, else 1 / (permutations + 1)
    """
    if count > 12 or math.factorial(count) > permutations:
        return 1.0 / (permutations + 1)
    return 1.0 / math.factorial(count)


def partial_correlation(x, y, covariates):
    """Pearson r of x and y after removing a linear fit on the covariates, and its two-sided p.

        e_x = x - Z beta_x, e_y = y - Z beta_y  (Z = [1, covariates], least squares)
        r = pearson(e_x, e_y),  t = r sqrt(df / (1 - r^2)),  df = n - 2 - k

    x, y: (n,). covariates: (n, k). Returns (r, p); NaN where df < 1 or a residual is constant.
    """
    covariates = np.asarray(covariates, dtype=np.float64).reshape(len(x), -1)
    degrees = len(x) - 2 - covariates.shape[1]
    if degrees < 1:
        return np.nan, np.nan
    design = np.column_stack([np.ones(len(x)), covariates])
    residuals = [values - design @ np.linalg.lstsq(design, values, rcond=None)[0] for values in (x, y)]
    r = float(pearson(*residuals))
    if not np.isfinite(r):
        return np.nan, np.nan
    t = r * math.sqrt(degrees / max(1.0 - r * r, 1e-300))
    return r, float(2 * scipy_stats.t.sf(abs(t), degrees))


def correlation_tests(x, y, x_replicates=None, y_replicates=None, alpha=0.05,
                      direction=PAPER_DIRECTION, resamples=RESAMPLES, permutations=PERMUTATIONS,
                      seed=SEED):
    """Correlations across networks: estimate, two-level interval and one-sided p-values.

    x, y: (..., n) network values, n >= 3; leading axes are independent tests (the four primary
    tests, or simulated studies). x_replicates, y_replicates: (..., n, B) within-network bootstrap
    replicates, or None where a variable has no within-network sampling (then B = resamples).
    direction: the predicted sign of r ("greater" or "less").
    Returns a dict of (...) arrays: value (Pearson r), ci_low, ci_high, p (permutation,
    predicted direction), p_opposite (permutation, opposite direction), pearson_p (scipy's
    t-based p, predicted direction), spearman_rho, spearman_p (t-based, predicted direction).
    Every entry is NaN where r is undefined (a constant variable).
    """
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if x.shape[-1] < MINIMUM_NETWORKS:
        raise ValueError(f"a correlation needs at least {MINIMUM_NETWORKS} networks; received "
                         f"{x.shape[-1]}")
    resamples = next((np.shape(draws)[-1] for draws in (x_replicates, y_replicates)
                      if draws is not None), resamples)
    rng = np.random.default_rng(seed)
    low, high = two_level_interval(_replicates_or_constant(x, x_replicates, resamples),
                                   _replicates_or_constant(y, y_replicates, resamples), rng, alpha)
    p_greater, p_less = permutation_p_values(x, y, permutations, seed)
    value = pearson(x, y)
    x_ranks, y_ranks = scipy_stats.rankdata(x, axis=-1), scipy_stats.rankdata(y, axis=-1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # constant input: NaN, reported through value
        pearson_p = scipy_stats.pearsonr(x, y, alternative=direction, axis=-1).pvalue
        spearman_p = scipy_stats.pearsonr(x_ranks, y_ranks, alternative=direction, axis=-1).pvalue
    result = {
        "value": value, "ci_low": low, "ci_high": high,
        "p": p_greater if direction == "greater" else p_less,
        "p_opposite": p_less if direction == "greater" else p_greater,
        "pearson_p": pearson_p, "spearman_rho": pearson(x_ranks, y_ranks), "spearman_p": spearman_p,
    }
    undefined = ~np.isfinite(value)
    return {name: np.where(undefined, np.nan, column) for name, column in result.items()}


def verdict(p_adjusted, p_opposite_adjusted, alpha=0.05):
    """docs/analysis.md's rule, elementwise: "supported" where the adjusted p in the paper's
    direction is below alpha, "contradicted" where the adjusted p of the same test in the opposite
    direction is, "inconclusive" otherwise (an undefined test included)."""
    p_adjusted, p_opposite_adjusted = np.asarray(p_adjusted), np.asarray(p_opposite_adjusted)
    return np.select([p_adjusted < alpha, p_opposite_adjusted < alpha], [SUPPORTED, CONTRADICTED],
                     INCONCLUSIVE)


def holm(p_values):
    """Holm-adjusted p-values along the last axis (the family); NaN entries stay NaN and are not
    counted in the family.

        sorted p_(1) <= ... <= p_(m):  adjusted_(j) = min(1, max_{l <= j} (m - l + 1) p_(l))

    Equal to statsmodels' ``multipletests(p, method="holm")[1]`` (tested); computed here because
    that function runs a full garbage collection on every call, which makes the 1,000 simulated
    studies of the tests take minutes.
    """
    p_values = np.asarray(p_values, dtype=np.float64)
    defined = np.isfinite(p_values)
    order = np.argsort(np.where(defined, p_values, np.inf), axis=-1)
    ordered = np.take_along_axis(p_values, order, axis=-1)
    family = defined.sum(axis=-1, keepdims=True)
    multipliers = family - np.arange(p_values.shape[-1])
    adjusted_ordered = np.minimum(1.0, np.maximum.accumulate(ordered * multipliers, axis=-1))
    adjusted = np.empty_like(p_values)
    np.put_along_axis(adjusted, order, adjusted_ordered, axis=-1)
    return np.where(defined, adjusted, np.nan)


def family_verdicts(p_values, p_opposite, alpha=0.05):
    """Holm over the family (last axis) in each direction, then ``verdict``.

    Returns (p_adjusted, p_opposite_adjusted, verdicts), each of the input's shape.
    """
    p_adjusted, p_opposite_adjusted = holm(p_values), holm(p_opposite)
    return p_adjusted, p_opposite_adjusted, verdict(p_adjusted, p_opposite_adjusted, alpha)


def primary_tests(metric_table, outcome_table, metric_replicates=None, outcome_replicates=None,
                  alpha=0.05, resamples=RESAMPLES, permutations=PERMUTATIONS, seed=SEED):
    """The four primary tests: DBM and AM against the pixel and threshold robustness outcome.

    metric_table: network, metric, value (``metric_estimates``). outcome_table: network, attack,
    value (``robustness_outcomes``). *_replicates: their replicates dicts, or None (then only the
    networks are resampled). Each test is one-sided in the paper's direction (r > 0), with a
    permutation p over networks; the family of four is Holm-adjusted, separately for the paper's
    and for the opposite direction (``family_verdicts``).
    Returns 4 rows: metric, attack, n, value (Pearson r), ci_low, ci_high, p, p_adjusted,
    p_opposite, p_opposite_adjusted, pearson_p, spearman_rho, spearman_p, minimum_p (the smallest
    p the permutation test can give over n networks), verdict, analysis ("primary"), note.
    """
    tables.check_columns(metric_table, tables.METRIC_VALUES, "metric_table")
    tables.check_columns(outcome_table, tables.OUTCOME_VALUES, "outcome_table")
    rows = []
    for metric in PRIMARY_METRICS:
        for attack in PRIMARY_ATTACKS:
            joined = _join(metric_table[metric_table["metric"] == metric],
                           outcome_table[outcome_table["attack"] == attack])
            count = len(joined)
            row = {"metric": metric, "attack": attack, "n": count,
                   **dict.fromkeys(_CORRELATION_STATISTICS, np.nan), "note": ""}
            if count < MINIMUM_NETWORKS:
                row["note"] = (f"{count} network{'' if count == 1 else 's'} with both values; a correlation needs at "
                               f"least {MINIMUM_NETWORKS}")
            else:
                networks = list(joined["network"])
                result = correlation_tests(
                    joined["value_x"].to_numpy(), joined["value_y"].to_numpy(),
                    _stack(metric_replicates, [(network, metric) for network in networks]),
                    _stack(outcome_replicates, [(network, attack) for network in networks]),
                    alpha, PAPER_DIRECTION, resamples, permutations, seed)
                row.update({name: float(value) for name, value in result.items()},
                           minimum_p=smallest_permutation_p(count, permutations))
                if not np.isfinite(row["value"]):
                    row["note"] = "a variable is constant across networks; r is undefined"
            rows.append(row)
    table = pd.DataFrame(rows)
    table["p_adjusted"], table["p_opposite_adjusted"], table["verdict"] = family_verdicts(
        table["p"].to_numpy(), table["p_opposite"].to_numpy(), alpha)
    table["analysis"] = "primary"
    return table[["metric", "attack", "n", "value", "ci_low", "ci_high", "p", "p_adjusted",
                  "p_opposite", "p_opposite_adjusted", "pearson_p", "spearman_rho", "spearman_p",
                  "minimum_p", "verdict", "analysis", "note"]]


def exploratory_correlations(metric_table, outcomes, covariates=None, permutations=PERMUTATIONS,
                             seed=SEED):
    """Every metric against every outcome, two-sided and uncorrected: exploratory, not verdicts.

    metric_table: network, metric, value. outcomes: network, attack, th (NaN for the pooled
    outcome), quantity, value: e.g. ``attack_accuracy_intervals`` rows and ``robustness_outcomes``.
    covariates: network, test_accuracy, mean_confidence, or None. Returns per metric x (attack,
    th, quantity): n, pearson_r, pearson_p, permutation_p (two-sided: twice the smaller one-sided
    p, at most 1), spearman_rho, spearman_p, partial_r_accuracy, partial_p_accuracy (controlling
    the full model's test accuracy), partial_r_accuracy_confidence, partial_p_accuracy_confidence
    (controlling test accuracy and mean confidence), analysis ("exploratory"), note.
    """
    tables.check_columns(metric_table, tables.METRIC_VALUES, "metric_table")
    tables.check_columns(outcomes, [*tables.OUTCOME_VALUES, tables.TH, tables.QUANTITY], "outcomes")
    rows = []
    for metric, metric_rows in metric_table.groupby("metric", sort=False):
        for (attack, th, quantity), outcome_rows in outcomes.groupby(["attack", "th", "quantity"],
                                                                     sort=False, dropna=False):
            joined = _join(metric_rows, outcome_rows)
            if covariates is not None:
                joined = joined.merge(covariates, on="network", how="left")
            x, y = joined["value_x"].to_numpy(np.float64), joined["value_y"].to_numpy(np.float64)
            row = {"metric": metric, "attack": attack, "th": th, "quantity": quantity, "n": len(x),
                   **dict.fromkeys(_EXPLORATORY_STATISTICS, np.nan), "note": ""}
            if len(x) < MINIMUM_NETWORKS or np.ptp(x) == 0 or np.ptp(y) == 0:
                row["note"] = "fewer than 3 networks or a constant variable"
            else:
                p_greater, p_less = permutation_p_values(x, y, permutations, seed)
                row.update(
                    pearson_r=float(pearson(x, y)),
                    pearson_p=float(scipy_stats.pearsonr(x, y).pvalue),
                    permutation_p=float(min(1.0, 2 * min(p_greater, p_less))),
                    spearman_rho=float(scipy_stats.spearmanr(x, y).statistic),
                    spearman_p=float(scipy_stats.spearmanr(x, y).pvalue),
                )
                for suffix, columns in (("accuracy", [tables.TEST_ACCURACY]),
                                        ("accuracy_confidence", [tables.TEST_ACCURACY, tables.MEAN_CONFIDENCE])):
                    if covariates is not None and set(columns) <= set(joined.columns):
                        r, p = partial_correlation(x, y, joined[columns].to_numpy(np.float64))
                        row.update({f"partial_r_{suffix}": r, f"partial_p_{suffix}": p})
            rows.append(row)
    return pd.DataFrame(rows).assign(analysis="exploratory")


# Defences ----------------------------------------------------------------------------------------

def difference_tests(differences, replicates=None, alpha=0.05, resamples=RESAMPLES,
                     permutations=PERMUTATIONS, seed=SEED):
    """Mean paired difference over networks: two-level interval and a two-sided sign-flip test.

        dbar = 1/n sum_k d_k  (d_k: defended minus vanilla value of network k)
        p: scipy.stats.permutation_test flipping the sign of each d_k (exact while 2^n <=
           permutations), two-sided
        interval: percentiles of 1/n sum_j d*_{k_j, b} over networks k_j drawn with replacement
           and, within each, its replicate b

    The network is the unit: classes or images inside a network enter only through each d_k's
    within-network replicates. differences: (..., n), n >= 1, leading axes independent tests.
    replicates: (..., n, B) or None. Returns a dict of (...) arrays: value, ci_low, ci_high,
    p (1 where every difference is zero or n = 1).
    """
    differences = np.asarray(differences, dtype=np.float64)
    count = differences.shape[-1]
    if count < 1:
        raise ValueError("differences must hold at least one network; received none")
    replicates = _replicates_or_constant(differences, replicates, resamples)
    rng = np.random.default_rng(seed)
    drawn = rng.integers(0, count, size=(replicates.shape[-1], count))
    means = replicates[..., drawn, np.arange(replicates.shape[-1])[:, None]].mean(axis=-1)
    with warnings.catch_warnings():
        # A replicate without correctly classified images is NaN and left out; all-NaN stays NaN.
        warnings.simplefilter("ignore", RuntimeWarning)
        low, high = np.nanpercentile(means, [50 * alpha, 100 - 50 * alpha], axis=-1)
    p_value = np.ones(differences.shape[:-1])
    if count > 1:
        batch = max(1, int(2e6 // differences.size))
        p_value = scipy_stats.permutation_test(
            (differences,), np.mean, permutation_type="samples", vectorized=True, axis=-1,
            n_resamples=permutations, alternative="two-sided", batch=batch,
            random_state=np.random.default_rng(seed)).pvalue
        p_value = np.where(np.all(differences == 0, axis=-1), 1.0, p_value)
    return {"value": differences.mean(axis=-1), "ci_low": low, "ci_high": high, "p": p_value}


def smallest_sign_flip_p(count, permutations=PERMUTATIONS):
    """The smallest two-sided p a sign-flip test over ``count`` networks can give: 2 / 2^n (1 for
    n = 1), or 1 / (permutations + 1) where the 2^n sign patterns are not enumerated."""
    if 2**count > permutations:
        return 1.0 / (permutations + 1)
    return min(1.0, 2.0 / 2**count)


def defence_tests(network_values, replicates=None, vanilla="vanilla", null_control=NULL_CONTROL,
                  families=None, alpha=0.05, permutations=PERMUTATIONS, seed=SEED):
    """Every defence (and the null control) against vanilla, at the unit of the network.

    network_values: network, defence, quantity, value: one value per network, defence and
    quantity (e.g. ``defence_network_values``). replicates: {(network, defence, quantity): (B,)}
    within-network replicates made with the same resampling indices for vanilla and defended
    (so d_k's replicates are their differences), or None. families: {quantity: family name};
    Holm adjusts within each family over every defence x quantity in it (the null control
    included). Default: DBM, AM -> "transferability"; pixel, threshold -> "robustness"; others
    each their own family.
    Returns columns defence, quantity, family, n, vanilla_mean, defended_mean, value (mean
    difference, defended - vanilla), ci_low, ci_high, p, p_adjusted, minimum_p, significant,
    direction, null_control (bool), note.
    """
    tables.check_columns(network_values, tables.NETWORK_VALUES, "network_values")
    families = {**DEFAULT_FAMILIES, **(families or {})}
    baseline = network_values[network_values["defence"] == vanilla]
    rows = []
    for (defence, quantity), rows_defended in network_values[network_values["defence"] != vanilla].groupby(
            ["defence", "quantity"], sort=False):
        pairs = baseline[baseline["quantity"] == quantity].merge(
            rows_defended, on=["network", "quantity"], suffixes=("_vanilla", "_defended")
        ).dropna(subset=["value_vanilla", "value_defended"])
        differences = (pairs["value_defended"] - pairs["value_vanilla"]).to_numpy(np.float64)
        difference_replicates = None
        if replicates is not None and len(pairs):
            keys = list(pairs["network"])
            if all((network, defence, quantity) in replicates and (network, vanilla, quantity) in replicates
                   for network in keys):
                difference_replicates = np.stack([
                    replicates[(network, defence, quantity)] - replicates[(network, vanilla, quantity)]
                    for network in keys
                ])
        test = {"value": np.nan, "ci_low": np.nan, "ci_high": np.nan, "p": np.nan}
        if len(differences):
            test = {name: float(value) for name, value in difference_tests(
                differences, difference_replicates, alpha, RESAMPLES, permutations, seed).items()}
        minimum_p = smallest_sign_flip_p(len(differences), permutations) if len(differences) else np.nan
        rows.append({"defence": defence, "quantity": quantity, "family": families.get(quantity, quantity),
                     "n": len(differences), "vanilla_mean": pairs["value_vanilla"].mean(),
                     "defended_mean": pairs["value_defended"].mean(), **test, "minimum_p": minimum_p,
                     "null_control": defence == null_control,
                     "note": _attainability_note(len(differences), minimum_p, alpha)})
    table = pd.DataFrame(rows)
    if table.empty:
        return table
    table["p_adjusted"] = np.nan
    for _, members in table.groupby("family", sort=False):
        table.loc[members.index, "p_adjusted"] = holm(members["p"].to_numpy())
    table["significant"] = table["p_adjusted"] < alpha
    table["direction"] = np.select([table["value"] < 0, table["value"] > 0],
                                   ["lower with defence", "higher with defence"], "no change")
    return table[["defence", "quantity", "family", "n", "vanilla_mean", "defended_mean", "value",
                  "ci_low", "ci_high", "p", "p_adjusted", "minimum_p", "significant",
                  "direction", "null_control", "note"]]


def pool_seeds(values, replicates, keys, alpha=0.05, seed=SEED):
    """Network-level estimates from per-seed ones, resampling the seeds as a sampled level.

        value = 1/S sum_s value_s
        replicate b = 1/S sum_j replicate_b of seed s_j, with s_1..s_S drawn with replacement

    values: columns *keys (one of them "seed"), value, n. replicates: {tuple of keys: (B,)}.
    The seeds drawn depend only on (S, B, seed), so a network's vanilla and defended values
    resample the same seeds. Returns (table, replicates) keyed without seed: columns *keys but
    seed, value, ci_low, ci_high (percentiles of the pooled replicates; with one seed, the
    per-seed interval where given), n (summed over seeds), seeds. Without a seed key the inputs
    come back unchanged.
    """
    if "seed" not in keys:
        return values, replicates
    rest = [key for key in keys if key != "seed"]
    rows, pooled = [], {}
    for key, group in values.groupby(rest, sort=False):
        key = key if isinstance(key, tuple) else (key,)
        draws = np.stack([replicates[tuple(row[column] for column in keys)]
                          for _, row in group.iterrows()])
        seeds, resamples = draws.shape
        drawn = np.random.default_rng((seed, seeds, resamples)).integers(0, seeds, size=(resamples, seeds))
        pooled[key] = draws[drawn, np.arange(resamples)[:, None]].mean(axis=1)
        row = {**dict(zip(rest, key)), "value": group["value"].mean(), "n": int(group["n"].sum()),
               "seeds": seeds}
        if seeds == 1 and {"ci_low", "ci_high"} <= set(group.columns):
            row.update(ci_low=group["ci_low"].iloc[0], ci_high=group["ci_high"].iloc[0])
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN replicates stay NaN
                row["ci_low"], row["ci_high"] = np.nanpercentile(
                    pooled[key], [50 * alpha, 100 - 50 * alpha])
        rows.append(row)
    return pd.DataFrame(rows), pooled


def paired_outcome_replicates(attack_tables, resamples=RESAMPLES, seed=SEED):
    """Robustness outcome per network (and seed), defence and attack, with replicates that
    resample the same attacked images for every defence of a network (they attack the same ones).

    attack_tables: per-image tables with columns network, defence, attack, image, th, true_label,
    original_label, success, and optionally seed. Returns (table, replicates): table columns
    network, [seed,] defence, quantity (the attack), value, n; replicates keyed by those key
    values in that order, where
        y_b = sum_m w_bm c_m score_m / sum_m w_bm c_m      (c_m: image m correctly classified)
    """
    unit = ["network", "seed"] if "seed" in attack_tables.columns else ["network"]
    scores = image_scores(attack_tables, (*unit, "defence", "attack"))
    rng = np.random.default_rng(seed)
    rows, replicates = [], {}
    for key, group in scores.groupby([*unit, "attack"], sort=False):
        *unit_values, attack = key
        images = np.sort(group["image"].unique())
        weights = bootstrap_weights(len(images), resamples, rng)
        for defence, rows_defence in group.groupby("defence", sort=False):
            ordered = rows_defence.set_index("image").reindex(images)
            correct = ordered["correct"].fillna(False).to_numpy(np.float64)
            score = ordered["score"].fillna(0.0).to_numpy(np.float64)
            with np.errstate(invalid="ignore", divide="ignore"):
                replicates[(*unit_values, defence, attack)] = (weights @ (correct * score)) / (weights @ correct)
                value = (correct * score).sum() / correct.sum()
            rows.append({**dict(zip(unit, unit_values)), "defence": defence, "quantity": attack,
                         "value": value, "n": int(correct.sum())})
    return pd.DataFrame(rows), replicates


def paired_class_replicates(class_values, resamples=RESAMPLES, seed=SEED):
    """Per-network (and seed) means over excluded classes, with replicates resampling the same
    classes for every defence of a network (a cluster bootstrap over excluded classes within
    networks).

    class_values: network, [seed,] defence, excluded_class, quantity, value
    (``Study.defence_values()[0]``). Returns (table, replicates) as ``paired_outcome_replicates``,
    with value = 1/N sum_i value_i.
    """
    tables.check_columns(class_values, tables.CLASS_VALUES, "class_values")
    unit = ["network", "seed"] if "seed" in class_values.columns else ["network"]
    rng = np.random.default_rng(seed)
    rows, replicates = [], {}
    for key, group in class_values.groupby([*unit, "quantity"], sort=False):
        *unit_values, quantity = key
        classes = np.sort(group["excluded_class"].unique())
        weights = bootstrap_weights(len(classes), resamples, rng)
        for defence, rows_defence in group.groupby("defence", sort=False):
            values = rows_defence.set_index("excluded_class")["value"].reindex(classes).to_numpy(np.float64)
            replicates[(*unit_values, defence, quantity)] = weights @ values / len(classes)
            rows.append({**dict(zip(unit, unit_values)), "defence": defence, "quantity": quantity,
                         "value": float(values.mean()), "n": len(classes)})
    return pd.DataFrame(rows), replicates


def defence_analysis(class_values, attack_tables, network_values=None, vanilla="vanilla",
                     null_control=NULL_CONTROL, alpha=0.05, resamples=RESAMPLES,
                     permutations=PERMUTATIONS, seed=SEED):
    """The defence table and the per-network values its figure shows, from one computation.

    class_values: per-class DBM/AM (network, [seed,] defence, excluded_class, quantity, value).
    attack_tables: per-image attack tables with a defence column (and seed). network_values:
    network-level quantities without within-network sampling (network, [seed,] defence,
    quantity, value; e.g. ``tables.TEST_ACCURACY_QUANTITY``), or None. Several seeds are pooled by ``pool_seeds``.
    Returns (values, tests): values columns network, defence, quantity, value, ci_low, ci_high, n
    (one row per network, defence and quantity: what the figure draws); tests as
    ``defence_tests`` on exactly those values.
    """
    metric_values, metric_replicates = paired_class_replicates(class_values, resamples, seed)
    outcome_values, outcome_replicates = paired_outcome_replicates(attack_tables, resamples, seed)
    frames, replicates = [metric_values, outcome_values], {**metric_replicates, **outcome_replicates}
    if network_values is not None:
        extra = network_values.assign(n=1)
        frames.append(extra)
        keys = [column for column in ("network", "seed", "defence", "quantity") if column in extra.columns]
        for _, row in extra.iterrows():
            replicates[tuple(row[column] for column in keys)] = np.full(resamples, row["value"])
    per_seed = pd.concat(frames, ignore_index=True)
    keys = [column for column in ("network", "seed", "defence", "quantity") if column in per_seed.columns]
    values, replicates = pool_seeds(per_seed, replicates, keys, alpha, seed)
    if "ci_low" not in values.columns:
        values = values.assign(**_percentile_columns(values, replicates, keys, alpha))
    tests = defence_tests(values, replicates, vanilla, null_control, alpha=alpha,
                          permutations=permutations, seed=seed)
    columns = ["network", "defence", "quantity", "value", "ci_low", "ci_high", "n"]
    return values[columns], tests


# A study's analysis -------------------------------------------------------------------------------

def network_estimates(study, networks=None, defence=None, resamples=RESAMPLES, seed=SEED):
    """Per-network metrics and robustness outcomes of a ``rzs.study.Study``, with intervals.

    Reads the stored soft labels (raw, the paper's) and per-image attack tables of every network
    and seed of the study; several seeds are pooled by ``pool_seeds``. The metric replicates of
    every network resample the same test images (the networks see the same ones).
    Returns a dict of
      metrics: network, metric, value, ci_low, ci_high, n (excluded classes, summed over seeds),
          seeds, degenerate_models (leave-one-out models flagged by ``Study.hygiene_table``);
      outcomes: network, attack, quantity ("robustness"), value, ci_low, ci_high, n (correctly
          classified attacked images, summed over seeds), seeds, value_all_images, images;
      attack_accuracy: ``attack_accuracy_intervals`` per network, seed, attack and th;
      covariates: network, test_accuracy (the full model's), mean_confidence (its mean largest
          soft label on the test images), means over seeds;
      metric_replicates, outcome_replicates: {(network, metric or attack): (B,)}.
    """
    networks = list(networks or study.networks)
    metric_frames, metric_draws = [], {}
    for network in networks:
        for one_seed in study.seeds:
            pairs = study.zero_shot(network, defence, one_seed).soft_label_pairs(study.metric_images)
            table, draws = metric_estimates({network: pairs}, study.alpha, resamples, seed,
                                            study.metric_q, study.am_distance, study.am_reduce)
            metric_frames.append(table.assign(seed=one_seed))
            metric_draws.update({(network, one_seed, metric): draw for (_, metric), draw in draws.items()})
    metric_table, metric_replicates = pool_seeds(pd.concat(metric_frames, ignore_index=True),
                                                 metric_draws, ["network", "seed", "metric"], study.alpha, seed)
    hygiene = study.hygiene_table(networks, defence)
    is_full = hygiene["excluded_class"].isna()
    degenerate = hygiene[~is_full].groupby("network")["degenerate"].sum().rename("degenerate_models")
    metric_table = metric_table.merge(degenerate.reset_index(), on="network", how="left")
    covariates = (hygiene[is_full].groupby("network", sort=False)[["accuracy_seen", "mean_confidence"]].mean()
                  .rename(columns={"accuracy_seen": tables.TEST_ACCURACY}).reset_index())

    per_seed, outcome_draws = robustness_outcomes(study.attack_tables(networks, defence),
                                                  ("network", "seed", "attack"), study.alpha, resamples, seed)
    outcome_table, outcome_replicates = pool_seeds(per_seed, outcome_draws, ["network", "seed", "attack"],
                                                   study.alpha, seed)
    authors = per_seed.groupby(["network", "attack"], sort=False)[["value_all_images", "images"]].mean()
    outcome_table = outcome_table.assign(quantity=OUTCOME).merge(authors.reset_index(), on=["network", "attack"])
    metric_table = metric_table[["network", "metric", "value", "ci_low", "ci_high", "n", "seeds",
                                 "degenerate_models"]]
    outcome_table = outcome_table[["network", "attack", "quantity", "value", "ci_low", "ci_high", "n",
                                   "seeds", "value_all_images", "images"]]
    return {
        "metrics": metric_table, "metric_replicates": metric_replicates,
        "outcomes": outcome_table, "outcome_replicates": outcome_replicates,
        "attack_accuracy": attack_accuracy_intervals(study.attack_summary(networks, defence), study.alpha),
        "covariates": covariates,
    }


def primary_analysis(study, resamples=RESAMPLES, permutations=PERMUTATIONS, seed=SEED):
    """docs/analysis.md on a study: ``network_estimates`` plus the tables built on them.

    Returns the dict of ``network_estimates`` with
      primary: ``primary_tests`` (the four pre-specified tests and their verdicts);
      exploratory: ``exploratory_correlations`` of each metric with the per-th attack accuracy
          (over all and over correctly classified images) and the robustness outcome, with the
          partial correlations controlling the covariates.
    """
    estimates = network_estimates(study, resamples=resamples, seed=seed)
    primary = primary_tests(estimates["metrics"], estimates["outcomes"], estimates["metric_replicates"],
                            estimates["outcome_replicates"], study.alpha, resamples, permutations, seed)
    per_th = (estimates["attack_accuracy"].groupby(["network", "attack", "th", "quantity"], sort=False)["value"]
              .mean().reset_index())
    outcomes = pd.concat([per_th, estimates["outcomes"][["network", "attack", "quantity", "value"]].assign(th=np.nan)],
                         ignore_index=True)
    exploratory = exploratory_correlations(estimates["metrics"], outcomes, estimates["covariates"],
                                           permutations, seed)
    return {**estimates, "primary": primary, "exploratory": exploratory}


# Helpers -----------------------------------------------------------------------------------------

_SUMMARY_KEYS = ("network", "seed", "defence", "attack", "strategy", "th")
_CORRELATION_STATISTICS = ("value", "ci_low", "ci_high", "p", "p_opposite", "pearson_p",
                           "spearman_rho", "spearman_p", "minimum_p")
_EXPLORATORY_STATISTICS = ("pearson_r", "pearson_p", "permutation_p", "spearman_rho", "spearman_p",
                           "partial_r_accuracy", "partial_p_accuracy",
                           "partial_r_accuracy_confidence", "partial_p_accuracy_confidence")


def _percentile_columns(values, replicates, keys, alpha):
    draws = [replicates[tuple(row[column] for column in keys)] for _, row in values.iterrows()]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN replicates stay NaN
        bounds = np.array([np.nanpercentile(draw, [50 * alpha, 100 - 50 * alpha]) for draw in draws])
    return {"ci_low": bounds[:, 0], "ci_high": bounds[:, 1]}


def _attainability_note(count, minimum_p, alpha):
    if not count:
        return "no network has both a vanilla and a defended value"
    if minimum_p >= alpha:
        return (f"with {count} network{'s' if count > 1 else ''} the smallest attainable p is "
                f"{minimum_p:.3g} >= alpha = {alpha:g}: this test cannot come out significant")
    return ""


def wilson_interval(successes, counts, alpha=0.05):
    """Wilson score interval of proportions successes / counts (arrays of one shape).

    Returns (low, high), NaN where a count is 0. Wilson rather than the normal approximation
    because accuracies near 0 or 1 on tens of images are common here.
    """
    successes, counts = np.asarray(successes, np.float64), np.asarray(counts, np.float64)
    low, high = np.full_like(counts, np.nan), np.full_like(counts, np.nan)
    positive = counts > 0
    if positive.any():
        low[positive], high[positive] = proportion.proportion_confint(
            successes[positive], counts[positive], alpha=alpha, method="wilson")
    return low, high


def _mean_interval(values, alpha, resamples, rng):
    """(low, high, (B,) replicates) of a mean: BCa, or Wilson over n where values are all equal."""
    count = len(values)
    if count == 0:
        return np.nan, np.nan, np.full(resamples, np.nan)
    mean = values.mean()
    if count == 1 or np.ptp(values) == 0:
        low, high = wilson_interval(np.array([mean * count]), np.array([float(count)]), alpha)
        return float(low[0]), float(high[0]), np.full(resamples, mean)
    result = scipy_stats.bootstrap((values,), np.mean, n_resamples=resamples, method="BCa",
                                   confidence_level=1 - alpha, vectorized=True, random_state=rng)
    return (float(result.confidence_interval.low), float(result.confidence_interval.high),
            result.bootstrap_distribution)


def _replicates_or_constant(values, replicates, resamples):
    if replicates is not None:
        return np.asarray(replicates, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)[..., None]
    return np.broadcast_to(values, (*values.shape[:-1], resamples))


def _stack(replicates, keys):
    if replicates is None or not keys or not all(key in replicates for key in keys):
        return None
    return np.stack([replicates[key] for key in keys])


def _join(left, right):
    return left[["network", "value"]].merge(right[["network", "value"]], on="network").dropna(
        subset=["value_x", "value_y"])
