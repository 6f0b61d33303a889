"""The paper's claims next to what a run found, in sentences generated from the numbers.

The paper's body text is not available, only its qualitative results (shared/PAPER.md, "Known
results"). Each ``claim_*`` function below takes the run's tidy tables and returns one row

    {"claim": the paper's claim, "finding": a sentence built from this run's numbers,
     "verdict": "supported" | "not supported" | "inconclusive", "evidence": which table and
     columns the finding rests on}

and ``claims_table`` assembles them into a DataFrame. The verdicts follow one rule:

- "inconclusive": the run lacks what the claim needs (a table is None or empty, a network is
  missing, too few networks for a statistic, every statistic undefined); the finding says what
  is missing. Missing input never raises.
- "not supported": the data are there and the test did not find the claimed effect, including a
  non-significant effect (p >= alpha) and an effect of the opposite sign.
- "supported": the claimed effect is there at the stated threshold.

A table with the wrong columns is a bug rather than a missing result, and raises ValueError.

Inputs (long / tidy DataFrames, one observation per row):

- metric_values: ``rzs.metrics.network_metric_values``: network, metric ("DBM", "AM"), value.
- accuracy: network, test_accuracy; when it also has the column model (``Study.accuracy_table``)
  only rows with model == "full" are used, when it has excluded_class only rows where it is
  missing.
- attack_summary: network, attack, th, attack_accuracy (``rzs.attacks.results.summarize`` with a
  network column); a strategy column, where it holds several values, becomes a key too.
- correlations: ``rzs.stats.correlation_table(metric_values, attacks)``: metric, <attack keys>,
  n, pearson_r, pearson_p, spearman_rho, spearman_p, note.
- defence_tests: ``rzs.stats.paired_tests(values)`` with group key quantity: defence, quantity,
  n, mean_difference, t_p, wilcoxon_p, ...; quantities "DBM" and "AM" are the metrics, every other
  quantity (e.g. "pixel th=1") an attack accuracy.
"""

import numpy as np
import pandas as pd

from rzs import stats

SUPPORTED, NOT_SUPPORTED, INCONCLUSIVE = "supported", "not supported", "inconclusive"
VERDICTS = (SUPPORTED, NOT_SUPPORTED, INCONCLUSIVE)
METRIC_QUANTITIES = ("DBM", "AM")
TEST_COLUMNS = {"t": "t_p", "wilcoxon": "wilcoxon_p"}
TEST_NAMES = {"t": "paired t-test", "wilcoxon": "Wilcoxon signed-rank test"}
CORRELATION_METHODS = {"pearson": ("pearson_r", "pearson_p", "Pearson r"),
                       "spearman": ("spearman_rho", "spearman_p", "Spearman rho")}
# Columns of correlation_table that are statistics rather than keys of a row.
CORRELATION_STATISTICS = ("n", "pearson_r", "pearson_p", "spearman_rho", "spearman_p", "note")

CLAIMS = {
    "densest_clusters": "CapsNet has the densest clusters (best, i.e. lowest, DBM), LeNet second.",
    "accuracy_tradeoff": (
        "Deeper, more accurate networks (VGG, NIN, AllConv, ResNet, DenseNet, WRN) have diffuse "
        "clusters: they trade off representation quality for accuracy."
    ),
    "metrics_correlate_with_attacks": (
        "The metrics correlate with adversarial attack accuracy across networks: high Pearson "
        "correlation coefficient, low p-value."
    ),
    "transferable_more_robust": "More transferable networks are generally more robust.",
    "defences_lower_attack_accuracy": "Several defences lower the accuracy of some attacks.",
    "defences_improve_transferability": "Several defences significantly improve transferability.",
}


