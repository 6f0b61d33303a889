"""Tests of rzs.attacks on a tiny Fashion-MNIST conv net trained once per session."""

import dataclasses

import cma
import keras
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from keras import layers

from rzs import attacks
from rzs.attacks.search import CMAESSearch, DifferentialEvolutionSearch, transform_into_box

# Small search budgets keep the whole file well under two minutes on 2 cores.
SMALL_SEARCH = {"population": 20, "generations": 5, "progress": False}


@pytest.fixture(scope="module")
def correct_images(fashion_subset, small_model):
    """The first 10 test images the small model classifies correctly, with their labels."""
    predictions = np.argmax(small_model.predict_on_batch(fashion_subset["x_test"].astype("float32")), axis=1)
    chosen = np.flatnonzero(predictions == fashion_subset["y_test"])[:10]
    return fashion_subset["x_test"][chosen], fashion_subset["y_test"][chosen]


@pytest.fixture(scope="module")
def th_comparison(small_model, correct_images):
    """Pixel (DE) and threshold (CMA-ES) attacks at a small and a large th.

    th=10 succeeds on only 0-50% of these correctly classified images at any
    affordable budget (this tiny model is smooth: even white-box PGD at 10/255
    breaks fewer than half), so the large th is where most of them break.
    """
    images, labels = correct_images
    search = {"population": 100, "generations": 20, "progress": False, "return_images": True}
    return {
        "pixel": attacks.pixel_attack(small_model, images, labels, [1, 40], strategy="de", **search),
        "threshold": attacks.threshold_attack(small_model, images, labels, [1, 48], **search),
    }


def changed_pixels(original, adversarial):
    return np.count_nonzero(np.any(original != adversarial, axis=-1))


@pytest.mark.parametrize("strategy", ["cmaes", "de"])
def test_pixel_attack_changes_at_most_th_integer_pixels(small_model, fashion_subset, strategy):
    images, labels = fashion_subset["x_test"][:4], fashion_subset["y_test"][:4]
    table, adversarials = attacks.pixel_attack(
        small_model, images, labels, [1, 3], strategy=strategy, return_images=True, **SMALL_SEARCH
    )
    assert list(table.columns) == attacks.COLUMNS
    expected_rows = [(image, th) for image in range(4) for th in (1.0, 3.0)]
    assert list(zip(table["image"], table["th"])) == expected_rows
    assert adversarials.dtype == np.uint8 and adversarials.shape == (8, 28, 28, 1)
    for row, adversarial in zip(table.itertuples(), adversarials):
        assert changed_pixels(images[row.image], adversarial) == row.l0 <= row.th


@pytest.mark.parametrize("strategy", ["cmaes", "de"])
def test_threshold_attack_stays_within_th(small_model, fashion_subset, strategy):
    images, labels = fashion_subset["x_test"][:4], fashion_subset["y_test"][:4]
    table, adversarials = attacks.threshold_attack(
        small_model, images, labels, [1, 5], strategy=strategy, return_images=True, **SMALL_SEARCH
    )
    for row, adversarial in zip(table.itertuples(), adversarials):
        change = np.abs(adversarial.astype(int) - images[row.image].astype(int))
        assert change.max() == row.linf <= row.th
    # The rounded changes really move values (th=1 rounds most of a
    # sigma-1/4 step to 0), not just a handful of them.
    assert (table["l0"] > 50).all()


def test_larger_th_succeeds_clearly_more_often(th_comparison):
    for table, _ in th_comparison.values():
        rates = table.groupby("th")["success"].mean()
        assert rates.iloc[1] >= 0.6
        assert rates.iloc[1] >= rates.iloc[0] + 0.4


def test_successful_rows_are_misclassified_when_evaluated_again(
    small_model, correct_images, th_comparison
):
    _, labels = correct_images
    for table, adversarials in th_comparison.values():
        predictions = np.argmax(small_model.predict_on_batch(adversarials.astype("float32")), axis=1)
        np.testing.assert_array_equal(predictions, table["adversarial_label"])
        np.testing.assert_array_equal(table["success"], predictions != labels[table["image"]])
        assert (table.loc[table["success"], "queries"] > 0).all()


