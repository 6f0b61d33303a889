"""Beyond the paper: do DBM and AM predict robustness better than cheaper scores? (exploratory)

Every predictor is a per-network number computed from the same float32 predictions the metrics
use (`rzs.zeroshot.RawZeroShot`), so none costs a model call:

- "DBM", "AM", "embedded DBI": the paper's metrics and the scale-free Davies-Bouldin index;
- open-set detection by each leave-one-out model C_-i, the excluded class's test images against
  the test images of its N-1 classes (`rzs.open_set`): AUROC of the maximum softmax probability,
  negative entropy, GEN, and (where the model exposes logits) energy and maximum logit, and the
  FPR at 95% TPR of the maximum softmax probability;
- LEEP and NCE of C_-i's soft labels on the whole test set with its true labels
  (`rzs.transfer_estimators`);
- the naive baselines every predictor must beat: the full model's clean test accuracy and its
  mean confidence.

A network's value is the mean over its excluded classes (and seeds) of the per-class value; its
interval resamples the excluded classes (and seeds). Predictors are compared by their Spearman
rank correlation with each robustness outcome across networks (``rank_correlations``), with a
two-level bootstrap interval (networks, and within each its own replicates), a two-sided
permutation p and, against the clean-accuracy baseline, the difference of absolute rank
correlations with its interval on the same resamples. None of it is a verdict: docs/analysis.md
labels this analysis exploratory.
"""

import warnings

import numpy as np
import pandas as pd
from scipy import stats as scipy_stats

from rzs import analysis, metrics, open_set, tables, transfer_estimators

BASELINE = "clean accuracy"
CONFIDENCE = "mean confidence"
# Open-set scores from probabilities, and from logits where the model exposes them.
PROBABILITY_SCORES = {
    "MSP": open_set.maximum_softmax_probability,
    "entropy": open_set.negative_entropy,
    "GEN": open_set.generalized_entropy,
}
LOGIT_SCORES = {"energy": open_set.energy_score, "max logit": open_set.maximum_logit}


def class_predictors(zero_shot):
    """Per excluded class of one network's `RawZeroShot`: every predictor computed from C_-i.

    Returns a long DataFrame with columns excluded_class, predictor, value.
    """
    rows = []
    full_arrays = zero_shot.full.arrays
    labels = full_arrays["test_labels"]
    has_logits = all(
        result.record.get("log_scores") == "logits" for result in zero_shot.leave_one_out.values()
    )
    for excluded, result in sorted(zero_shot.leave_one_out.items()):
        arrays = result.arrays
        soft_labels, log_scores = arrays["test_soft_labels"], arrays["test_log_scores"]
        unseen = labels == excluded
        values = {}
        for name, score in PROBABILITY_SCORES.items():
            scores = score(soft_labels)
            values[f"AUROC ({name})"] = open_set.auroc(scores[~unseen], scores[unseen])
        msp = PROBABILITY_SCORES["MSP"](soft_labels)
        values["FPR95 (MSP)"] = open_set.fpr_at_tpr(msp[~unseen], msp[unseen])
        if has_logits:
            for name, score in LOGIT_SCORES.items():
                scores = score(log_scores)
                values[f"AUROC ({name})"] = open_set.auroc(scores[~unseen], scores[unseen])
        values["LEEP"] = transfer_estimators.leep(soft_labels, labels)
        values["NCE"] = transfer_estimators.nce(soft_labels, labels)
        rows += [
            {"excluded_class": excluded, "predictor": name, "value": value}
            for name, value in values.items()
        ]
    return pd.DataFrame(rows)


