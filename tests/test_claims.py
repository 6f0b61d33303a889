"""Claims read what the pre-specified tests say: one test each, sign-aware, with intervals."""

import numpy as np
import pandas as pd
import pytest

from rzs import analysis, claims

NETWORKS = ["CapsNet", "LeNet", "ResNet", "VGG16", "NIN", "AllConv", "DenseNet", "WRN"]
PERMUTATIONS = 199
RESAMPLES = 200


def estimates(effect, seed=0):
    """Metric and outcome tables of 8 networks where the outcome is effect * metric + noise."""
    rng = np.random.default_rng(seed)
    transferability = np.sort(rng.normal(size=len(NETWORKS)))  # CapsNet lowest, LeNet second
    metric_rows, outcome_rows, replicates = [], [], {}
    for index, network in enumerate(NETWORKS):
        for metric in analysis.PRIMARY_METRICS:
            value = transferability[index] + 0.05 * rng.normal()
            metric_rows.append({"network": network, "metric": metric, "value": value,
                                "ci_low": value - 0.01, "ci_high": value + 0.01})
            replicates[(network, metric)] = value + 0.001 * rng.normal(size=RESAMPLES)
        for attack in analysis.PRIMARY_ATTACKS:
            outcome_rows.append({"network": network, "attack": attack,
                                 "value": effect * transferability[index] + 0.2 * rng.normal()})
    covariates = pd.DataFrame({"network": NETWORKS, "test_accuracy": np.linspace(0.8, 0.9, len(NETWORKS))})
    return pd.DataFrame(metric_rows), pd.DataFrame(outcome_rows), replicates, covariates


def table_for(effect, defence_tests=None):
    metric_table, outcome_table, replicates, covariates = estimates(effect)
    primary = analysis.primary_tests(metric_table, outcome_table, replicates, None,
                                     resamples=RESAMPLES, permutations=PERMUTATIONS)
    return claims.claims_table(primary, metric_table, replicates, covariates, defence_tests,
                               permutations=PERMUTATIONS)


def verdict_of(table, identifier):
    return table.set_index("id").loc[identifier, "verdict"]


def test_claims_table_has_one_row_per_test_with_estimates_and_intervals():
    table = table_for(effect=1.0)
    assert list(table.columns) == claims.COLUMNS
    assert list(table["id"]) == [
        "densest_clusters", "accuracy_tradeoff",
        "metrics_correlate_with_attacks:DBM-pixel", "metrics_correlate_with_attacks:DBM-threshold",
        "metrics_correlate_with_attacks:AM-pixel", "metrics_correlate_with_attacks:AM-threshold",
        "transferable_more_robust", "defences_lower_attack_accuracy",
        "defences_improve_transferability",
    ]
    primary = table[table["analysis"] == "primary"]
    assert len(primary) == 5 and primary["p_adjusted"].notna().all()
    assert (primary["ci_low"] <= primary["value"]).all() and (primary["value"] <= primary["ci_high"]).all()
    for row in primary.itertuples():
        assert f"{row.value:.2f}" in row.finding and f"{row.ci_low:.2f}" in row.finding


def test_strong_effect_in_the_papers_direction_is_supported():
    table = table_for(effect=1.0)
    assert verdict_of(table, "transferable_more_robust") == claims.SUPPORTED
    assert (table[table["id"].str.startswith("metrics_correlate")]["verdict"] == claims.SUPPORTED).all()


def test_opposite_effect_is_contradicted_never_supported():
    table = table_for(effect=-1.0)
    assert verdict_of(table, "transferable_more_robust") == claims.CONTRADICTED
    assert not (table[table["analysis"] == "primary"]["verdict"] == claims.SUPPORTED).any()
    assert "opposite direction" in table.set_index("id").loc["transferable_more_robust", "finding"]


def test_no_effect_is_inconclusive_with_its_interval():
    table = table_for(effect=0.0)
    row = table.set_index("id").loc["transferable_more_robust"]
    assert row["verdict"] == claims.INCONCLUSIVE
    assert row["ci_low"] < 0 < row["ci_high"] or row["ci_low"] < row["value"] < row["ci_high"]


def test_densest_clusters_reads_the_bootstrap_share():
    table = table_for(effect=0.0)
    row = table.set_index("id").loc["densest_clusters"]
    assert row["verdict"] == claims.SUPPORTED and row["value"] >= 0.95
    assert "CapsNet ranks 1 of 8" in row["finding"]


def test_missing_inputs_are_inconclusive_and_say_what_is_missing():
    table = claims.claims_table()
    assert (table["verdict"] == claims.INCONCLUSIVE).all()
    assert table["finding"].str.contains("no").all()


def test_a_table_with_wrong_columns_raises():
    with pytest.raises(ValueError, match="primary must have columns"):
        claims.claim_transferable_more_robust(pd.DataFrame({"metric": ["DBM"]}))


def defence_table(changes, networks=12, null_shift=0.0, seed=0):
    """defence_tests on simulated networks: each defence adds changes[defence] to every network."""
    rng = np.random.default_rng(seed)
    rows = []
    for index in range(networks):
        base = {quantity: rng.uniform(0.2, 0.6) for quantity in ("DBM", "AM", "pixel", "threshold")}
        arms = {"vanilla": 0.0, **changes, analysis.NULL_CONTROL: null_shift}
        for defence, change in arms.items():
            for quantity, value in base.items():
                noise = 0.0 if defence == "vanilla" else 0.01 * rng.normal()
                rows.append({"network": f"net{index}", "defence": defence, "quantity": quantity,
                             "value": value + change + noise})
    return analysis.defence_tests(pd.DataFrame(rows), permutations=999)


def test_defences_that_lower_everything_are_supported_and_the_null_control_is_not_significant():
    tests = defence_table({"jpeg": -0.1, "label_smoothing": -0.1, "squeezing": 0.0})
    assert not tests.loc[tests["null_control"], "significant"].any()
    table = claims.claims_table(defence_tests=tests)
    assert verdict_of(table, "defences_lower_attack_accuracy") == claims.SUPPORTED
    assert verdict_of(table, "defences_improve_transferability") == claims.SUPPORTED


def test_defences_that_raise_are_contradicted():
    table = claims.claims_table(defence_tests=defence_table({"jpeg": 0.1, "label_smoothing": 0.1}))
    assert verdict_of(table, "defences_lower_attack_accuracy") == claims.CONTRADICTED


def test_a_significant_null_control_makes_the_defence_claims_inconclusive():
    tests = defence_table({"jpeg": -0.1, "label_smoothing": -0.1}, null_shift=0.1)
    table = claims.claims_table(defence_tests=tests)
    row = table.set_index("id").loc["defences_lower_attack_accuracy"]
    assert row["verdict"] == claims.INCONCLUSIVE and "not calibrated" in row["finding"]


def test_three_networks_cannot_support_a_defence_claim():
    tests = defence_table({"jpeg": -0.3, "label_smoothing": -0.3}, networks=3)
    table = claims.claims_table(defence_tests=tests)
    row = table.set_index("id").loc["defences_lower_attack_accuracy"]
    assert row["verdict"] == claims.INCONCLUSIVE and "cannot come out significant" in row["finding"]