def test_targeted_success_means_the_target_class(small_model, correct_images):
    images, labels = correct_images
    targets = (labels + 1) % 10
    table, adversarials = attacks.pixel_attack(
        small_model, images[:4], labels[:4], 40, strategy="de", target_labels=targets[:4],
        return_images=True, population=50, generations=10, progress=False,
    )
    predictions = np.argmax(small_model.predict_on_batch(adversarials.astype("float32")), axis=1)
    np.testing.assert_array_equal(table["target_label"].to_numpy(dtype=int), targets[:4])
    np.testing.assert_array_equal(table["success"], predictions == targets[:4])


def test_same_seed_gives_the_same_table(small_model, fashion_subset):
    images, labels = fashion_subset["x_test"][:3], fashion_subset["y_test"][:3]
    first = attacks.pixel_attack(small_model, images, labels, 2, seed=7, **SMALL_SEARCH)
    second = attacks.pixel_attack(small_model, images, labels, 2, seed=7, **SMALL_SEARCH)
    other = attacks.pixel_attack(small_model, images, labels, 2, seed=8, **SMALL_SEARCH)
    pd.testing.assert_frame_equal(first, second)
    assert not first.equals(other)


def test_binary_search_follows_the_authors_bisection(small_model, correct_images):
    images, labels = correct_images
    table = attacks.threshold_attack(
        small_model, images[:2], labels[:2], None, strategy="de", **SMALL_SEARCH
    )
    for _, rows in table.groupby("image"):
        # Replaying the bisection with the recorded outcomes must visit exactly
        # the th values of the image's rows.
        outcome = dict(zip(rows["th"], rows["success"]))
        visited = []
        low, high = 1, 127
        while low <= high:
            th = (low + high) // 2
            visited.append(float(th))
            high, low = (th - 1, low) if outcome[th] else (high, th + 1)
        assert sorted(visited) == list(rows["th"])
    minimal = attacks.minimal_threshold(table)
    expected = table[table["success"]].groupby("image")["th"].min()
    pd.testing.assert_series_equal(
        minimal.set_index("image")["minimal_th"].dropna(), expected, check_names=False
    )


def test_pgd_lowers_accuracy_and_respects_eps(small_model, fashion_subset):
    images, labels = fashion_subset["x_test"][:40], fashion_subset["y_test"][:40]
    for random_start in (False, True):
        table, adversarials = attacks.pgd(
            small_model, images, labels, random_start=random_start, return_images=True
        )
        accuracy_before = (table["original_label"] == labels).mean()
        accuracy_after = (table["adversarial_label"] == labels).mean()
        assert accuracy_after < accuracy_before - 0.1
        assert table["linf"].max() <= 8 + 1e-3 and (table["th"] == 8).all()
        assert np.abs(adversarials - images).max() <= 8 + 1e-3
        assert adversarials.min() >= 0 and adversarials.max() <= 255


@pytest.mark.parametrize(
    "attack, options",
    [
        (attacks.fgsm, {}),
        (attacks.bim, {"iterations": 5}),
        (attacks.carlini_wagner_l2, {"binary_search_steps": 2, "max_iterations": 10}),
        (attacks.deepfool, {"max_iterations": 20}),
    ],
)
def test_gradient_attacks_return_consistent_tables(small_model, fashion_subset, attack, options):
    images, labels = fashion_subset["x_test"][:8], fashion_subset["y_test"][:8]
    table, adversarials = attack(small_model, images, labels, return_images=True, **options)
    assert list(table.columns) == attacks.COLUMNS
    assert adversarials.min() >= 0 and adversarials.max() <= 255
    predictions = np.argmax(small_model.predict_on_batch(adversarials), axis=1)
    np.testing.assert_array_equal(table["success"], predictions != labels)


