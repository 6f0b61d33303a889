"""The primary analysis (rzs.analysis): its rules on simulated studies, its intervals, its units."""

import numpy as np
import pandas as pd
import pytest
from statsmodels.stats import multitest

from rzs import analysis, metrics, tables

STUDIES = 1000
NETWORKS = 12
# Few resamples inside simulations: 199 orderings still resolve Holm's 0.05 / 4.
PERMUTATIONS = 199
RESAMPLES = 100


def simulated_family(effect, studies=STUDIES, networks=NETWORKS, seed=0):
    """x, y of shape (studies, 4, networks): DBM and AM against the pixel and threshold outcome.

    A latent transferability t_k drives both metrics; each outcome is effect * t_k + noise, so
    the four tests share their networks as the real ones do.
    """
    rng = np.random.default_rng(seed)
    latent = rng.normal(size=(studies, 1, networks))
    dbm, am = (latent + 0.5 * rng.normal(size=latent.shape) for _ in range(2))
    pixel, threshold = (effect * latent + rng.normal(size=latent.shape) for _ in range(2))
    x = np.concatenate([dbm, dbm, am, am], axis=1)
    y = np.concatenate([pixel, threshold, pixel, threshold], axis=1)
    return x, y


def family_outcome(effect):
    x, y = simulated_family(effect)
    result = analysis.correlation_tests(x, y, resamples=RESAMPLES, permutations=PERMUTATIONS)
    _, _, verdicts = analysis.family_verdicts(result["p"], result["p_opposite"])
    return verdicts


def test_no_effect_is_supported_in_at_most_five_percent_of_studies():
    verdicts = family_outcome(effect=0.0)
    any_supported = (verdicts == analysis.SUPPORTED).any(axis=1)
    any_contradicted = (verdicts == analysis.CONTRADICTED).any(axis=1)
    assert any_supported.mean() <= 0.05
    assert any_contradicted.mean() <= 0.05


def test_strong_effect_in_the_papers_direction_is_supported():
    verdicts = family_outcome(effect=2.0)
    assert (verdicts == analysis.SUPPORTED).any(axis=1).mean() >= 0.95
    assert not (verdicts == analysis.CONTRADICTED).any()


def test_strong_opposite_effect_is_contradicted_and_never_supported():
    verdicts = family_outcome(effect=-2.0)
    assert (verdicts == analysis.CONTRADICTED).any(axis=1).mean() >= 0.95
    assert not (verdicts == analysis.SUPPORTED).any()


def test_primary_tests_table_matches_the_vectorised_rule():
    x, y = simulated_family(effect=1.0, studies=3, seed=4)
    vectorised = analysis.correlation_tests(x, y, resamples=RESAMPLES, permutations=PERMUTATIONS)
    p_adjusted, _, verdicts = analysis.family_verdicts(vectorised["p"], vectorised["p_opposite"])
    for study in range(3):
        networks = [f"net{k}" for k in range(NETWORKS)]
        metric_table = pd.DataFrame(
            [{"network": network, "metric": metric, "value": x[study, 2 * index, k]}
             for index, metric in enumerate(analysis.PRIMARY_METRICS) for k, network in enumerate(networks)])
        outcome_table = pd.DataFrame(
            [{"network": network, "attack": attack, "value": y[study, index, k]}
             for index, attack in enumerate(analysis.PRIMARY_ATTACKS) for k, network in enumerate(networks)])
        table = analysis.primary_tests(metric_table, outcome_table, resamples=RESAMPLES,
                                       permutations=PERMUTATIONS)
        assert list(zip(table["metric"], table["attack"])) == [
            ("DBM", "pixel"), ("DBM", "threshold"), ("AM", "pixel"), ("AM", "threshold")]
        np.testing.assert_allclose(table["value"], vectorised["value"][study])
        np.testing.assert_allclose(table["p_adjusted"], p_adjusted[study])
        assert list(table["verdict"]) == list(verdicts[study])
        assert (table["ci_low"] <= table["value"]).all() and (table["value"] <= table["ci_high"]).all()