def claim_densest_clusters(metric_values, metric="DBM", best="capsnet", second="lenet"):
    """Claim 1: ``best`` has the lowest metric value of all networks, ``second`` the next lowest.

    metric_values: columns network, metric, value. Network names match ignoring case and any
    character that is not a letter or digit ("CapsNet", "caps_net" and "capsnet" are one name).
    Ranks are 1 = lowest value; ties share the lower rank.
    """
    claim, evidence = CLAIMS["densest_clusters"], f"metric_values[metric == {metric!r}].value"
    missing = _missing(metric_values, "metric_values", ["network", "metric", "value"])
    if missing:
        return _row(claim, missing, INCONCLUSIVE, evidence)
    values = metric_values[metric_values["metric"] == metric].dropna(subset=["value"])
    if values.empty:
        return _row(claim, f"metric_values holds no {metric} value.", INCONCLUSIVE, evidence)
    values = values.assign(
        rank=values["value"].rank(method="min").astype(int), key=values["network"].map(_name_key)
    ).sort_values("value", kind="stable")
    count = len(values)
    ranks = {wanted: values[values["key"] == _name_key(wanted)] for wanted in (best, second)}
    described = [
        f"{row.network} ranks {row.rank} of {count} ({metric} = {row.value:.4g})"
        for wanted in (best, second) for row in ranks[wanted].head(1).itertuples()
    ]
    lowest = values.iloc[0]
    order = ", ".join(f"{row.network} {row.value:.4g}" for row in values.itertuples())
    absent = [wanted for wanted in (best, second) if ranks[wanted].empty]
    if absent:
        finding = (
            f"{' and '.join(absent)} {'is' if len(absent) == 1 else 'are'} not among the "
            f"{count} networks with a {metric} value in this run"
            + (f"; {'; '.join(described)}" if described else "")
            + f". Lowest {metric} first: {order}."
        )
        return _row(claim, finding, INCONCLUSIVE, evidence)
    best_rank, second_rank = (int(ranks[wanted].iloc[0]["rank"]) for wanted in (best, second))
    holds = best_rank == 1 and second_rank == 2
    finding = (
        f"By {metric} (lower = denser), {'; '.join(described)}; the densest clusters are "
        f"{lowest['network']}'s ({lowest['value']:.4g}). Lowest {metric} first: {order}."
    )
    return _row(claim, finding, SUPPORTED if holds else NOT_SUPPORTED, evidence)


def claim_accuracy_tradeoff(metric_values, accuracy, metric="DBM", alpha=0.05, method="pearson"):
    """Claim 2: across networks, higher test accuracy goes with higher (more diffuse) ``metric``.

    metric_values: columns network, metric, value. accuracy: columns network, test_accuracy (only
    the full models; see the module docstring). The correlation is ``rzs.stats.correlation_table``
    (scipy's pearsonr and spearmanr); ``method`` ("pearson" or "spearman") decides the verdict,
    both are reported. Supported when that coefficient is > 0 with p < alpha.
    """
    statistic, p_column, label = _choice(method, "method", CORRELATION_METHODS)
    claim = CLAIMS["accuracy_tradeoff"]
    evidence = (f"accuracy.test_accuracy (full models) vs metric_values[metric == {metric!r}]"
                f".value, {label} across networks")
    missing = (_missing(metric_values, "metric_values", ["network", "metric", "value"])
               or _missing(accuracy, "accuracy", ["network", "test_accuracy"]))
    if missing:
        return _row(claim, missing, INCONCLUSIVE, evidence)
    full = _full_models(accuracy)
    if full.empty:
        return _row(claim, "accuracy holds no full-model row.", INCONCLUSIVE, evidence)
    chosen = metric_values[metric_values["metric"] == metric]
    if chosen.empty:
        return _row(claim, f"metric_values holds no {metric} value.", INCONCLUSIVE, evidence)
    result = stats.correlation_table(
        chosen[["network", "metric", "value"]],
        full[["network", "test_accuracy"]].rename(columns={"test_accuracy": "accuracy"}),
        attack_keys=(),
    ).iloc[0]
    n = int(result["n"])
    if np.isnan(result[statistic]):
        finding = (f"Test accuracy and {metric} cannot be correlated across networks: "
                   f"{result['note']}.")
        return _row(claim, finding, INCONCLUSIVE, evidence)
    value, p_value = result[statistic], result[p_column]
    holds = value > 0 and p_value < alpha
    finding = (
        f"Across n = {n} networks, test accuracy and {metric} have Pearson r = "
        f"{result['pearson_r']:.2f} ({_p(result['pearson_p'])}) and Spearman rho = "
        f"{result['spearman_rho']:.2f} ({_p(result['spearman_p'])}): more accurate networks "
        f"have {'higher (more diffuse)' if value > 0 else 'lower (denser)'} {metric} by "
        f"{label}, {'significant' if p_value < alpha else 'not significant'} at alpha = "
        f"{alpha:g}."
    )
    return _row(claim, finding, SUPPORTED if holds else NOT_SUPPORTED, evidence)