def test_deepfool_fools_most_images(small_model, correct_images):
    images, labels = correct_images
    assert attacks.deepfool(small_model, images, labels)["success"].mean() >= 0.8


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda m, x, y: attacks.pixel_attack(m, x, y, 0), "th=0"),
        (lambda m, x, y: attacks.pixel_attack(m, x, y, 785), "th=785"),
        (lambda m, x, y: attacks.threshold_attack(m, x, y, 256), "th=256"),
        (lambda m, x, y: attacks.threshold_attack(m, x, y, 2.5), "th=2.5"),
        (lambda m, x, y: attacks.threshold_attack(m, x, y, [1, -3]), r"th=\[1, -3\]"),
        (lambda m, x, y: attacks.pixel_attack(m, x, y, 1, strategy="ga"), "strategy='ga'"),
        (lambda m, x, y: attacks.pixel_attack(m, x, y, 1, population=2), "population=2"),
        (lambda m, x, y: attacks.pixel_attack(m, x, y, 1, generations=0), "generations=0"),
        (lambda m, x, y: attacks.pixel_attack(m, x + 300.0, y, 1), "images with min=300"),
        (lambda m, x, y: attacks.pixel_attack(m, x - 1.0, y, 1), "min=-1"),
        (lambda m, x, y: attacks.pixel_attack(m, np.minimum(x + 0.5, 255), y, 1), "non-integer"),
        (lambda m, x, y: attacks.pixel_attack(m, x[..., 0], y, 1), r"images.shape=\(2, 28, 28\)"),
        (
            lambda m, x, y: attacks.pixel_attack(m, x[:, :20], y, 1),
            r"images.shape=\(2, 20, 28, 1\)",
        ),
        (lambda m, x, y: attacks.pixel_attack(m, x, y[:1], 1), r"labels.shape=\(1,\)"),
        (lambda m, x, y: attacks.pixel_attack(m, x, y + 10, 1), "labels with min=1[0-9]"),
        (lambda m, x, y: attacks.pixel_attack(m, x, y, 1, target_labels=y), "target_labels"),
        (lambda m, x, y: attacks.pgd(m, x, y, eps=8), "eps=8"),
        (lambda m, x, y: attacks.pgd(m, x, y, iterations=0), "iterations=0"),
        (lambda m, x, y: attacks.deepfool(m, x / 1000.0 - 1, y), "min=-1"),
    ],
)
def test_bad_arguments_raise_value_error_naming_them(small_model, fashion_subset, call, message):
    images = fashion_subset["x_test"][:2].astype("float32")
    labels = fashion_subset["y_test"][:2].astype("int64")
    with pytest.raises(ValueError, match=message):
        call(small_model, images, labels)


def test_summarize_reports_both_attack_accuracies():
    table = pd.DataFrame(
        {
            "attack": "pixel",
            "strategy": "de",
            "image": [0, 1, 2, 3, 0, 1, 2, 3],
            "th": [1.0] * 4 + [3.0] * 4,
            "true_label": [0, 1, 2, 3] * 2,
            "original_label": [0, 1, 2, 9] * 2,
            "success": [False, True, False, True, True, True, False, True],
            "rescored_success": [False, True, False, True, True, False, False, True],
            "queries": [10, 5, 10, 0, 4, 2, 10, 0],
            "stop_reason": ["budget", "success", "converged:tolfun", "clean_misclassified"]
            + ["success", "success", "budget", "clean_misclassified"],
        }
    )
    summary = attacks.summarize(table).set_index("th")
    assert summary.loc[1.0, "attack_accuracy"] == 0.5
    assert summary.loc[1.0, "attack_accuracy_on_correct"] == pytest.approx(1 / 3)
    assert summary.loc[3.0, "attack_accuracy_on_correct"] == pytest.approx(2 / 3)
    assert (summary["correct_images"] == 3).all() and (summary["images"] == 4).all()
    assert summary.loc[1.0, "failed_stopped_early"] == 0.5
    assert summary.loc[3.0, "failed_stopped_early"] == 0.0
    assert list(summary["rescoring_disagreements"]) == [0, 1]


@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.floats(-1e4, 1e4), min_size=1, max_size=20),
    st.floats(-100, 100),
    st.floats(0.5, 300),
)
def test_transform_into_box_matches_cma_and_stays_inside(values, lower, width):
    values = np.array(values)
    lower_edge = np.full(len(values), lower)
    upper_edge = lower_edge + width
    transformed = transform_into_box(values[None], lower_edge, upper_edge)[0]
    reference = cma.transformations.BoxConstraintsLinQuadTransformation(
        list(zip(lower_edge, upper_edge))
    )
    tolerance = 1e-9 * (1 + np.abs(values).max())
    np.testing.assert_allclose(transformed, reference(values), atol=tolerance)
    assert np.all(transformed >= lower_edge - tolerance)
    assert np.all(transformed <= upper_edge + tolerance)