def test_primary_tests_with_too_few_networks_are_inconclusive_with_a_note():
    metric_table = pd.DataFrame({"network": ["a", "b", "a", "b"], "metric": ["DBM", "DBM", "AM", "AM"],
                                 "value": [0.1, 0.2, 0.3, 0.4]})
    outcome_table = pd.DataFrame({"network": ["a", "b", "a", "b"],
                                  "attack": ["pixel", "pixel", "threshold", "threshold"],
                                  "value": [0.5, 0.6, 0.1, 0.2]})
    table = analysis.primary_tests(metric_table, outcome_table)
    assert (table["verdict"] == analysis.INCONCLUSIVE).all()
    assert table["note"].str.contains("2 networks with both values; a correlation needs at least 3").all()


def test_holm_equals_statsmodels_and_leaves_nan_out_of_the_family():
    rng = np.random.default_rng(1)
    for size in (1, 4, 9):
        p_values = rng.uniform(size=size) ** 3
        np.testing.assert_allclose(analysis.holm(p_values),
                                   multitest.multipletests(p_values, method="holm")[1])
    adjusted = analysis.holm([0.01, np.nan, 0.04])
    np.testing.assert_allclose(adjusted[[0, 2]], multitest.multipletests([0.01, 0.04], method="holm")[1])
    assert np.isnan(adjusted[1])


def test_two_level_interval_covers_the_true_correlation_near_its_nominal_rate():
    studies, resamples, true_correlation, noise = 400, 400, 0.5, 0.1
    rng = np.random.default_rng(2)
    truth = rng.multivariate_normal([0, 0], [[1, true_correlation], [true_correlation, 1]],
                                    size=(studies, NETWORKS))
    # Each network's estimate is its true value plus sampling noise; its within-network bootstrap
    # replicates scatter around the estimate with the same spread.
    estimates = truth + noise * rng.normal(size=truth.shape)
    replicates = estimates[..., None] + noise * rng.normal(size=(*truth.shape, resamples))
    low, high = analysis.two_level_interval(replicates[:, :, 0], replicates[:, :, 1], rng)
    coverage = np.mean((low <= true_correlation) & (true_correlation <= high))
    # The percentile bootstrap of r over 12 networks runs a little below 95% (as Pearson r's
    # sampling distribution is skewed); near-nominal here means within 0.88-0.99.
    assert 0.88 <= coverage <= 0.99


def test_null_control_is_not_significant_in_95_percent_of_simulations():
    rng = np.random.default_rng(3)
    differences = rng.normal(size=(STUDIES, NETWORKS))
    replicates = differences[..., None] + 0.2 * rng.normal(size=(STUDIES, NETWORKS, RESAMPLES))
    result = analysis.difference_tests(differences, replicates, resamples=RESAMPLES,
                                       permutations=2**NETWORKS)
    # The exact sign-flip test has size 0.05 by construction; allow the simulation's own
    # error (two standard errors of a share of 0.05 over 1,000 studies).
    assert np.mean(result["p"] < 0.05) <= 0.05 + 2 * np.sqrt(0.05 * 0.95 / STUDIES)


def test_a_one_network_defence_table_cannot_come_out_significant():
    values = pd.DataFrame({
        "network": ["lenet"] * 4, "defence": ["vanilla", "jpeg", "vanilla", "jpeg"],
        "quantity": ["DBM", "DBM", "pixel", "pixel"], "value": [0.50, 0.01, 0.9, 0.0],
    })
    table = analysis.defence_tests(values)
    assert not table["significant"].any()
    assert (table["minimum_p"] >= 0.05).all()
    assert table["note"].str.contains("cannot come out significant").all()


def test_three_networks_cannot_reach_significance_however_large_the_change():
    networks = ["a", "b", "c"]
    values = pd.DataFrame(
        [{"network": network, "defence": defence, "quantity": "DBM", "value": value}
         for network in networks for defence, value in (("vanilla", 1.0), ("jpeg", 0.0))])
    table = analysis.defence_tests(values)
    assert table.loc[0, "minimum_p"] == 0.25 and not table.loc[0, "significant"]