def claim_metrics_correlate_with_attacks(correlations, alpha=0.05, min_abs_r=0.5,
                                         min_share=0.5):
    """Claim 3: the metrics correlate strongly and significantly with attack accuracy.

    correlations: ``rzs.stats.correlation_table`` output (metric, <attack keys>, n, pearson_r,
    pearson_p, ...). A row is strong when |pearson_r| >= min_abs_r and pearson_p < alpha.
    Supported when strong rows make up at least ``min_share`` of the rows where r is defined.
    """
    claim = CLAIMS["metrics_correlate_with_attacks"]
    evidence = "correlations.pearson_r, pearson_p, n (metric x attack x th, across networks)"
    defined, missing = _defined_correlations(correlations)
    if missing:
        return _row(claim, missing, INCONCLUSIVE, evidence)
    is_strong = (defined["pearson_r"].abs() >= min_abs_r) & (defined["pearson_p"] < alpha)
    strong = defined[is_strong]
    strongest = defined.loc[defined["pearson_r"].abs().idxmax()]
    share = len(strong) / len(defined)
    by_metric = "; ".join(
        f"{metric}: {int(is_strong[rows.index].sum())} of {len(rows)}"
        for metric, rows in defined.groupby("metric", sort=False)
    )
    finding = (
        f"{len(strong)} of {len(defined)} metric x attack correlations ({share:.0%}) have "
        f"|Pearson r| >= {min_abs_r:g} with p < {alpha:g} ({by_metric}). The strongest is "
        f"{_correlation_label(strongest)}: r = {strongest['pearson_r']:.2f}, "
        f"{_p(strongest['pearson_p'])}, n = {int(strongest['n'])} networks."
        + _undefined_note(correlations, defined)
    )
    return _row(claim, finding, SUPPORTED if share >= min_share else NOT_SUPPORTED, evidence)


def claim_transferable_more_robust(correlations, alpha=0.05, metric_values=None,
                                   attack_summary=None, metric="DBM"):
    """Claim 4: lower metric (more transferable) goes with lower attack accuracy (more robust).

    That is a positive Pearson r between metric and attack accuracy. correlations: as in
    ``claim_metrics_correlate_with_attacks``. Supported when at least one row has p < alpha and
    every row with p < alpha has r > 0; not supported when no row is significant or some
    significant row has r < 0. With metric_values and attack_summary (attack_accuracy) the
    finding also names the most and least transferable network by ``metric`` and their mean
    attack accuracy over the attacks.
    """
    claim = CLAIMS["transferable_more_robust"]
    evidence = "sign of correlations.pearson_r where pearson_p < alpha"
    defined, missing = _defined_correlations(correlations)
    if missing:
        return _row(claim, missing, INCONCLUSIVE, evidence)
    positive = int((defined["pearson_r"] > 0).sum())
    significant = defined[defined["pearson_p"] < alpha]
    significant_positive = int((significant["pearson_r"] > 0).sum())
    significant_negative = int((significant["pearson_r"] < 0).sum())
    holds = significant_positive > 0 and significant_negative == 0
    finding = (
        f"{positive} of {len(defined)} metric x attack correlations are positive (lower metric, "
        f"lower attack accuracy); of the {len(significant)} with p < {alpha:g}, "
        f"{significant_positive} are positive and {significant_negative} negative."
        + _extremes(metric_values, attack_summary, metric)
        + _undefined_note(correlations, defined)
    )
    return _row(claim, finding, SUPPORTED if holds else NOT_SUPPORTED, evidence)