@pytest.mark.parametrize("search_class", [CMAESSearch, DifferentialEvolutionSearch])
def test_searches_stay_in_the_box_and_minimise(search_class):
    lower, upper = np.full(4, -2.0), np.full(4, 3.0)
    rng = np.random.default_rng(0)
    if search_class is CMAESSearch:
        search = CMAESSearch(np.full(4, 2.0), 1.0, lower, upper, 30, rng)
    else:
        search = DifferentialEvolutionSearch(lower, upper, 30, rng)
    best = []
    for _ in range(40):
        candidates = search.ask()
        assert np.all(candidates >= lower) and np.all(candidates <= upper)
        fitness = np.sum((candidates - 1.0) ** 2, axis=1)
        best.append(fitness.min())
        search.tell(fitness)
    assert min(best) < 1e-2 < best[0]


def saturated_linear_model(bias):
    """Two-class linear model on 4x4 grey images, `z_1 - z_0 = 0.1 * sum(x) - bias`.

    With a large `bias` the all-black image is class 0 with probability exactly
    1.0 in float32 (1 - p_0 is below float32's spacing near 1 while
    `z_0 - z_1 > 17`), and it ends in a float32 softmax layer as the rzs
    networks do, so its logits are exposed.
    """
    inputs = keras.Input((4, 4, 1))
    flat = layers.Flatten()(inputs)
    dense = layers.Dense(2)
    logits = dense(flat)
    outputs = layers.Activation("softmax", dtype="float32")(logits)
    dense.set_weights([np.tile([[0.0, 0.1]], (16, 1)), np.array([bias, 0.0])])
    return keras.Model(inputs, outputs)


def black_images(count):
    return np.zeros((count, 4, 4, 1), dtype="uint8"), np.zeros(count, dtype="int64")


@pytest.mark.parametrize("fitness", ["margin", "probability"])
def test_confident_images_are_never_failed_before_their_budget(fitness):
    # Success needs sum(x) > 1500, out of reach at th=60 (at most 960).
    model = saturated_linear_model(bias=150.0)
    images, labels = black_images(3)
    assert (model.predict_on_batch(images.astype("float32"))[:, 0] == 1.0).all()
    table = attacks.threshold_attack(
        model, images, labels, [60], population=10, generations=12, fitness=fitness, progress=False
    )
    assert not table["success"].any()
    assert (table["stop_reason"] == "budget").all()
    assert (table["queries"] == 10 * 12).all() and (table["generations"] == 12).all()
    assert (attacks.summarize(table)["failed_stopped_early"] == 0).all()


def test_convergence_stop_ends_flat_searches_early_only_when_asked():
    model = saturated_linear_model(bias=150.0)
    images, labels = black_images(3)
    table = attacks.threshold_attack(
        model, images, labels, [60], population=10, generations=12,
        fitness="probability", stop_on_convergence=True, progress=False,
    )
    # A flat fitness trips cma's tolerances after a generation or two.
    assert table["stop_reason"].str.startswith("converged:").all()
    assert (table["queries"] < 10 * 12).all()
    assert (attacks.summarize(table)["failed_stopped_early"] == 1).all()


def test_margin_fitness_succeeds_where_the_probability_fitness_stalls():
    # Success needs sum(x) > 1500 of at most 1600 at th=100: every value near
    # its top. The probability of class 0 is exactly 1.0 below sum(x) = 1330,
    # so the probability fitness gives the search nothing to follow.
    model = saturated_linear_model(bias=150.0)
    images, labels = black_images(2)
    search = {"population": 20, "generations": 40, "progress": False}
    probability = attacks.threshold_attack(model, images, labels, [100], fitness="probability", **search)
    margin = attacks.threshold_attack(model, images, labels, [100], fitness="margin", **search)
    assert not probability["success"].any()
    assert (probability["true_probability_after"] == 1.0).all()
    assert margin["success"].all() and (margin["stop_reason"] == "success").all()
    assert (margin["success"] == margin["rescored_success"]).all()


