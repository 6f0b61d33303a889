"""The paper's claims next to what a run found, in sentences generated from the numbers.

Every claim has one test, fixed in advance in docs/analysis.md and computed by ``rzs.analysis``;
each row of ``claims_table`` states that test's estimate with its interval, its p-value
(Holm-adjusted where the test belongs to a family) and a verdict by docs/analysis.md's rules:

- "supported": the test is significant (adjusted p < alpha) in the paper's direction;
- "contradicted": the same test is significant in the opposite direction;
- "inconclusive": neither, or the run lacks what the test needs (the finding says what).

Rows are labelled analysis = "primary" (the four pre-specified metric x attack tests and the
claim they make up together) or "exploratory" (every other claim: read as a description of this
run, not as a confirmed finding). Missing inputs never raise; a table with the wrong columns does.

Columns of ``claims_table``: id, claim, analysis, test, value (the estimate), ci_low, ci_high,
n, p, p_adjusted, verdict, finding, evidence.
"""

import numpy as np
import pandas as pd

from rzs import analysis, tables

SUPPORTED, CONTRADICTED, INCONCLUSIVE = analysis.SUPPORTED, analysis.CONTRADICTED, analysis.INCONCLUSIVE
VERDICTS = analysis.VERDICTS
COLUMNS = ["id", "claim", "analysis", "test", "value", "ci_low", "ci_high", "n", "p", "p_adjusted",
           "verdict", "finding", "evidence"]

CLAIMS = {
    "densest_clusters": "CapsNet has the densest clusters (best, i.e. lowest, DBM), LeNet second.",
    "accuracy_tradeoff": (
        "Deeper, more accurate networks (VGG, NIN, AllConv, ResNet, DenseNet, WRN) have diffuse "
        "clusters: they trade off representation quality for accuracy."
    ),
    "metrics_correlate_with_attacks": (
        "{metric} correlates positively with {attack} attack accuracy across networks (high "
        "Pearson r, low p-value)."
    ),
    "transferable_more_robust": "More transferable networks are generally more robust.",
    "defences_lower_attack_accuracy": "Several defences lower the accuracy of some attacks.",
    "defences_improve_transferability": "Several defences significantly improve transferability.",
}


def claim_densest_clusters(metric_table, metric_replicates, metric="DBM", best="capsnet",
                           second="lenet", alpha=0.05):
    """Claim 1 (exploratory): ``best`` has the lowest ``metric`` of all networks, ``second`` the next.

    metric_table: ``analysis.network_estimates(...)["metrics"]`` (network, metric, value, ci_low,
    ci_high). metric_replicates: its {(network, metric): (B,)} replicates. The estimate is the
    share of bootstrap replicates in which the order holds; supported when it is >= 1 - alpha,
    contradicted when it is <= alpha. Names match ignoring case and non-alphanumerics.
    """
    claim, evidence = CLAIMS["densest_clusters"], f"metrics[metric == {metric!r}] and its replicates"
    test = "share of bootstrap replicates (test images resampled within classes) with this order"
    missing = _missing(metric_table, "metrics", tables.METRIC_INTERVALS)
    if missing:
        return _row("densest_clusters", claim, "exploratory", test, missing, INCONCLUSIVE, evidence)
    rows = metric_table[metric_table["metric"] == metric].dropna(subset=["value"]).reset_index(drop=True)
    keys = rows["network"].map(_name_key)
    absent = [name for name in (best, second) if _name_key(name) not in set(keys)]
    order = ", ".join(f"{row.network} {row.value:.4g}" for row in rows.sort_values("value").itertuples())
    if absent or len(rows) < 2:
        finding = (f"{' and '.join(absent) or 'Fewer than two networks'} "
                   f"{'is' if len(absent) == 1 else 'are'} not among the {len(rows)} networks with a "
                   f"{metric} value in this run. Lowest {metric} first: {order or 'none'}.")
        return _row("densest_clusters", claim, "exploratory", test, finding, INCONCLUSIVE, evidence,
                    n=len(rows))
    draws = np.stack([_replicates(metric_replicates, (network, metric), value)
                      for network, value in zip(rows["network"], rows["value"])])
    ranking = np.argsort(draws, axis=0)
    best_index, second_index = (int(np.flatnonzero(keys == _name_key(name))[0]) for name in (best, second))
    share = float(np.mean((ranking[0] == best_index) & (ranking[1] == second_index)))
    ranks = rows["value"].rank(method="min").astype(int)
    described = "; ".join(
        f"{rows.loc[index, 'network']} ranks {ranks[index]} of {len(rows)} ({_estimate(rows.loc[index])})"
        for index in (best_index, second_index))
    verdict = SUPPORTED if share >= 1 - alpha else CONTRADICTED if share <= alpha else INCONCLUSIVE
    finding = (f"By {metric} (lower = denser), {described}. The order {rows.loc[best_index, 'network']} "
               f"first, {rows.loc[second_index, 'network']} second holds in {share:.0%} of "
               f"{draws.shape[1]} bootstrap replicates (supported at >= {1 - alpha:.0%}, contradicted "
               f"at <= {alpha:.0%}). Lowest {metric} first: {order}.")
    return _row("densest_clusters", claim, "exploratory", test, finding, verdict, evidence,
                value=share, n=len(rows))