def claim_defences_lower_attack_accuracy(defence_tests, alpha=0.05, test="t", several=2,
                                         metric_quantities=METRIC_QUANTITIES,
                                         attack_quantities=None):
    """Claim 5: at least ``several`` defences significantly lower some attack's accuracy.

    defence_tests: ``rzs.stats.paired_tests`` output grouped by quantity. The attack accuracies
    are the quantities in ``attack_quantities`` or, where it is None, every quantity not in
    ``metric_quantities`` (pass attack_quantities when the table also compares, say, clean test
    accuracy). A defence lowers an attack when mean_difference < 0 and the p-value of ``test``
    ("t": t_p, "wilcoxon": wilcoxon_p) < alpha.
    """
    claim = CLAIMS["defences_lower_attack_accuracy"]
    if attack_quantities is None:
        def counts(quantity):
            return quantity not in metric_quantities
    else:
        chosen = set(attack_quantities)

        def counts(quantity):
            return quantity in chosen
    return _defence_claim(claim, defence_tests, alpha, test, several, counts, "attack accuracy")


def claim_defences_improve_transferability(defence_tests, alpha=0.05, test="t", several=2,
                                           metric_quantities=METRIC_QUANTITIES):
    """Claim 6: at least ``several`` defences significantly lower DBM or AM against vanilla.

    defence_tests: as in ``claim_defences_lower_attack_accuracy``; only the quantities in
    ``metric_quantities`` count (lower metric = more transferable).
    """
    claim = CLAIMS["defences_improve_transferability"]
    return _defence_claim(
        claim, defence_tests, alpha, test, several,
        lambda quantity: quantity in metric_quantities, "/".join(metric_quantities),
    )


def attacks_for_correlation(attack_summary, accuracy_column="attack_accuracy"):
    """attack_summary -> (the ``attacks`` table of ``stats.correlation_table``, its attack keys).

    Keys are attack and th, plus strategy where attack_summary has several strategies.
    accuracy_column: "attack_accuracy" (over all attacked images, as the authors report) or
    "attack_accuracy_on_correct".
    """
    missing = [column for column in ("network", "attack", "th", accuracy_column)
               if column not in attack_summary.columns]
    if missing:
        raise ValueError(
            f"attack_summary must have columns network, attack, th, {accuracy_column}; received "
            f"{list(attack_summary.columns)}, missing {missing}"
        )
    keys = ["attack", "th"]
    if "strategy" in attack_summary.columns and attack_summary["strategy"].nunique() > 1:
        keys.insert(1, "strategy")
    attacks = attack_summary[["network", *keys, accuracy_column]].rename(
        columns={accuracy_column: "accuracy"}
    )
    return attacks, tuple(keys)