def test_defence_tests_pair_on_networks_not_classes():
    rng = np.random.default_rng(5)
    # One network, ten classes, all lower with the defence: classes as pairs would be "significant".
    class_values = pd.DataFrame(
        [{"network": "lenet", "defence": defence, "excluded_class": index, "quantity": "DBM",
          "value": base - (0.1 if defence == "label_smoothing" else 0.0)}
         for index, base in enumerate(rng.uniform(0.3, 0.6, size=10))
         for defence in ("vanilla", "label_smoothing")])
    values, replicates = analysis.paired_class_replicates(class_values, resamples=RESAMPLES)
    table = analysis.defence_tests(values, replicates)
    row = table.iloc[0]
    assert row["n"] == 1 and not row["significant"]
    assert row["value"] == pytest.approx(-0.1)


def test_scatter_and_amalgam_replicates_with_unit_weights_equal_the_metrics():
    rng = np.random.default_rng(6)
    zero_shot = rng.dirichlet(np.ones(9), size=40)
    full = rng.dirichlet(np.ones(10), size=40)
    ones = np.ones((2, 40))
    for q in (1, 2):
        np.testing.assert_allclose(analysis.scatter_replicates(zero_shot, ones, q),
                                   metrics.davies_bouldin_metric(zero_shot, q=q), rtol=1e-6)
    for distance in ("l1", "l2"):
        for reduce in ("image", "mean"):
            np.testing.assert_allclose(
                analysis.amalgam_replicates(zero_shot, full, 3, ones, distance, reduce),
                metrics.amalgam_metric(zero_shot, full, 3, distance, reduce), rtol=1e-9)


def test_metric_estimates_intervals_contain_the_estimate():
    rng = np.random.default_rng(7)
    pairs = {index: (rng.dirichlet(np.ones(3) * (index + 1), size=30), rng.dirichlet(np.ones(4), size=30))
             for index in range(4)}
    table, replicates = analysis.metric_estimates({"lenet": pairs}, resamples=RESAMPLES)
    assert list(table["metric"]) == ["DBM", "AM"] and (table["n"] == 4).all()
    assert (table["ci_low"] < table["value"]).all() and (table["value"] < table["ci_high"]).all()
    assert replicates[("lenet", "DBM")].shape == (RESAMPLES,)


def attack_table(network, successes, correct):
    """Per-image rows at th 1 and 10: successes (images, 2) booleans, correct (images,)."""
    rows = []
    for image, (row, is_correct) in enumerate(zip(successes, correct)):
        for th, success in zip((1, 10), row):
            rows.append({"network": network, "attack": "pixel", "image": image, "th": th,
                         "true_label": 1, "original_label": 1 if is_correct else 2,
                         "success": bool(success)})
    return rows


def test_robustness_outcome_is_the_mean_over_th_on_correct_images():
    successes = np.array([[0, 1], [1, 1], [0, 0], [1, 1]])
    correct = np.array([True, True, True, False])
    table, replicates = analysis.robustness_outcomes(pd.DataFrame(attack_table("lenet", successes, correct)),
                                                     resamples=RESAMPLES)
    row = table.iloc[0]
    assert row["value"] == pytest.approx((0.5 + 1 + 0) / 3)
    assert row["value_all_images"] == pytest.approx((0.5 + 1 + 0 + 1) / 4)
    assert row["n"] == 3 and row["images"] == 4
    assert row["ci_low"] <= row["value"] <= row["ci_high"]


def test_all_equal_scores_fall_back_to_a_wilson_interval():
    table, _ = analysis.robustness_outcomes(
        pd.DataFrame(attack_table("lenet", np.zeros((20, 2)), np.ones(20, dtype=bool))))
    assert table.loc[0, "ci_low"] == 0 and 0.1 < table.loc[0, "ci_high"] < 0.2


