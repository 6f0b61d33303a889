"""Tests of rzs.claims: each claim supported, not supported and inconclusive on synthetic tables."""

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats

from rzs import claims, stats

NETWORKS = ["CapsNet", "LeNet", "AllConv", "NIN", "ResNet", "DenseNet", "VGG16"]
# Claim 1 and 2 hold: CapsNet lowest, LeNet second, accuracy rises with DBM.
DBM = [0.10, 0.15, 0.30, 0.32, 0.40, 0.42, 0.45]
TEST_ACCURACY = [0.60, 0.65, 0.85, 0.86, 0.90, 0.92, 0.91]
NOISE = [0.010, -0.020, 0.015, -0.005, 0.020, -0.010, 0.000]


@pytest.fixture(autouse=True)
def warnings_are_errors():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


def metric_values(dbm=DBM, networks=NETWORKS):
    am = [1.2 * value + 0.01 for value in dbm]
    return pd.DataFrame({
        "network": list(networks) * 2,
        "metric": ["DBM"] * len(networks) + ["AM"] * len(networks),
        "value": list(dbm) + am,
        "std": 0.01,
        "classes": 10,
    })


def accuracy_table(test_accuracy=TEST_ACCURACY):
    full = pd.DataFrame({"network": NETWORKS, "model": "full", "excluded_class": None,
                         "test_accuracy": test_accuracy})
    # Leave-one-out rows, as Study.accuracy_table gives them, must be ignored.
    without = pd.DataFrame({"network": NETWORKS, "model": "without 0", "excluded_class": 0,
                            "test_accuracy": 0.99})
    return pd.concat([full, without], ignore_index=True)


def attack_summary(slope=1.5, dbm=DBM):
    rows = [
        (network, attack, th, 100, 0.5 + slope * (value - 0.3) + 0.05 * th + noise)
        for network, value, noise in zip(NETWORKS, dbm, NOISE)
        for attack in ("pixel", "threshold")
        for th in (1, 3)
    ]
    summary = pd.DataFrame(rows, columns=["network", "attack", "th", "images", "attack_accuracy"])
    summary["attack_accuracy_on_correct"] = summary["attack_accuracy"]
    return summary


def correlations(slope=1.5):
    attacks, keys = claims.attacks_for_correlation(attack_summary(slope))
    return stats.correlation_table(metric_values(), attacks, attack_keys=keys)


def defence_tests(shifts):
    """shifts: {defence: {quantity: mean change}}; per-network noise keeps the t-test defined."""
    rows = []
    for network, noise in zip(NETWORKS, NOISE):
        for defence, by_quantity in {"vanilla": {}, **shifts}.items():
            for quantity in ("DBM", "AM", "pixel th=1"):
                shift = by_quantity.get(quantity, 0.0)
                value = 0.4 + shift + (0.1 * noise if defence != "vanilla" else 0.0)
                rows.append((defence, network, quantity, value))
    return stats.paired_tests(pd.DataFrame(rows, columns=["defence", "network", "quantity",
                                                          "value"]))


HELPFUL = {
    "jpeg": {"DBM": -0.05, "pixel th=1": -0.10},
    "adversarial training": {"AM": -0.04, "pixel th=1": -0.20},
    "label smoothing": {},
}
HARMFUL = {"jpeg": {"DBM": 0.05, "pixel th=1": 0.10}, "label smoothing": {}}


def assert_row(row, verdict, *texts):
    assert set(row) == {"claim", "finding", "verdict", "evidence"}
    assert row["verdict"] == verdict, row["finding"]
    for text in texts:
        assert text in row["finding"], (text, row["finding"])


# Claim 1: densest clusters ----------------------------------------------------------------------

def test_densest_clusters_supported_reports_both_ranks():
    row = claims.claim_densest_clusters(metric_values())
    assert_row(row, "supported", "CapsNet ranks 1 of 7 (DBM = 0.1)",
               "LeNet ranks 2 of 7 (DBM = 0.15)")