def claim_accuracy_tradeoff(metric_table, covariates, metric_replicates=None, metric="DBM",
                            alpha=0.05, permutations=analysis.PERMUTATIONS, seed=analysis.SEED):
    """Claim 2 (exploratory): across networks, higher clean accuracy goes with higher ``metric``.

    One test: Pearson r between the full models' test accuracy (covariates: network,
    test_accuracy) and the metric (metric_table: network, metric, value), one-sided r > 0 by a
    permutation test over networks, with the two-level bootstrap interval
    (``analysis.correlation_tests``). A family of one: p_adjusted = p.
    """
    claim = CLAIMS["accuracy_tradeoff"]
    evidence = f"covariates.test_accuracy (full models) vs metrics[metric == {metric!r}].value"
    test = "one-sided permutation test of Pearson r over networks (r > 0)"
    missing = (_missing(metric_table, "metrics", tables.METRIC_VALUES)
               or _missing(covariates, "covariates", [tables.NETWORK, tables.TEST_ACCURACY]))
    if missing:
        return _row("accuracy_tradeoff", claim, "exploratory", test, missing, INCONCLUSIVE, evidence)
    joined = metric_table[metric_table["metric"] == metric].merge(covariates, on="network").dropna(
        subset=[tables.VALUE, tables.TEST_ACCURACY])
    if len(joined) < analysis.MINIMUM_NETWORKS:
        finding = (f"{_networks(len(joined))} with both a test accuracy and a {metric} value; a "
                   f"correlation needs at least {analysis.MINIMUM_NETWORKS}.")
        return _row("accuracy_tradeoff", claim, "exploratory", test, finding, INCONCLUSIVE, evidence,
                    n=len(joined))
    metric_draws = None
    if metric_replicates is not None:
        metric_draws = np.stack([_replicates(metric_replicates, (network, metric), value)
                                 for network, value in zip(joined["network"], joined["value"])])
    result = {name: float(value) for name, value in analysis.correlation_tests(
        joined[tables.TEST_ACCURACY].to_numpy(), joined["value"].to_numpy(), None, metric_draws, alpha,
        "greater", permutations=permutations, seed=seed).items()}
    verdict = str(analysis.verdict(result["p"], result["p_opposite"], alpha))
    finding = (f"Across n = {len(joined)} networks, test accuracy and {metric} have "
               f"{_correlation(result)}, Spearman rho = {result['spearman_rho']:.2f}: more accurate "
               f"networks have {'higher (more diffuse)' if result['value'] > 0 else 'lower (denser)'} "
               f"{metric}. {_verdict_reason(verdict, result['p'], result['p_opposite'], alpha, False)}")
    return _row("accuracy_tradeoff", claim, "exploratory", test, finding, verdict, evidence,
                value=result["value"], ci_low=result["ci_low"], ci_high=result["ci_high"],
                n=len(joined), p=result["p"], p_adjusted=result["p"])


