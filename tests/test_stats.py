"""Tests of rzs.stats: agreement with scipy.stats and the degenerate cases."""

import math
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats

from rzs import stats

NETWORKS = ["LeNet", "AllConv", "NIN", "ResNet", "CapsNet"]
METRIC_VALUES = [0.30, 0.50, 0.45, 0.60, 0.20]
PIXEL_ACCURACY = [0.40, 0.65, 0.50, 0.70, 0.35]
THRESHOLD_ACCURACY = [0.20, 0.10, 0.40, 0.30, 0.25]


@pytest.fixture(autouse=True)
def warnings_are_errors():
    # Degenerate cases must be caught before scipy warns about them.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


def metric_frame():
    return pd.DataFrame({"network": NETWORKS, "metric": "DBM", "value": METRIC_VALUES})


def attack_frame():
    return pd.DataFrame(
        {
            "network": NETWORKS * 2,
            "attack": ["pixel"] * 5 + ["threshold"] * 5,
            "th": 1,
            "accuracy": PIXEL_ACCURACY + THRESHOLD_ACCURACY,
        }
    )


# Correlations -----------------------------------------------------------------------------------

def test_correlation_table_hand_case_agrees_with_scipy_and_the_formula():
    table = stats.correlation_table(metric_frame(), attack_frame())
    assert list(table.columns) == [
        "metric", "attack", "th", "n", "pearson_r", "pearson_p", "spearman_rho", "spearman_p",
        "note",
    ]
    pixel = table[table["attack"] == "pixel"].iloc[0]
    x, y = np.array(METRIC_VALUES), np.array(PIXEL_ACCURACY)
    centred_x, centred_y = x - x.mean(), y - y.mean()
    by_hand = (centred_x @ centred_y) / math.sqrt(
        (centred_x @ centred_x) * (centred_y @ centred_y)
    )
    assert pixel["pearson_r"] == pytest.approx(by_hand)
    expected = scipy_stats.pearsonr(x, y)
    assert pixel["pearson_r"] == pytest.approx(expected.statistic)
    assert pixel["pearson_p"] == pytest.approx(expected.pvalue)
    # The ranks of x and y agree exactly, so Spearman's rho is 1.
    assert pixel["spearman_rho"] == pytest.approx(1.0)
    assert pixel["n"] == 5
    assert pixel["note"] == ""
    threshold = table[table["attack"] == "threshold"].iloc[0]
    expected_rank = scipy_stats.spearmanr(METRIC_VALUES, THRESHOLD_ACCURACY)
    assert threshold["spearman_rho"] == pytest.approx(expected_rank.statistic)
    assert threshold["spearman_p"] == pytest.approx(expected_rank.pvalue)


def test_correlation_table_leaves_out_missing_values_and_counts_the_rest():
    attacks = attack_frame()
    attacks.loc[0, "accuracy"] = np.nan
    pixel = stats.correlation_table(metric_frame(), attacks).iloc[0]
    assert pixel["n"] == 4
    expected = scipy_stats.pearsonr(METRIC_VALUES[1:], PIXEL_ACCURACY[1:])
    assert pixel["pearson_p"] == pytest.approx(expected.pvalue)


def test_correlation_table_gives_nan_and_a_note_for_too_few_networks():
    row = stats.correlation_table(metric_frame().iloc[:2], attack_frame()).iloc[0]
    assert row["n"] == 2
    assert np.isnan(row["pearson_r"]) and np.isnan(row["spearman_p"])
    assert "at least 3" in row["note"]


def test_correlation_table_gives_nan_and_a_note_for_constant_accuracy():
    attacks = attack_frame().assign(accuracy=1.0)
    row = stats.correlation_table(metric_frame(), attacks).iloc[0]
    assert np.isnan(row["pearson_r"])
    assert "constant" in row["note"]


def test_correlation_table_keeps_attacks_without_a_threshold():
    attacks = pd.DataFrame(
        {"network": NETWORKS, "attack": "pgd", "th": np.nan, "accuracy": PIXEL_ACCURACY}
    )
    table = stats.correlation_table(metric_frame(), attacks)
    assert len(table) == 1 and table["n"].iloc[0] == 5


def test_correlation_table_groups_by_the_given_attack_keys():
    attacks = attack_frame().drop(columns="th")
    table = stats.correlation_table(metric_frame(), attacks, attack_keys=("attack",))
    assert list(table["attack"]) == ["pixel", "threshold"]


def test_correlation_table_rejects_duplicates_and_missing_columns():
    with pytest.raises(ValueError, match=r"attacks must hold one row per \['network', 'attack', "
                                         r"'th'\]; received 2 duplicated rows"):
        stats.correlation_table(metric_frame(), pd.concat([attack_frame(), attack_frame()[:1]]))
    with pytest.raises(ValueError, match=r"metrics must have columns.*missing \['value'\]"):
        stats.correlation_table(metric_frame().drop(columns="value"), attack_frame())
    with pytest.raises(ValueError, match="metrics must be a pandas DataFrame; received dict"):
        stats.correlation_table({"network": NETWORKS}, attack_frame())