def test_densest_clusters_not_supported_when_another_network_is_denser():
    dbm = [0.30, 0.15, 0.10, 0.32, 0.40, 0.42, 0.45]
    row = claims.claim_densest_clusters(metric_values(dbm))
    assert_row(row, "not supported", "CapsNet ranks 3 of 7 (DBM = 0.3)",
               "LeNet ranks 2 of 7", "the densest clusters are AllConv's (0.1)")


def test_densest_clusters_matches_names_ignoring_case_and_punctuation():
    values = metric_values(networks=["caps_net", "lenet", *NETWORKS[2:]])
    assert claims.claim_densest_clusters(values)["verdict"] == "supported"


def test_densest_clusters_inconclusive_when_capsnet_is_missing():
    values = metric_values(DBM[1:], NETWORKS[1:])
    row = claims.claim_densest_clusters(values)
    assert_row(row, "inconclusive", "capsnet is not among the 6 networks",
               "LeNet ranks 1 of 6 (DBM = 0.15)")


@pytest.mark.parametrize("frame", [None, pd.DataFrame()])
def test_densest_clusters_inconclusive_without_metrics(frame):
    assert_row(claims.claim_densest_clusters(frame), "inconclusive", "metric_values")


# Claim 2: accuracy trade-off --------------------------------------------------------------------

def test_accuracy_tradeoff_supported_states_r_p_and_n_from_scipy():
    row = claims.claim_accuracy_tradeoff(metric_values(), accuracy_table())
    expected = scipy_stats.pearsonr(TEST_ACCURACY, DBM)
    rank = scipy_stats.spearmanr(TEST_ACCURACY, DBM)
    assert_row(row, "supported", "n = 7 networks", f"Pearson r = {expected.statistic:.2f}",
               f"p = {expected.pvalue:.2g}", f"Spearman rho = {rank.statistic:.2f}",
               "higher (more diffuse) DBM")


def test_accuracy_tradeoff_not_supported_when_accuracy_falls_with_dbm():
    falling = [1.5 - value for value in TEST_ACCURACY]
    row = claims.claim_accuracy_tradeoff(metric_values(), accuracy_table(falling))
    expected = scipy_stats.pearsonr(falling, DBM)
    assert_row(row, "not supported", f"Pearson r = {expected.statistic:.2f}", "lower (denser)")


def test_accuracy_tradeoff_not_supported_when_not_significant():
    unrelated = [0.80, 0.90, 0.70, 0.95, 0.75, 0.85, 0.72]
    row = claims.claim_accuracy_tradeoff(metric_values(), accuracy_table(unrelated))
    expected = scipy_stats.pearsonr(unrelated, DBM)
    assert expected.pvalue > 0.05
    assert_row(row, "not supported", f"p = {expected.pvalue:.2g}", "not significant")


def test_accuracy_tradeoff_spearman_method_decides_on_rho():
    row = claims.claim_accuracy_tradeoff(metric_values(), accuracy_table(), method="spearman")
    assert row["verdict"] == "supported" and "by Spearman rho" in row["finding"]
    with pytest.raises(ValueError, match="method must be one of"):
        claims.claim_accuracy_tradeoff(metric_values(), accuracy_table(), method="kendall")


def test_accuracy_tradeoff_inconclusive_with_too_few_networks_or_no_accuracy():
    few = accuracy_table()
    few = few[few["network"].isin(NETWORKS[:2])]
    assert_row(claims.claim_accuracy_tradeoff(metric_values(), few), "inconclusive", "n = 2")
    assert_row(claims.claim_accuracy_tradeoff(metric_values(), None), "inconclusive",
               "no accuracy table")


def test_accuracy_tradeoff_rejects_several_full_rows_per_network():
    doubled = pd.DataFrame({"network": ["LeNet", "LeNet"], "test_accuracy": [0.6, 0.7]})
    with pytest.raises(ValueError, match=r"one full-model row per network.*\['LeNet'\]"):
        claims.claim_accuracy_tradeoff(metric_values(), doubled)