def test_wilson_intervals_per_th():
    summary = pd.DataFrame({"network": ["lenet"], "attack": ["pixel"], "strategy": ["cmaes"],
                            "th": [1.0], "images": [30], "attack_accuracy": [0.4],
                            "correct_images": [25], "attack_accuracy_on_correct": [0.28],
                            "mean_queries": [100.0]})
    table = analysis.attack_accuracy_intervals(summary)
    assert list(table["quantity"]) == ["attack_accuracy", "attack_accuracy_on_correct"]
    assert list(table["successes"]) == [12, 7] and list(table["n"]) == [30, 25]
    assert (table["ci_low"] < table["value"]).all() and (table["value"] < table["ci_high"]).all()


def test_partial_correlation_removes_a_shared_confounder():
    rng = np.random.default_rng(8)
    confounder = rng.normal(size=200)
    x = confounder + 0.3 * rng.normal(size=200)
    y = confounder + 0.3 * rng.normal(size=200)
    r, p = analysis.partial_correlation(x, y, confounder[:, None])
    assert abs(r) < 0.2 and p > 0.01
    assert analysis.pearson(x, y) > 0.8


class FakeZeroShot:
    def __init__(self, pairs):
        self.pairs = pairs

    def soft_label_pairs(self, images="test"):
        return self.pairs


class FakeStudy:
    """The parts of rzs.study.Study that network_estimates reads, on random soft labels."""

    def __init__(self, networks, seeds=(0,)):
        self.networks, self.seeds, self.alpha = list(networks), list(seeds), 0.05
        self.metric_q, self.am_distance, self.am_reduce, self.metric_images = 2, "l1", "image", "test"
        rng = np.random.default_rng(9)
        self.pairs = {(network, seed): {index: (rng.dirichlet(np.ones(3), size=20), rng.dirichlet(np.ones(4), size=20))
                                        for index in range(4)}
                      for network in networks for seed in seeds}
        self.tables = pd.DataFrame(
            [{**row, "seed": seed}
             for network in networks for seed in seeds
             for row in attack_table(network, rng.uniform(size=(15, 2)) < 0.3, rng.uniform(size=15) < 0.8)])

    def zero_shot(self, network, defence=None, seed=None):
        return FakeZeroShot(self.pairs[(network, seed)])

    def hygiene_table(self, networks=None, defence=None):
        return pd.DataFrame(
            [{"network": network, "seed": seed, "excluded_class": excluded, "degenerate": False,
              "accuracy_seen": 0.9, "mean_confidence": 0.8}
             for network in self.networks for seed in self.seeds for excluded in (0, 1, 2, 3, np.nan)])

    def attack_tables(self, networks=None, defence=None):
        return self.tables

    def attack_summary(self, networks=None, defence=None):
        frame = self.tables.assign(correct=self.tables["original_label"] == self.tables["true_label"])
        frame["success_on_correct"] = frame["success"].astype(float).where(frame["correct"])
        return frame.groupby(["network", "seed", "attack", "th"]).agg(
            images=("success", "size"), attack_accuracy=("success", "mean"),
            correct_images=("correct", "sum"), attack_accuracy_on_correct=("success_on_correct", "mean"),
        ).reset_index()


@pytest.mark.parametrize("seeds", [(0,), (0, 1)])
def test_primary_analysis_on_a_study_gives_every_table(seeds):
    study = FakeStudy(["lenet", "capsnet", "resnet", "vgg16"], seeds)
    results = analysis.primary_analysis(study, resamples=RESAMPLES, permutations=PERMUTATIONS)
    assert len(results["metrics"]) == 8 and (results["metrics"]["seeds"] == len(seeds)).all()
    assert (results["metrics"]["ci_low"] <= results["metrics"]["value"]).all()
    assert set(results["outcomes"]["attack"]) == {"pixel"} and len(results["outcomes"]) == 4
    assert len(results["primary"]) == 4 and "value_all_images" in results["outcomes"]
    assert set(results["exploratory"]["quantity"]) == {"attack_accuracy", "attack_accuracy_on_correct",
                                                      analysis.OUTCOME}
    assert results["metric_replicates"][("lenet", "DBM")].shape == (RESAMPLES,)


