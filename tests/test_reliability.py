"""Tests of rzs.reliability: hand-computed ICC and Kendall's W, and the seed-reliability table."""

import numpy as np
import pandas as pd
import pytest

from rzs import reliability


def long_table(values, quantity="DBM"):
    """The long (network, seed, quantity, value) table of an (n, k) array."""
    return pd.DataFrame(
        [
            {"network": f"net{i}", "seed": j, "quantity": quantity, "value": value}
            for i, row in enumerate(values)
            for j, value in enumerate(row)
        ]
    )


def test_intraclass_correlation_by_hand():
    # Network means 1.5, 3.5, 5.5 (grand 3.5): MSB = 2 * (4 + 0 + 4) / 2 = 8; every seed is
    # 0.5 from its network's mean: MSW = 6 * 0.25 / 3 = 0.5.
    result = reliability.intraclass_correlation([[1, 2], [3, 4], [5, 6]])
    assert result["seed_variance"] == pytest.approx(0.5)
    assert result["between_network_variance"] == pytest.approx((8 - 0.5) / 2)
    assert result["icc"] == pytest.approx(7.5 / 8.5)
    assert result["icc_mean_of_seeds"] == pytest.approx(7.5 / 8)


def test_networks_indistinguishable_from_seeds_give_an_icc_near_zero():
    generator = np.random.default_rng(0)
    iccs = [
        reliability.intraclass_correlation(generator.normal(size=(12, 3)))["icc"] for _ in range(400)
    ]
    # Under no network effect the ICC scatters around 0 from one study to the next.
    assert abs(np.mean(iccs)) < 0.05


def test_kendalls_w_and_spearman_for_agreeing_and_reversed_rankings():
    agreeing = [[1, 10, 5], [2, 20, 6], [3, 30, 7], [4, 40, 8]]
    assert reliability.kendalls_w(agreeing) == pytest.approx(1.0)
    assert reliability.mean_pairwise_spearman(agreeing) == pytest.approx(1.0)
    reversed_rankings = [[1, 4], [2, 3], [3, 2], [4, 1]]
    assert reliability.kendalls_w(reversed_rankings) == pytest.approx(0.0)
    assert reliability.mean_pairwise_spearman(reversed_rankings) == pytest.approx(-1.0)


def test_kendalls_w_corrects_for_ties():
    # Seed 0 ties networks 1 and 2 (ranks 1, 2.5, 2.5, 4; seed 1: 1, 2, 3, 4): rank sums 2,
    # 4.5, 5.5, 8, S = 18.5. Without the tie correction W = 12 S / (k^2 (n^3 - n)) = 222 / 240;
    # with it the denominator loses k * (2^3 - 2) = 12.
    values = [[1, 1], [2, 2], [2, 3], [4, 4]]
    assert reliability.kendalls_w(values) == pytest.approx(12 * 18.5 / (4 * 60 - 12))


def test_reliability_table_with_one_seed_says_it_needs_two():
    table = reliability.reliability_table(long_table([[0.1], [0.2], [0.3]]))
    row = table.iloc[0]
    assert list(table.columns) == list(reliability.COLUMNS)
    assert row["note"] == "needs >= 2 seeds" and (row["networks"], row["seeds"]) == (3, 1)
    assert np.isnan(row["icc"]) and np.isnan(row["kendall_w"])


def test_reliability_table_per_quantity_leaves_out_networks_missing_a_seed():
    values = [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]
    frame = pd.concat([long_table(values, "DBM"), long_table(values, "AM")], ignore_index=True)
    frame.loc[(frame["quantity"] == "AM") & (frame["network"] == "net2") & (frame["seed"] == 1), "value"] = np.nan
    table = reliability.reliability_table(frame).set_index("quantity")
    assert table.loc["DBM", "icc"] == pytest.approx(7.5 / 8.5) and table.loc["DBM", "note"] == ""
    assert table.loc["AM", "networks"] == 2 and table.loc["AM", "kendall_w"] == pytest.approx(1.0)


def test_reliability_table_rejects_duplicates_and_missing_columns():
    frame = long_table([[1.0, 2.0], [3.0, 4.0]])
    with pytest.raises(ValueError, match="one row per network, seed and quantity"):
        reliability.reliability_table(pd.concat([frame, frame.iloc[:1]]))
    with pytest.raises(ValueError, match="columns"):
        reliability.reliability_table(frame.drop(columns="seed"))
    with pytest.raises(ValueError, match="shape"):
        reliability.intraclass_correlation([[1.0, 2.0]])
