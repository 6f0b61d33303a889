"""rzs.predictors: per-class predictors from stored predictions, and their rank comparison."""

import types

import numpy as np
import pandas as pd
import pytest

from rzs import predictors


def fake_zero_shot(num_classes=4, per_class=30, separation=3.0, seed=0):
    """A RawZeroShot stand-in: leave-one-out models whose logits separate the unseen class by `separation`."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(num_classes), per_class)
    leave_one_out = {}
    for excluded in range(num_classes):
        seen = [c for c in range(num_classes) if c != excluded]
        logits = rng.normal(0, 1, (len(labels), num_classes - 1))
        for column, cls in enumerate(seen):
            logits[labels == cls, column] += separation
        soft_labels = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
        leave_one_out[excluded] = types.SimpleNamespace(
            arrays={"test_soft_labels": soft_labels, "test_log_scores": logits},
            record={"log_scores": "logits"},
        )
    full = types.SimpleNamespace(arrays={"test_labels": labels})
    return types.SimpleNamespace(full=full, leave_one_out=leave_one_out)


def test_class_predictors_cover_every_class_and_score():
    table = predictors.class_predictors(fake_zero_shot())
    names = set(table["predictor"])
    assert {"AUROC (MSP)", "AUROC (energy)", "AUROC (max logit)", "FPR95 (MSP)", "LEEP", "NCE"} <= names
    assert table.groupby("predictor").size().eq(4).all()
    auroc = table[table["predictor"].str.startswith("AUROC")]["value"]
    assert auroc.between(0, 1).all()


def test_better_separated_models_detect_the_unseen_class_better():
    weak = predictors.class_predictors(fake_zero_shot(separation=0.5)).groupby("predictor")["value"].mean()
    strong = predictors.class_predictors(fake_zero_shot(separation=4.0)).groupby("predictor")["value"].mean()
    assert strong["AUROC (MSP)"] > weak["AUROC (MSP)"] + 0.1
    assert strong["LEEP"] > weak["LEEP"] and strong["NCE"] > weak["NCE"]


def test_no_logit_scores_without_logits():
    zero_shot = fake_zero_shot()
    for result in zero_shot.leave_one_out.values():
        result.record["log_scores"] = "log_probabilities"
    assert "AUROC (energy)" not in set(predictors.class_predictors(zero_shot)["predictor"])


def synthetic_study(networks=12, seed=0):
    rng = np.random.default_rng(seed)
    outcome = rng.uniform(0, 1, networks)
    rows, outcome_rows = [], []
    for k in range(networks):
        for excluded in range(5):
            rows.append({"network": f"n{k}", "seed": 0, "excluded_class": excluded,
                         "predictor": "oracle", "value": outcome[k] + rng.normal(0, 0.01)})
            rows.append({"network": f"n{k}", "seed": 0, "excluded_class": excluded,
                         "predictor": "noise", "value": rng.normal()})
        rows.append({"network": f"n{k}", "seed": 0, "excluded_class": np.nan,
                     "predictor": predictors.BASELINE, "value": rng.uniform()})
        outcome_rows.append({"network": f"n{k}", "attack": "pixel", "value": outcome[k]})
    outcomes = pd.DataFrame(outcome_rows)
    outcome_replicates = {(row.network, "pixel"): np.full(500, row.value) + rng.normal(0, 0.01, 500)
                          for row in outcomes.itertuples()}
    return pd.DataFrame(rows), outcomes, outcome_replicates


def test_rank_correlations_rank_an_oracle_first_and_say_it_beats_the_baseline():
    class_values, outcomes, outcome_replicates = synthetic_study()
    table, replicates = predictors.predictor_estimates(class_values, resamples=500)
    assert set(table.columns) >= {"network", "predictor", "value", "ci_low", "ci_high", "n"}
    comparison = predictors.rank_correlations(table, replicates, outcomes, outcome_replicates, permutations=999)
    assert comparison.iloc[0]["predictor"] == "oracle"
    oracle = comparison.set_index("predictor").loc["oracle"]
    assert oracle["rho"] > 0.95 and oracle["ci_low"] > 0.8 and oracle["p"] < 0.01
    assert oracle["gain_ci_low"] > 0
    baseline = comparison.set_index("predictor").loc[predictors.BASELINE]
    assert baseline["gain"] == 0
    sentences = predictors.comparison_sentences(comparison)
    assert len(sentences) == 1 and "oracle" in sentences[0] and "pixel" in sentences[0]


def test_spearman_matches_scipy():
    from scipy import stats

    rng = np.random.default_rng(1)
    x, y = rng.normal(size=20), rng.normal(size=20).round(0)
    assert predictors.spearman(x, y) == pytest.approx(stats.spearmanr(x, y).statistic)


def test_predictor_ranking_figure_draws_one_bar_per_predictor_and_attack():
    from rzs import plots

    class_values, outcomes, outcome_replicates = synthetic_study()
    table, replicates = predictors.predictor_estimates(class_values, resamples=200)
    comparison = predictors.rank_correlations(table, replicates, outcomes, outcome_replicates, permutations=99)
    figure = plots.plot_predictor_ranking(comparison)
    axis = figure.axes[0]
    assert len(axis.containers) == comparison["predictor"].nunique()
    assert [label.get_text() for label in axis.get_yticklabels()][0] == "oracle"
    assert figure.get_size_inches()[0] <= plots.TWO_COLUMN_INCHES
    with pytest.raises(ValueError, match="comparison must have columns"):
        plots.plot_predictor_ranking(comparison.drop(columns="rho"))