def test_defence_analysis_gives_the_figure_values_and_the_tests_from_one_computation():
    rng = np.random.default_rng(10)
    networks, arms = ["lenet", "allconv", "vgg16"], ["vanilla", "jpeg", analysis.NULL_CONTROL]
    class_values = pd.DataFrame(
        [{"network": network, "seed": seed, "defence": defence, "excluded_class": index, "quantity": quantity,
          "value": rng.uniform()}
         for network in networks for seed in (0, 1) for defence in arms for index in range(4)
         for quantity in ("DBM", "AM")])
    attack_tables = pd.concat(
        [pd.DataFrame(attack_table(network, rng.uniform(size=(10, 2)) < 0.4, rng.uniform(size=10) < 0.8))
         .assign(seed=seed, defence=defence)
         for network in networks for seed in (0, 1) for defence in arms], ignore_index=True)
    network_values = pd.DataFrame(
        [{"network": network, "seed": seed, "defence": defence, "quantity": tables.TEST_ACCURACY_QUANTITY,
          "value": rng.uniform()}
         for network in networks for seed in (0, 1) for defence in arms])
    values, tests = analysis.defence_analysis(class_values, attack_tables, network_values,
                                              resamples=RESAMPLES, permutations=PERMUTATIONS)
    assert len(values) == len(networks) * len(arms) * 4  # DBM, AM, pixel, test accuracy
    assert (values["ci_low"] <= values["ci_high"]).all()
    assert set(tests["defence"]) == {"jpeg", analysis.NULL_CONTROL}
    assert tests["null_control"].sum() == 4 and (tests["n"] == 3).all()
    # Three networks: nothing can be significant, and each row says so.
    assert not tests["significant"].any() and tests["note"].str.contains("cannot").all()
    per_network = values.pivot_table(index=["network", "quantity"], columns="defence", values="value")
    expected = (per_network["jpeg"] - per_network["vanilla"]).groupby("quantity").mean()
    observed = tests[tests["defence"] == "jpeg"].set_index("quantity")["value"]
    pd.testing.assert_series_equal(observed.sort_index(), expected.sort_index(), check_names=False)


def test_the_null_control_is_vanilla_retrained_with_the_next_seed():
    from rzs.study import NULL_CONTROL, Study

    study = Study.from_parameters(networks=["lenet"], seeds=[3], defences=["label_smoothing"])
    options = study.spec_options("lenet", NULL_CONTROL)
    assert options["seed"] == 4 and "defence" not in options
    assert study.defence_arms() == ["label_smoothing", NULL_CONTROL]
    attack = study.attack_specs(defence=NULL_CONTROL)[0]
    assert attack.seed == 3 and attack.model["seed"] == 4 and attack.model["defence"] is None
    assert Study.from_parameters(networks=["lenet"], defences=["label_smoothing"],
                                 null_control=False).defence_arms() == ["label_smoothing"]
    with pytest.raises(ValueError, match="null_control must be True or False, received 'yes'"):
        Study.from_parameters(networks=["lenet"], null_control="yes")


def test_check_columns_names_the_table_and_its_missing_columns():
    summary = pd.DataFrame({tables.NETWORK: ["lenet"], tables.ATTACK: ["pixel"], tables.TH: [1]})
    message = (f"attack_summary must have columns {list(tables.ATTACK_SUMMARY)}, received "
               f"['network', 'attack', 'th']: missing ['images', 'attack_accuracy', 'correct_images', "
               f"'attack_accuracy_on_correct'].")
    with pytest.raises(ValueError) as raised:
        analysis.attack_accuracy_intervals(summary)
    assert str(raised.value) == message
    with pytest.raises(ValueError, match="^outcomes must be a pandas DataFrame, received dict.$"):
        tables.check_columns({}, tables.OUTCOME_VALUES, "outcomes")
    tables.check_columns(summary, [tables.NETWORK, tables.TH], "summary")