def network_predictors(study):
    """Per network, seed and excluded class: every predictor, the metrics and the baselines.

    Returns a long DataFrame with columns network, seed, excluded_class (NaN for the
    network-level baselines), predictor, value.
    """
    frames = []
    for network in study.networks:
        for seed in study.seeds:
            zero_shot = study.zero_shot(network, None, seed)
            frames.append(class_predictors(zero_shot).assign(network=network, seed=seed))
            table = metrics.metrics_table(
                zero_shot.soft_label_pairs(study.metric_images), network, zero_shot.class_names,
                q=study.metric_q, distance=study.am_distance, reduce=study.am_reduce,
            )
            for column, name in (("dbm", "DBM"), ("am", "AM"), ("embedded_dbi", "embedded DBI")):
                if column in table:
                    frames.append(
                        table[["excluded_class", column]].rename(columns={column: "value"})
                        .assign(predictor=name, network=network, seed=seed)
                    )
            full = metrics.classifier_hygiene(
                zero_shot.full.arrays["test_soft_labels"], zero_shot.full.arrays["test_labels"]
            )
            frames.append(pd.DataFrame([
                {"predictor": BASELINE, "value": full["accuracy"]},
                {"predictor": CONFIDENCE, "value": full["mean_confidence"]},
            ]).assign(network=network, seed=seed, excluded_class=np.nan))
    return pd.concat(frames, ignore_index=True)[["network", "seed", "excluded_class", "predictor", "value"]]


def predictor_estimates(class_values, alpha=0.05, resamples=analysis.RESAMPLES, seed=analysis.SEED):
    """Per network and predictor: the mean over excluded classes and seeds, with replicates.

    A replicate draws the excluded classes (and the seeds) with replacement,
        value_b = 1/|D_b| sum_{(s, i) in D_b} value_{s, i};
    network-level baselines (one value per seed) resample the seeds only.

    class_values: ``network_predictors`` rows. Returns (table, replicates): table columns
    network, predictor, value, ci_low, ci_high, n (classes x seeds), and replicates
    {(network, predictor): (resamples,)}.
    """
    tables.check_columns(class_values, (tables.NETWORK, tables.PREDICTOR, tables.VALUE), "class_values")
    rng = np.random.default_rng(seed)
    rows, replicates = [], {}
    for (network, predictor), group in class_values.groupby(["network", "predictor"], sort=False):
        values = group["value"].to_numpy(np.float64)
        drawn = rng.integers(0, len(values), size=(resamples, len(values)))
        draws = values[drawn].mean(axis=1)
        replicates[(network, predictor)] = draws
        low, high = np.percentile(draws, [50 * alpha, 100 - 50 * alpha])
        rows.append({"network": network, "predictor": predictor, "value": values.mean(),
                     "ci_low": low, "ci_high": high, "n": len(values)})
    return pd.DataFrame(rows), replicates


def spearman(x, y):
    """Spearman's rho along the last axis: Pearson r of the (average) ranks; (..., n) -> (...)."""
    return analysis.pearson(scipy_stats.rankdata(x, axis=-1), scipy_stats.rankdata(y, axis=-1))