# Claims 3 and 4: correlations with attacks ------------------------------------------------------

def test_metrics_correlate_supported_counts_strong_rows_and_names_the_strongest():
    table = correlations()
    strongest = table.loc[table["pearson_r"].abs().idxmax()]
    row = claims.claim_metrics_correlate_with_attacks(table)
    assert_row(row, "supported", "8 of 8 metric x attack correlations (100%)",
               "DBM: 4 of 4; AM: 4 of 4",
               f"r = {strongest['pearson_r']:.2f}", f"th={strongest['th']:g}",
               "n = 7 networks")


def test_metrics_correlate_not_supported_for_weak_correlations():
    table = correlations(slope=0.0)
    row = claims.claim_metrics_correlate_with_attacks(table)
    strong = ((table["pearson_r"].abs() >= 0.5) & (table["pearson_p"] < 0.05)).sum()
    assert strong < 4
    assert_row(row, "not supported", f"{strong} of 8 metric x attack correlations")


def test_metrics_correlate_inconclusive_when_undefined_or_missing():
    undefined = stats.correlation_table(
        metric_values().iloc[:2], claims.attacks_for_correlation(attack_summary())[0]
    )
    assert_row(claims.claim_metrics_correlate_with_attacks(undefined), "inconclusive",
               "None of the 4 metric x attack correlations is defined", "n = 2 networks")
    assert_row(claims.claim_metrics_correlate_with_attacks(None), "inconclusive",
               "no correlations table")
    assert_row(claims.claim_transferable_more_robust(pd.DataFrame()), "inconclusive", "empty")


def test_transferable_more_robust_supported_with_positive_significant_correlations():
    row = claims.claim_transferable_more_robust(
        correlations(), metric_values=metric_values(), attack_summary=attack_summary()
    )
    summary = attack_summary()
    capsnet = summary.loc[summary["network"] == "CapsNet", "attack_accuracy"].mean()
    vgg = summary.loc[summary["network"] == "VGG16", "attack_accuracy"].mean()
    assert_row(row, "supported", "8 of 8 metric x attack correlations are positive",
               "8 are positive and 0 negative", "CapsNet (0.1)", f"{capsnet:.3f}",
               f"VGG16 (0.45), {vgg:.3f}")


def test_transferable_more_robust_not_supported_for_the_opposite_sign():
    row = claims.claim_transferable_more_robust(correlations(slope=-1.5))
    assert_row(row, "not supported", "0 of 8 metric x attack correlations are positive",
               "0 are positive and 8 negative")


def test_transferable_more_robust_not_supported_without_a_significant_row():
    table = correlations().assign(pearson_p=0.5)
    assert_row(claims.claim_transferable_more_robust(table), "not supported",
               "of the 0 with p < 0.05")


# Claims 5 and 6: defences -----------------------------------------------------------------------

def test_defences_supported_name_each_defence_with_difference_and_p():
    tests = defence_tests(HELPFUL)
    row = claims.claim_defences_lower_attack_accuracy(tests)
    jpeg = tests[(tests["defence"] == "jpeg") & (tests["quantity"] == "pixel th=1")].iloc[0]
    assert_row(row, "supported", "2 of 3 defences significantly lower attack accuracy",
               f"jpeg (pixel th=1 Δ = {jpeg['mean_difference']:+.3g}, p = {jpeg['t_p']:.2g})",
               "adversarial training (pixel th=1")
    dbm = tests[(tests["defence"] == "jpeg") & (tests["quantity"] == "DBM")].iloc[0]
    row = claims.claim_defences_improve_transferability(tests)
    assert_row(row, "supported", "2 of 3 defences significantly lower DBM/AM",
               f"jpeg (DBM Δ = {dbm['mean_difference']:+.3g}, p = {dbm['t_p']:.2g})",
               "adversarial training (AM Δ = ")