def test_attacks_of_a_bfloat16_model_run_in_float32(tmp_path):
    from rzs import inference
    from rzs.models import registry

    keras.utils.set_random_seed(0)
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        trained = registry.build_model("lenet", (28, 28, 1), 10, width=0.25)
    finally:
        keras.config.set_dtype_policy("float32")
    trained.save(tmp_path / "model.keras")
    images = np.random.default_rng(0).integers(0, 256, (4, 28, 28, 1)).astype("uint8")
    labels = np.argmax(trained.predict_on_batch(images.astype("float32")), axis=1)
    search = {"population": 10, "generations": 3, "seed": 1, "progress": False}
    tables = [
        attacks.pixel_attack(inference.load_float32_model(tmp_path / "model.keras"), images, labels, [1], **search)
        for _ in range(2)
    ]
    pd.testing.assert_frame_equal(tables[0], tables[1])
    # The bfloat16 model handed over as it is: the attack copies it into float32.
    pd.testing.assert_frame_equal(attacks.pixel_attack(trained, images, labels, [1], **search), tables[0])
    bfloat16_probabilities = np.asarray(trained.predict_on_batch(images.astype("float32")))
    rows = np.arange(len(labels))
    assert not np.allclose(
        tables[0]["true_probability_before"], bfloat16_probabilities[rows, labels], rtol=0, atol=1e-5
    )


def test_pgd_random_start_differs_from_bim_and_repeats_with_its_seed(small_model, fashion_subset):
    images, labels = fashion_subset["x_test"][:8], fashion_subset["y_test"][:8]
    options = {"eps": 4 / 255, "iterations": 3}
    bim_table = attacks.bim(small_model, images, labels, **options)
    first = attacks.pgd(small_model, images, labels, random_start=True, seed=5, **options)
    second = attacks.pgd(small_model, images, labels, random_start=True, seed=5, **options)
    pd.testing.assert_frame_equal(first, second)
    assert not np.allclose(first["l2"], bim_table["l2"])
    pd.testing.assert_frame_equal(
        attacks.pgd(small_model, images, labels, **options).drop(columns="attack"),
        bim_table.drop(columns="attack"),
    )


@pytest.mark.parametrize("loss", ["cross_entropy", "margin"])
def test_gradient_losses_from_logits_lower_accuracy(small_model, fashion_subset, loss):
    images, labels = fashion_subset["x_test"][:40], fashion_subset["y_test"][:40]
    table = attacks.bim(small_model, images, labels, iterations=5, loss=loss)
    assert (table["adversarial_label"] == labels).mean() < (table["original_label"] == labels).mean() - 0.1
    assert (table["stop_reason"] == "budget").all()


def attack_spec(attack, **options):
    from rzs import robustness, training

    model = training.TrainingSpec(network="lenet", dataset="fashion_mnist", per_class_train=20)
    return robustness.AttackSpec(model=dataclasses.asdict(model), attack=attack, **options)


def test_attack_cache_keys_hold_the_options_that_change_the_result():
    pixel_key = attack_spec("pixel").config()
    assert pixel_key["fitness"] == "margin" and pixel_key["stop_on_convergence"] is False
    assert pixel_key["inference_precision"] == "float32"
    assert "random_start" not in pixel_key and "gradient_loss" not in pixel_key
    assert attack_spec("pixel", fitness="probability").config() != pixel_key
    pgd_key = attack_spec("pgd").config()
    assert pgd_key["random_start"] is False and pgd_key["gradient_loss"] == "cross_entropy"
    assert "fitness" not in pgd_key and "population" not in pgd_key
    assert attack_spec("pgd", random_start=True).config() != pgd_key
    assert "random_start" not in attack_spec("bim").config()
    assert "gradient_loss" not in attack_spec("deepfool").config()


@pytest.mark.parametrize(
    "options, message",
    [
        ({"fitness": "loss"}, "fitness must be one of"),
        ({"gradient_loss": "hinge"}, "gradient_loss must be one of"),
        ({"random_start": 1}, "random_start must be True or False, received 1"),
        ({"stop_on_convergence": "no"}, "stop_on_convergence must be True or False"),
    ],
)
def test_attack_spec_rejects_unknown_options(options, message):
    with pytest.raises(ValueError, match=message):
        attack_spec("pixel", **options)


def test_run_attack_passes_pgd_random_start_and_seed(small_model, fashion_subset):
    from rzs import robustness

    images, labels = fashion_subset["x_test"][:6], fashion_subset["y_test"][:6]
    bim_like = robustness.run_attack(attack_spec("pgd", thresholds=(4,)), small_model, images, labels)
    random_start = attack_spec("pgd", thresholds=(4,), random_start=True, seed=3)
    first = robustness.run_attack(random_start, small_model, images, labels)
    pd.testing.assert_frame_equal(first, robustness.run_attack(random_start, small_model, images, labels))
    assert not np.allclose(first["l2"], bim_like["l2"])
