"""Statistics linking the metrics to adversarial robustness, and defended against vanilla networks.

Both functions take long ("tidy") DataFrames, one observation per row, and return one:

- ``correlation_table(metrics, attacks)``: Pearson r (with p-value and n) and Spearman rho between
  each metric and each attack accuracy across networks.
      metrics: columns network, metric, value (``rzs.metrics.network_metric_values`` gives it).
      attacks: columns network, <attack keys>, accuracy; by default the keys are attack and th,
      e.g. ("LeNet", "pixel", 1, 0.62).
- ``paired_tests(values)``: paired t-test and Wilcoxon signed-rank test, defended against vanilla.
      values: columns defence, <pair keys>, <group keys>, value; by default the pair key is
      network and the group key quantity, e.g. ("vanilla", "ResNet", "DBM", 0.31) and
      ("jpeg", "ResNet", "DBM", 0.27).

Where a statistic is undefined (too few observations, constant input, all-zero differences) its
cells are NaN and the note column says why, so one degenerate group never stops a whole table.
"""

import numpy as np
import pandas as pd
from scipy import stats as scipy_stats

# Two points always lie on a line (r = +-1, p = 1), so a correlation needs at least three.
MINIMUM_CORRELATION_SIZE = 3
# A paired t-test needs a spread of the differences, hence at least two pairs.
MINIMUM_PAIRS = 2
# Values that agree to this relative precision differ only by floating-point rounding (e.g.
# (x + 0.1) - x), which would otherwise pass for a real, if tiny, spread.
RELATIVE_ROUNDING = 1e-9


def correlation_table(metrics, attacks, attack_keys=("attack", "th")):
    """Pearson and Spearman correlation of each metric with each attack accuracy, across networks.

        r = sum_k (x_k - xbar)(y_k - ybar) / sqrt( sum_k (x_k - xbar)^2 * sum_k (y_k - ybar)^2 )

    over the n networks that have both the metric value x_k and the attack accuracy y_k (rows
    with NaN are left out). p is scipy's two-sided p-value for r = 0; rho is Pearson's r of the
    ranks.
    metrics: DataFrame with columns network, metric, value; one row per network and metric.
    attacks: DataFrame with columns network, *attack_keys, accuracy; one row per network and key.
    Returns columns metric, *attack_keys, n, pearson_r, pearson_p, spearman_rho, spearman_p,
    note ("" where every statistic is defined).
    """
    keys = list(attack_keys)
    _check_frame(metrics, "metrics", ["network", "metric", "value"], ["network", "metric"])
    _check_frame(attacks, "attacks", ["network", *keys, "accuracy"], ["network", *keys])
    rows = []
    for metric, metric_rows in metrics.groupby("metric", sort=False, dropna=False):
        for key, attack_rows in _groups(attacks, keys):
            joined = metric_rows.merge(attack_rows, on="network").dropna(
                subset=["value", "accuracy"]
            )
            row = {"metric": metric, **dict(zip(keys, key))}
            row.update(_correlations(joined["value"].to_numpy(), joined["accuracy"].to_numpy()))
            rows.append(row)
    return pd.DataFrame(rows)


def paired_tests(values, pair_on=("network",), group_by=("quantity",), defence_column="defence",
                 vanilla="vanilla", value_column="value"):
    """Paired comparison of each defence with the vanilla networks, per group.

    For every defence other than ``vanilla`` and every group, rows are paired on ``pair_on``
    (e.g. network, or network and excluded class) and d_k = defended_k - vanilla_k over the n
    pairs present in both.
        mean_difference = dbar,  cohens_dz = dbar / s_d  (s_d: std of d, ddof=1)
        t = dbar / (s_d / sqrt(n))  with scipy.stats.ttest_rel (two-sided)
        Wilcoxon signed-rank on d with scipy.stats.wilcoxon (two-sided; scipy's defaults: zero
        differences dropped ("wilcox"), exact or normal-approximation p chosen by scipy)
    direction is the sign of dbar in words; whether higher is better depends on the quantity
    (lower DBM and AM mean better transferability).
    Returns columns defence, *group_by, n, vanilla_mean, defended_mean, mean_difference,
    std_difference, cohens_dz, t_statistic, t_p, wilcoxon_statistic, wilcoxon_p, direction, note.
    """
    pair_keys, group_keys = list(pair_on), list(group_by)
    _check_frame(
        values,
        "values",
        [defence_column, *pair_keys, *group_keys, value_column],
        [defence_column, *pair_keys, *group_keys],
    )
    if not (values[defence_column] == vanilla).any():
        raise ValueError(
            f"values must hold the vanilla rows ({defence_column} == {vanilla!r}); received "
            f"{defence_column} values {sorted(map(str, values[defence_column].unique()))}"
        )
    rows = []
    for group, group_rows in _groups(values, group_keys):
        baseline = group_rows[group_rows[defence_column] == vanilla]
        defended_rows = group_rows[group_rows[defence_column] != vanilla]
        by_defence = defended_rows.groupby(defence_column, sort=False, dropna=False)
        for defence, defence_rows in by_defence:
            pairs = baseline.merge(defence_rows, on=pair_keys, suffixes=("_vanilla", "_defended"))
            pairs = pairs.dropna(subset=[f"{value_column}_vanilla", f"{value_column}_defended"])
            row = {defence_column: defence, **dict(zip(group_keys, group))}
            row.update(
                _paired_statistics(
                    pairs[f"{value_column}_vanilla"].to_numpy(dtype=np.float64),
                    pairs[f"{value_column}_defended"].to_numpy(dtype=np.float64),
                )
            )
            rows.append(row)
    return pd.DataFrame(rows)