def claims_metrics_correlate_with_attacks(primary):
    """Claim 3 (primary): one row per pre-specified test, DBM and AM x pixel and threshold.

    primary: ``analysis.primary_tests`` (value, ci_low, ci_high, n, p, p_adjusted, p_opposite,
    p_opposite_adjusted, verdict, note). The verdict is the table's (docs/analysis.md).
    """
    test = ("one-sided permutation test of Pearson r over networks (r > 0), Holm over the four "
            "primary tests")
    evidence = "primary tests: metric vs the robustness outcome (attack accuracy on correctly classified images)"
    missing = _missing(primary, "primary", ["metric", "attack", "value", "p", "p_adjusted", "verdict"])
    if missing:
        return [_row("metrics_correlate_with_attacks", CLAIMS["metrics_correlate_with_attacks"].format(
            metric="DBM or AM", attack="pixel or threshold"), "primary", test, missing, INCONCLUSIVE, evidence)]
    rows = []
    for row in primary.itertuples():
        claim = CLAIMS["metrics_correlate_with_attacks"].format(metric=row.metric, attack=row.attack)
        if not np.isfinite(row.value):
            finding = f"{row.metric} x {row.attack}: no test ({row.note})."
        else:
            finding = (f"{row.metric} x {row.attack} robustness outcome over n = {row.n} networks: "
                       f"{_correlation(row._asdict())}, Holm-adjusted p = {_p(row.p_adjusted)}; "
                       f"Spearman rho = {row.spearman_rho:.2f}. "
                       + _verdict_reason(row.verdict, row.p_adjusted, row.p_opposite_adjusted, 0, True))
        rows.append(_row(f"metrics_correlate_with_attacks:{row.metric}-{row.attack}", claim, "primary",
                         test, finding, row.verdict, evidence, value=row.value, ci_low=row.ci_low,
                         ci_high=row.ci_high, n=row.n, p=row.p, p_adjusted=row.p_adjusted))
    return rows


def claim_transferable_more_robust(primary):
    """Claim 4 (primary): the four primary tests together, Holm-controlled.

    Supported when any primary test is supported; contradicted when any is contradicted and none
    supported; inconclusive otherwise. The estimate is that of the test with the smallest
    adjusted p in the verdict's direction (the paper's where inconclusive).
    """
    claim = CLAIMS["transferable_more_robust"]
    test = "any of the four primary tests significant after Holm (family-wise error <= alpha)"
    evidence = "primary tests"
    missing = _missing(primary, "primary", ["metric", "attack", "value", "p_adjusted",
                                            "p_opposite_adjusted", "verdict"])
    if missing:
        return _row("transferable_more_robust", claim, "primary", test, missing, INCONCLUSIVE, evidence)
    supported = primary[primary["verdict"] == SUPPORTED]
    contradicted = primary[primary["verdict"] == CONTRADICTED]
    verdict = SUPPORTED if len(supported) else CONTRADICTED if len(contradicted) else INCONCLUSIVE
    column = "p_opposite_adjusted" if verdict == CONTRADICTED else "p_adjusted"
    defined = primary.dropna(subset=[column])
    if defined.empty:
        notes = "; ".join(sorted(set(primary["note"].dropna()) - {""}))
        return _row("transferable_more_robust", claim, "primary", test,
                    f"No primary test is defined ({notes}).", INCONCLUSIVE, evidence)
    strongest = defined.loc[defined[column].idxmin()]
    finding = (
        f"{len(supported)} of {len(primary)} primary tests find lower metric (more transferable) "
        f"going with lower attack accuracy on correctly classified images (more robust), "
        f"{len(contradicted)} the opposite. Strongest: {strongest['metric']} x {strongest['attack']}, "
        f"{_correlation(strongest)}, n = {int(strongest['n'])} networks, Holm-adjusted p = "
        f"{_p(strongest[column])}"
        + (" (opposite direction)" if verdict == CONTRADICTED else "") + "."
    )
    return _row("transferable_more_robust", claim, "primary", test, finding, verdict, evidence,
                value=strongest["value"], ci_low=strongest["ci_low"], ci_high=strongest["ci_high"],
                n=strongest["n"], p=strongest["p_opposite" if verdict == CONTRADICTED else "p"],
                p_adjusted=strongest[column])