def rank_correlations(predictors, predictor_replicates, outcomes, outcome_replicates,
                      baseline=BASELINE, alpha=0.05, permutations=analysis.PERMUTATIONS,
                      seed=analysis.SEED):
    """Every predictor against every robustness outcome: Spearman's rho across networks.

    For predictor x and outcome y over the n networks with both:
        rho = spearman(x, y);  interval: for b = 1..B draw networks k_1..k_n with replacement and
        take rho_b = spearman(x_rep[k, b], y_rep[k, b]) (the two-level bootstrap of
        ``analysis.two_level_interval``, on ranks);
        p: two-sided permutation p of rho (exploratory, uncorrected);
        gain = |rho| - |rho_baseline| on the same resamples, with its percentile interval.

    predictors: ``predictor_estimates`` table; outcomes: network, attack, value (the robustness
    outcome of ``analysis.network_estimates``). Replicates: {(network, predictor)} and
    {(network, attack)} -> (B,). Returns columns predictor, attack, n, rho, ci_low, ci_high, p,
    gain, gain_ci_low, gain_ci_high, analysis ("exploratory"), sorted by attack and |rho|.
    """
    tables.check_columns(predictors, (tables.NETWORK, tables.PREDICTOR, tables.VALUE), "predictors")
    tables.check_columns(outcomes, tables.OUTCOME_VALUES, "outcomes")
    rng = np.random.default_rng(seed)
    # Both sides' replicates are paired draw by draw, so the shorter set decides how many.
    resamples = min(len(draws) for draws in [*predictor_replicates.values(), *outcome_replicates.values()])
    rows = []
    for attack, outcome_rows in outcomes.groupby("attack", sort=False):
        networks = [
            network for network in outcome_rows["network"]
            if (network, baseline) in predictor_replicates
        ]
        if len(networks) < analysis.MINIMUM_NETWORKS:
            continue
        y = outcome_rows.set_index("network").loc[networks, "value"].to_numpy(np.float64)
        y_draws = np.stack([outcome_replicates[(network, attack)][:resamples] for network in networks])
        drawn = rng.integers(0, len(networks), size=(resamples, len(networks)))
        columns = np.arange(resamples)[:, None]
        resampled_rho = {}
        for predictor, predictor_rows in predictors.groupby("predictor", sort=False):
            values = predictor_rows.set_index("network")["value"]
            if not set(networks) <= set(values.index):
                continue
            x = values.loc[networks].to_numpy(np.float64)
            x_draws = np.stack([predictor_replicates[(network, predictor)][:resamples] for network in networks])
            resampled_rho[predictor] = spearman(x_draws[drawn, columns], y_draws[drawn, columns])
            rho = float(spearman(x, y))
            p = np.nan
            if np.isfinite(rho):
                p = scipy_stats.permutation_test(
                    (x,), lambda permuted, axis=-1, outcome=y: spearman(permuted, outcome), vectorized=True,
                    permutation_type="pairings", n_resamples=permutations, alternative="two-sided",
                    axis=-1, random_state=np.random.default_rng(seed),
                ).pvalue
            rows.append({"predictor": predictor, "attack": attack, "n": len(networks), "rho": rho,
                         "p": p})
        for row in rows:
            if row["attack"] != attack:
                continue
            draws = resampled_rho[row["predictor"]]
            gain = np.abs(draws) - np.abs(resampled_rho[baseline])
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # constant resamples give NaN
                row["ci_low"], row["ci_high"] = np.nanpercentile(draws, [50 * alpha, 100 - 50 * alpha])
                row["gain"] = abs(row["rho"]) - abs(
                    next(r["rho"] for r in rows if r["attack"] == attack and r["predictor"] == baseline))
                row["gain_ci_low"], row["gain_ci_high"] = np.nanpercentile(
                    gain, [50 * alpha, 100 - 50 * alpha])
    columns = ["predictor", "attack", "n", "rho", "ci_low", "ci_high", "p", "gain", "gain_ci_low",
               "gain_ci_high"]
    if not rows:
        return pd.DataFrame(columns=[*columns, "analysis"])
    table = pd.DataFrame(rows)[columns].assign(analysis="exploratory")
    order = table.assign(strength=table["rho"].abs()).sort_values(["attack", "strength"], ascending=[True, False])
    return order.drop(columns="strength").reset_index(drop=True)


def comparison_sentences(table, baseline=BASELINE):
    """One sentence per outcome: which predictors beat the baseline, by how much, with intervals.

    A predictor "beats" the baseline on an outcome when its gain's interval lies above 0, and
    "falls short" when it lies below; otherwise the data cannot tell them apart.
    """
    sentences = []
    for attack, rows in table.groupby("attack", sort=False):
        reference = rows[rows["predictor"] == baseline].iloc[0]
        others = rows[rows["predictor"] != baseline]
        beat = others[others["gain_ci_low"] > 0]
        short = others[others["gain_ci_high"] < 0]

        def described(frame):
            return "; ".join(
                f"{row.predictor} (rho = {row.rho:+.2f} [{row.ci_low:+.2f}, {row.ci_high:+.2f}], "
                f"gain {row.gain:+.2f} [{row.gain_ci_low:+.2f}, {row.gain_ci_high:+.2f}])"
                for row in frame.itertuples()
            )

        sentence = (
            f"{attack}: {baseline} ranks the {int(reference.n)} networks with rho = "
            f"{reference.rho:+.2f} [{reference.ci_low:+.2f}, {reference.ci_high:+.2f}]. "
        )
        sentence += (
            f"Predictors whose |rho| exceeds it with an interval above 0: {described(beat)}. "
            if len(beat) else "No predictor's |rho| exceeds it with an interval above 0. "
        )
        sentence += (
            f"Below it with an interval below 0: {described(short)}. " if len(short) else ""
        )
        sentence += (
            f"The other {len(others) - len(beat) - len(short)} cannot be told apart from it at "
            f"{int(reference.n)} networks."
        )
        sentences.append(sentence)
    return sentences