def _correlations(x, y):
    result = {
        "n": len(x),
        "pearson_r": np.nan,
        "pearson_p": np.nan,
        "spearman_rho": np.nan,
        "spearman_p": np.nan,
        "note": "",
    }
    if len(x) < MINIMUM_CORRELATION_SIZE:
        result["note"] = (
            f"n = {len(x)} networks with both values; a correlation needs at least "
            f"{MINIMUM_CORRELATION_SIZE}"
        )
        return result
    if _is_constant(x) or _is_constant(y):
        result["note"] = "a variable is constant across networks; the correlation is undefined"
        return result
    pearson = scipy_stats.pearsonr(x, y)
    spearman = scipy_stats.spearmanr(x, y)
    result.update(
        pearson_r=float(pearson.statistic),
        pearson_p=float(pearson.pvalue),
        spearman_rho=float(spearman.statistic),
        spearman_p=float(spearman.pvalue),
    )
    return result


def _paired_statistics(vanilla, defended):
    differences = defended - vanilla
    n = len(differences)
    statistics = ["vanilla_mean", "defended_mean", "mean_difference", "std_difference",
                  "cohens_dz", "t_statistic", "t_p", "wilcoxon_statistic", "wilcoxon_p"]
    result = {"n": n, **dict.fromkeys(statistics, np.nan), "direction": "undefined", "note": ""}
    if n == 0:
        result["note"] = "no pair has both a vanilla and a defended value"
        return result
    mean_difference = float(differences.mean())
    result.update(
        vanilla_mean=float(vanilla.mean()),
        defended_mean=float(defended.mean()),
        mean_difference=mean_difference,
        direction=_direction(mean_difference),
    )
    if n < MINIMUM_PAIRS:
        result["note"] = f"n = {n} pair; the paired tests need at least {MINIMUM_PAIRS}"
        return result
    std_difference = float(differences.std(ddof=1))
    result["std_difference"] = std_difference
    scale = max(np.abs(vanilla).max(), np.abs(defended).max())
    if np.abs(differences).max() <= RELATIVE_ROUNDING * scale:
        result["note"] = "all differences are zero; both tests are undefined"
        return result
    wilcoxon = scipy_stats.wilcoxon(differences)
    result.update(wilcoxon_statistic=float(wilcoxon.statistic), wilcoxon_p=float(wilcoxon.pvalue))
    if _is_constant(differences):
        result["note"] = (
            f"every difference equals {mean_difference:g}; the t-test and Cohen's d_z are "
            f"undefined"
        )
        return result
    t_test = scipy_stats.ttest_rel(defended, vanilla)
    result.update(
        cohens_dz=mean_difference / std_difference,
        t_statistic=float(t_test.statistic),
        t_p=float(t_test.pvalue),
    )
    return result


def _is_constant(values):
    return np.ptp(values) <= RELATIVE_ROUNDING * np.abs(values).max()


def _direction(mean_difference):
    if mean_difference > 0:
        return "higher with defence"
    if mean_difference < 0:
        return "lower with defence"
    return "no change"


def _groups(frame, keys):
    """Yield (key tuple, rows) per group; no keys means one group holding every row."""
    if not keys:
        yield (), frame
        return
    for key, rows in frame.groupby(keys, sort=False, dropna=False):
        yield key, rows


def _check_frame(frame, name, required, unique):
    if not isinstance(frame, pd.DataFrame):
        raise ValueError(f"{name} must be a pandas DataFrame; received {type(frame).__name__}")
    missing = [column for column in required if column not in frame.columns]
    if missing:
        raise ValueError(
            f"{name} must have columns {required}; received {list(frame.columns)}, "
            f"missing {missing}"
        )
    duplicated = frame[frame.duplicated(subset=unique, keep=False)]
    if len(duplicated):
        raise ValueError(
            f"{name} must hold one row per {unique}; received {len(duplicated)} duplicated rows, "
            f"first: {duplicated.iloc[0][unique].to_dict()}"
        )