def test_defences_not_supported_when_they_raise_the_quantities():
    tests = defence_tests(HARMFUL)
    assert_row(claims.claim_defences_lower_attack_accuracy(tests), "not supported",
               "0 of 2 defences", "0 of 2 defence x quantity comparisons lower it")
    assert_row(claims.claim_defences_improve_transferability(tests), "not supported",
               "0 of 2 defences")


def test_one_defence_is_not_several():
    tests = defence_tests({"jpeg": {"DBM": -0.05}, "label smoothing": {}})
    row = claims.claim_defences_improve_transferability(tests)
    assert_row(row, "not supported", "1 of 2 defences", "needs at least 2")
    assert claims.claim_defences_improve_transferability(tests, several=1)["verdict"] == \
        "supported"


def test_attack_quantities_restrict_which_quantities_are_attacks():
    tests = defence_tests(HELPFUL)
    row = claims.claim_defences_lower_attack_accuracy(tests, attack_quantities=["threshold th=1"])
    assert_row(row, "inconclusive", "no attack accuracy quantity")
    row = claims.claim_defences_lower_attack_accuracy(tests, attack_quantities=["pixel th=1"])
    assert row["verdict"] == "supported"


def test_defences_wilcoxon_option_uses_its_p_value():
    tests = defence_tests(HELPFUL)
    row = claims.claim_defences_lower_attack_accuracy(tests, test="wilcoxon")
    jpeg = tests[(tests["defence"] == "jpeg") & (tests["quantity"] == "pixel th=1")].iloc[0]
    assert "Wilcoxon signed-rank test" in row["finding"]
    assert f"p = {jpeg['wilcoxon_p']:.2g}" in row["finding"]


def test_defences_inconclusive_when_missing():
    tests = defence_tests(HELPFUL)
    metrics_only = tests[tests["quantity"].isin(["DBM", "AM"])]
    assert_row(claims.claim_defences_lower_attack_accuracy(metrics_only), "inconclusive",
               "no attack accuracy quantity", "'AM', 'DBM'")
    assert_row(claims.claim_defences_improve_transferability(None), "inconclusive",
               "no defence_tests table")
    untested = tests.assign(t_p=np.nan)
    assert_row(claims.claim_defences_improve_transferability(untested), "inconclusive",
               "No paired t-test")


# claims_table -----------------------------------------------------------------------------------

def test_claims_table_of_nothing_is_all_inconclusive():
    table = claims.claims_table()
    assert list(table.columns) == ["id", "claim", "finding", "verdict", "evidence"]
    assert list(table["id"]) == list(claims.CLAIMS)
    assert (table["verdict"] == "inconclusive").all()


def test_claims_table_computes_correlations_from_the_attack_summary():
    table = claims.claims_table(metric_values(), accuracy_table(), attack_summary(),
                                defence_tests=defence_tests(HELPFUL))
    assert (table["verdict"] == "supported").all(), table["finding"].tolist()
    given = claims.claims_table(metric_values(), accuracy_table(), None, correlations(),
                                defence_tests(HELPFUL))
    pd.testing.assert_series_equal(table["finding"].iloc[2:3], given["finding"].iloc[2:3])


def test_claims_table_without_attacks_or_defences():
    table = claims.claims_table(metric_values(), accuracy_table()).set_index("id")
    assert table.loc["densest_clusters", "verdict"] == "supported"
    assert table.loc["accuracy_tradeoff", "verdict"] == "supported"
    assert (table["verdict"].iloc[2:] == "inconclusive").all()


def test_wrong_columns_are_a_bug_not_a_missing_result():
    with pytest.raises(ValueError, match=r"metric_values must have columns.*missing \['value'\]"):
        claims.claim_densest_clusters(pd.DataFrame({"network": ["a"], "metric": ["DBM"]}))
    with pytest.raises(ValueError, match=r"missing \['attack_accuracy'\]"):
        claims.attacks_for_correlation(attack_summary().drop(columns="attack_accuracy"))