def claim_defences_lower_attack_accuracy(defence_tests, several=2, alpha=0.05):
    """Claim 5 (exploratory): at least ``several`` defences significantly lower an attack's
    robustness outcome (pixel or threshold; Holm over the family "robustness")."""
    return _defence_claim("defences_lower_attack_accuracy", defence_tests, "robustness",
                          "attack accuracy on correctly classified images", several, alpha)


def claim_defences_improve_transferability(defence_tests, several=2, alpha=0.05):
    """Claim 6 (exploratory): at least ``several`` defences significantly lower DBM or AM (Holm
    over the family "transferability")."""
    return _defence_claim("defences_improve_transferability", defence_tests, "transferability",
                          "DBM or AM", several, alpha)


def claims_table(primary=None, metric_table=None, metric_replicates=None, covariates=None,
                 defence_tests=None, alpha=0.05, metric="DBM", several=2,
                 permutations=analysis.PERMUTATIONS, seed=analysis.SEED):
    """Every claim beside this run's finding: the columns of ``COLUMNS``, one row per test.

    primary, metric_table (as "metrics"), metric_replicates, covariates: from
    ``analysis.primary_analysis``; defence_tests: ``analysis.defence_tests`` (``Study.defence_tests``).
    Any input may be None or empty; its claims then read "inconclusive".
    metric: the metric of claims 1 and 2. several: how many defences "several" means.
    """
    rows = [
        claim_densest_clusters(metric_table, metric_replicates, metric=metric, alpha=alpha),
        claim_accuracy_tradeoff(metric_table, covariates, metric_replicates, metric=metric,
                                alpha=alpha, permutations=permutations, seed=seed),
        *claims_metrics_correlate_with_attacks(primary),
        claim_transferable_more_robust(primary),
        claim_defences_lower_attack_accuracy(defence_tests, several, alpha),
        claim_defences_improve_transferability(defence_tests, several, alpha),
    ]
    return pd.DataFrame(rows, columns=COLUMNS)


# Helpers ----------------------------------------------------------------------------------------