# Paired tests -----------------------------------------------------------------------------------

VANILLA = [0.30, 0.50, 0.45, 0.60, 0.20]
DEFENDED = [0.25, 0.41, 0.47, 0.50, 0.12]


def paired_frame(vanilla=VANILLA, defended=DEFENDED, quantity="DBM"):
    return pd.DataFrame(
        {
            "defence": ["vanilla"] * len(vanilla) + ["jpeg"] * len(defended),
            "network": NETWORKS[: len(vanilla)] + NETWORKS[: len(defended)],
            "quantity": quantity,
            "value": list(vanilla) + list(defended),
        }
    )


def test_paired_tests_agree_with_scipy():
    row = stats.paired_tests(paired_frame()).iloc[0]
    differences = np.array(DEFENDED) - np.array(VANILLA)
    t_test = scipy_stats.ttest_rel(DEFENDED, VANILLA)
    wilcoxon = scipy_stats.wilcoxon(DEFENDED, VANILLA)
    assert row["defence"] == "jpeg" and row["quantity"] == "DBM" and row["n"] == 5
    assert row["t_statistic"] == pytest.approx(t_test.statistic)
    assert row["t_p"] == pytest.approx(t_test.pvalue)
    assert row["wilcoxon_statistic"] == pytest.approx(wilcoxon.statistic)
    assert row["wilcoxon_p"] == pytest.approx(wilcoxon.pvalue)
    assert row["mean_difference"] == pytest.approx(differences.mean())
    assert row["cohens_dz"] == pytest.approx(differences.mean() / differences.std(ddof=1))
    # d_z and t differ by sqrt(n) by definition.
    assert row["t_statistic"] == pytest.approx(row["cohens_dz"] * math.sqrt(5))
    assert row["direction"] == "lower with defence"
    assert row["vanilla_mean"] == pytest.approx(np.mean(VANILLA))
    assert row["note"] == ""


def test_paired_tests_pair_by_key_not_by_row_order():
    shuffled = paired_frame().iloc[[0, 1, 2, 3, 4, 9, 8, 7, 6, 5]]
    pd.testing.assert_frame_equal(stats.paired_tests(shuffled), stats.paired_tests(paired_frame()))


def test_paired_tests_handle_a_single_pair():
    row = stats.paired_tests(paired_frame(VANILLA[:1], DEFENDED[:1])).iloc[0]
    assert row["n"] == 1
    assert row["mean_difference"] == pytest.approx(DEFENDED[0] - VANILLA[0])
    assert np.isnan(row["t_p"]) and np.isnan(row["wilcoxon_p"])
    assert "at least 2" in row["note"]


def test_paired_tests_handle_all_zero_differences():
    row = stats.paired_tests(paired_frame(VANILLA, VANILLA)).iloc[0]
    assert np.isnan(row["t_p"]) and np.isnan(row["wilcoxon_p"]) and np.isnan(row["cohens_dz"])
    assert row["direction"] == "no change"
    assert "all differences are zero" in row["note"]


def test_paired_tests_handle_constant_nonzero_differences():
    shifted = [value + 0.1 for value in VANILLA]
    row = stats.paired_tests(paired_frame(VANILLA, shifted)).iloc[0]
    assert np.isnan(row["t_p"]) and np.isnan(row["cohens_dz"])
    assert row["wilcoxon_p"] == pytest.approx(scipy_stats.wilcoxon(np.full(5, 0.1)).pvalue)
    assert row["direction"] == "higher with defence"
    assert "t-test and Cohen's d_z are undefined" in row["note"]


def test_paired_tests_handle_a_defence_without_vanilla_partners():
    values = paired_frame()
    values.loc[values["defence"] == "jpeg", "network"] = "other"
    values = values.drop_duplicates(subset=["defence", "network"])
    row = stats.paired_tests(values).iloc[0]
    assert row["n"] == 0 and "no pair" in row["note"]


def test_paired_tests_pair_on_several_keys_and_group_by_several_quantities():
    values = pd.concat(
        [
            paired_frame(quantity="DBM").assign(excluded_class=0),
            paired_frame(quantity="DBM", defended=VANILLA[::-1]).assign(excluded_class=1),
            paired_frame(quantity="AM").assign(excluded_class=0),
        ]
    )
    table = stats.paired_tests(values, pair_on=("network", "excluded_class"))
    assert table.set_index("quantity")["n"].to_dict() == {"DBM": 10, "AM": 5}


def test_paired_tests_reject_values_without_vanilla_rows():
    values = paired_frame().replace({"vanilla": "baseline"})
    with pytest.raises(ValueError, match=r"vanilla rows \(defence == 'vanilla'\); received "
                                         r"defence values \['baseline', 'jpeg'\]"):
        stats.paired_tests(values)