def claims_table(metric_values=None, accuracy=None, attack_summary=None, correlations=None,
                 defence_tests=None, alpha=0.05, metric="DBM", test="t"):
    """Every claim of the paper beside this run's finding: columns id, claim, finding, verdict,
    evidence (one row per claim, in the order of PAPER.md).

    Any input may be None or empty; its claims then read "inconclusive". Where correlations is
    None but metric_values and attack_summary are given, it is computed with
    ``stats.correlation_table`` from attack_summary.attack_accuracy.
    metric: the metric of claims 1 and 2 (and of the network extremes in claim 4).
    test: the paired test of claims 5 and 6 ("t" or "wilcoxon").
    """
    if correlations is None and not _empty(metric_values) and not _empty(attack_summary):
        attacks, keys = attacks_for_correlation(attack_summary)
        correlations = stats.correlation_table(
            metric_values[["network", "metric", "value"]], attacks, attack_keys=keys
        )
    rows = [
        claim_densest_clusters(metric_values, metric=metric),
        claim_accuracy_tradeoff(metric_values, accuracy, metric=metric, alpha=alpha),
        claim_metrics_correlate_with_attacks(correlations, alpha=alpha),
        claim_transferable_more_robust(correlations, alpha=alpha, metric_values=metric_values,
                                       attack_summary=attack_summary, metric=metric),
        claim_defences_lower_attack_accuracy(defence_tests, alpha=alpha, test=test),
        claim_defences_improve_transferability(defence_tests, alpha=alpha, test=test),
    ]
    table = pd.DataFrame(rows, columns=["claim", "finding", "verdict", "evidence"])
    table.insert(0, "id", list(CLAIMS))
    return table


# Helpers ----------------------------------------------------------------------------------------

def _row(claim, finding, verdict, evidence):
    assert verdict in VERDICTS, verdict
    return {"claim": claim, "finding": finding, "verdict": verdict, "evidence": evidence}


def _empty(frame):
    return frame is None or (isinstance(frame, pd.DataFrame) and frame.empty)


def _missing(frame, name, required):
    """A sentence saying what is missing, "" when ``frame`` is usable; ValueError on a bad frame."""
    if frame is None:
        return f"This run has no {name} table."
    if not isinstance(frame, pd.DataFrame):
        raise ValueError(f"{name} must be a pandas DataFrame or None; received "
                         f"{type(frame).__name__}")
    if frame.empty:
        return f"The {name} table of this run is empty."
    absent = [column for column in required if column not in frame.columns]
    if absent:
        raise ValueError(
            f"{name} must have columns {required}; received {list(frame.columns)}, missing "
            f"{absent}"
        )
    return ""


def _name_key(name):
    return "".join(character for character in str(name).lower() if character.isalnum())


def _choice(value, name, allowed):
    if value not in allowed:
        raise ValueError(f"{name} must be one of {list(allowed)}; received {value!r}")
    return allowed[value]


def _p(p_value):
    """ "p = 0.012" (two significant digits), "p = n/a" where undefined, "p < 1e-300" for 0."""
    if pd.isna(p_value):
        return "p = n/a"
    # scipy returns exactly 0 below double precision (e.g. r = 1): never print "p = 0".
    return "p < 1e-300" if p_value == 0 else f"p = {p_value:.2g}"


def _full_models(accuracy):
    rows = accuracy
    if "model" in rows.columns:
        rows = rows[rows["model"] == "full"]
    elif "excluded_class" in rows.columns:
        rows = rows[rows["excluded_class"].isna()]
    rows = rows.dropna(subset=["test_accuracy"])
    duplicated = rows["network"][rows["network"].duplicated()]
    if len(duplicated):
        raise ValueError(
            f"accuracy must hold one full-model row per network; received several for "
            f"{sorted(map(str, duplicated.unique()))} (add a column model with 'full' marking "
            "the full model)"
        )
    return rows


def _correlation_label(row):
    keys = [key for key in row.index if key not in ("metric", *CORRELATION_STATISTICS)]
    parts = [_key_text(key, row[key]) for key in keys if not pd.isna(row[key])]
    return f"{row['metric']} x {' '.join(parts)}" if parts else str(row["metric"])


def _key_text(key, value):
    if key == "th":
        return f"th={value:g}" if isinstance(value, (int, float, np.number)) else f"th={value}"
    return str(value)