def _defence_claim(identifier, defence_tests, family, what, several, alpha):
    claim = CLAIMS[identifier]
    test = (f"two-sided sign-flip permutation test of the mean defended - vanilla difference over "
            f"networks, Holm over the family {family!r}; a defence counts when significant and lower")
    evidence = f"defence tests, family {family!r}, and the null control"
    missing = _missing(defence_tests, "defence tests", ["defence", "quantity", "family", "n", "value",
                                                        "p_adjusted", "significant", "null_control"])
    if missing:
        return _row(identifier, claim, "exploratory", test, missing, INCONCLUSIVE, evidence)
    rows = defence_tests[defence_tests["family"] == family]
    if rows.empty:
        return _row(identifier, claim, "exploratory", test,
                    f"The defence tests hold no {what} quantity.", INCONCLUSIVE, evidence)
    control = rows[rows["null_control"]]
    defended = rows[~rows["null_control"]]
    significant = defended[defended["significant"]]
    lowering = list(dict.fromkeys(significant.loc[significant["value"] < 0, "defence"]))
    raising = list(dict.fromkeys(significant.loc[significant["value"] > 0, "defence"]))
    control_significant = bool(control["significant"].any())
    details = "; ".join(
        f"{row.defence} {row.quantity} Δ = {row.value:+.3g} [{row.ci_low:+.3g}, {row.ci_high:+.3g}], "
        f"Holm p = {_p(row.p_adjusted)}" for row in significant.itertuples())
    reachable = (rows["minimum_p"] < alpha).any()
    finding = (
        f"{len(lowering)} of {defended['defence'].nunique()} defences significantly lower {what} and "
        f"{len(raising)} raise it ({_networks(int(rows['n'].max()))}; the claim needs {several})"
        + (f": {details}." if details else ".")
        + (" The null control (vanilla retrained with the next seed) is significant too, so these "
           "tests are not calibrated on this run." if control_significant else
           " The null control is not significant." if len(control) else " No null control was run.")
        + ("" if reachable else f" With {_networks(int(rows['n'].max()))} no test can reach p < "
           f"{alpha:g}: the table cannot come out significant.")
    )
    if control_significant:
        verdict = INCONCLUSIVE
    elif len(lowering) >= several:
        verdict = SUPPORTED
    elif len(raising) >= several:
        verdict = CONTRADICTED
    else:
        verdict = INCONCLUSIVE
    best = defended.loc[defended["p_adjusted"].idxmin()] if defended["p_adjusted"].notna().any() else None
    return _row(identifier, claim, "exploratory", test, finding, verdict, evidence,
                value=float(len(lowering)), n=int(rows["n"].max()),
                p_adjusted=np.nan if best is None else best["p_adjusted"])


def _row(identifier, claim, kind, test, finding, verdict, evidence, value=np.nan, ci_low=np.nan,
         ci_high=np.nan, n=np.nan, p=np.nan, p_adjusted=np.nan):
    if verdict not in VERDICTS:
        raise ValueError(f"verdict must be one of {VERDICTS}; received {verdict!r}")
    return {"id": identifier, "claim": claim, "analysis": kind, "test": test, "value": value,
            "ci_low": ci_low, "ci_high": ci_high, "n": n, "p": p, "p_adjusted": p_adjusted,
            "verdict": str(verdict), "finding": finding, "evidence": evidence}


def _verdict_reason(verdict, p, p_opposite, alpha, adjusted):
    label = "Holm-adjusted " if adjusted else ""
    if verdict == SUPPORTED:
        return f"Significant in the paper's direction ({label}p = {_p(p)})."
    if verdict == CONTRADICTED:
        return f"Significant in the opposite direction ({label}p = {_p(p_opposite)})."
    return "Significant in neither direction; the interval above says how large an effect is still compatible."


def _correlation(result):
    return (f"Pearson r = {result['value']:.2f} [{result['ci_low']:.2f}, {result['ci_high']:.2f}] "
            f"(one-sided permutation p = {_p(result['p'])})")


def _networks(count):
    return f"{count} network{'' if count == 1 else 's'}"


def _estimate(row):
    return f"{row['value']:.4g} [{row['ci_low']:.4g}, {row['ci_high']:.4g}]"


def _replicates(replicates, key, value):
    if replicates is None or key not in replicates:
        return np.full(analysis.RESAMPLES, value)
    return replicates[key]


def _missing(frame, name, required):
    """A sentence saying what is missing, "" when ``frame`` is usable; ValueError on a bad frame."""
    if frame is None:
        return f"This run has no {name} table."
    if not isinstance(frame, pd.DataFrame):
        raise ValueError(f"{name} must be a pandas DataFrame or None; received {type(frame).__name__}")
    if frame.empty:
        return f"The {name} table of this run is empty."
    tables.check_columns(frame, required, name)
    return ""


def _name_key(name):
    return "".join(character for character in str(name).lower() if character.isalnum())


def _p(p_value):
    """ "0.012" (two significant digits), "n/a" where undefined, "< 1e-300" for 0."""
    if pd.isna(p_value):
        return "n/a"
    return "< 1e-300" if p_value == 0 else f"{p_value:.2g}"