def _defined_correlations(correlations):
    """(rows with a defined Pearson r, "" or a sentence on what is missing)."""
    missing = _missing(correlations, "correlations", ["metric", "n", "pearson_r", "pearson_p"])
    if missing:
        return None, missing
    defined = correlations.dropna(subset=["pearson_r", "pearson_p"])
    if defined.empty:
        notes = sorted({note for note in correlations.get("note", pd.Series(dtype=str)) if note})
        return None, (
            f"None of the {len(correlations)} metric x attack correlations is defined"
            + (f" ({'; '.join(notes)})" if notes else "") + "."
        )
    return defined, ""


def _undefined_note(correlations, defined):
    undefined = len(correlations) - len(defined)
    if not undefined:
        return ""
    return f" {undefined} further rows are undefined (too few networks or constant values)."


def _extremes(metric_values, attack_summary, metric):
    """Sentence on the most and least transferable network's mean attack accuracy, or ""."""
    if _empty(metric_values) or _empty(attack_summary):
        return ""
    if not {"network", "attack_accuracy"} <= set(attack_summary.columns):
        return ""
    chosen = metric_values[metric_values["metric"] == metric].dropna(subset=["value"])
    mean_accuracy = attack_summary.groupby("network")["attack_accuracy"].agg(["mean", "count"])
    chosen = chosen[chosen["network"].isin(mean_accuracy.index)].sort_values("value",
                                                                               kind="stable")
    if len(chosen) < 2:
        return ""
    most, least = chosen.iloc[0], chosen.iloc[-1]
    return (
        f" The most transferable network by {metric}, {most['network']} ({most['value']:.4g}), "
        f"has a mean attack accuracy of {mean_accuracy.loc[most['network'], 'mean']:.3f} over "
        f"{int(mean_accuracy.loc[most['network'], 'count'])} attack settings; the least, "
        f"{least['network']} ({least['value']:.4g}), "
        f"{mean_accuracy.loc[least['network'], 'mean']:.3f}."
    )


def _defence_claim(claim, defence_tests, alpha, test, several, counts, what):
    p_column = _choice(test, "test", TEST_COLUMNS)
    evidence = (f"defence_tests rows with quantity = {what}: mean_difference < 0 and "
                f"{p_column} < alpha ({TEST_NAMES[test]}, defended vs vanilla, paired by network)")
    missing = _missing(defence_tests, "defence_tests",
                       ["defence", "quantity", "n", "mean_difference", p_column])
    if missing:
        return _row(claim, missing, INCONCLUSIVE, evidence)
    rows = defence_tests[defence_tests["quantity"].map(counts)]
    if rows.empty:
        return _row(claim, f"defence_tests holds no {what} quantity; this run compared "
                    f"{sorted(map(str, defence_tests['quantity'].unique()))}.",
                    INCONCLUSIVE, evidence)
    tested = rows.dropna(subset=[p_column])
    defences = list(dict.fromkeys(rows["defence"]))
    if tested.empty:
        return _row(claim, f"No {TEST_NAMES[test]} on {what} is defined for the "
                    f"{len(defences)} defences (too few networks paired or no differences).",
                    INCONCLUSIVE, evidence)
    lowered = rows[rows["mean_difference"] < 0]
    significant = tested[(tested["mean_difference"] < 0) & (tested[p_column] < alpha)]
    helping = list(dict.fromkeys(significant["defence"]))
    details = "; ".join(
        f"{defence} ("
        + ", ".join(
            f"{row['quantity']} Δ = {row['mean_difference']:+.3g}, {_p(row[p_column])}"
            for _, row in significant[significant["defence"] == defence].iterrows()
        )
        + ")"
        for defence in helping
    )
    finding = (
        f"{len(helping)} of {len(defences)} defences significantly lower {what} "
        f"({TEST_NAMES[test]}, p < {alpha:g}; the claim needs at least {several})"
        + (f": {details}." if helping else ".")
        + f" {len(lowered)} of {len(rows)} defence x quantity comparisons lower it on average, "
        f"{len(significant)} significantly."
    )
    return _row(claim, finding, SUPPORTED if len(helping) >= several else NOT_SUPPORTED, evidence)
