"""Tests of the Square Attack and Sparse-RS on a tiny Fashion-MNIST conv net trained once."""


import numpy as np
import pandas as pd
import pytest

from rzs import attacks, models
from rzs.attacks.sparse_rs import sparse_rs, sparse_rs_alpha_schedule
from rzs.attacks.square import square_attack, square_p_schedule

STOP_REASONS = {"success", "budget", "clean_misclassified"}


@pytest.fixture(scope="module")
def correct_images(fashion_subset, small_model):
    """The first 30 test images the small model classifies correctly, with their labels."""
    predictions = np.argmax(small_model.predict_on_batch(fashion_subset["x_test"].astype("float32")), axis=1)
    chosen = np.flatnonzero(predictions == fashion_subset["y_test"])[:30]
    return fashion_subset["x_test"][chosen], fashion_subset["y_test"][chosen]


@pytest.fixture(scope="module")
def results(small_model, fashion_subset):
    """Both attacks on the first 12 test images (some misclassified), with images."""
    images, labels = fashion_subset["x_test"][:12], fashion_subset["y_test"][:12]
    options = {"queries": 150, "progress": False, "return_images": True}
    return {
        "square": square_attack(small_model, images, labels, [4, 24], **options),
        "sparse_rs": sparse_rs(small_model, images, labels, [1, 6], **options),
        "images": images,
    }


def check_rows(table, adversarials, images, queries):
    """Checks shared by both attacks: integer images, honest success, stop reasons."""
    assert adversarials.dtype == np.uint8
    originals = images[table["image"].to_numpy()]
    assert set(table["stop_reason"]) <= STOP_REASONS
    # Success is decided once from the search's own scores and agrees with re-scoring.
    assert (table["success"] == table["rescored_success"]).all()
    assert (table["success"] == (table["adversarial_label"] != table["true_label"])).all()
    assert (table["success"] == table["stop_reason"].isin(["success", "clean_misclassified"])).all()
    searched = table["stop_reason"] != "clean_misclassified"
    assert (table.loc[table["stop_reason"] == "budget", "queries"] == queries).all()
    assert table.loc[searched, "queries"].between(1, queries).all()
    assert (table.loc[~searched, "queries"] == 0).all()
    assert (adversarials[~searched.to_numpy()] == originals[~searched.to_numpy()]).all()
    return originals, searched


def test_square_attack_stays_within_th_on_integer_pixels(results):
    table, adversarials = results["square"]
    originals, _ = check_rows(table, adversarials, results["images"], queries=150)
    difference = adversarials.astype("int64") - originals.astype("int64")
    largest = np.abs(difference).reshape(len(table), -1).max(axis=1)
    assert (largest <= table["th"].to_numpy()).all()
    assert (table["linf"] <= table["th"]).all()
    assert table["success"].any() and not table["success"].all()


def test_sparse_rs_changes_exactly_k_pixels_to_cube_corners(results):
    table, adversarials = results["sparse_rs"]
    originals, searched = check_rows(table, adversarials, results["images"], queries=150)
    changed = np.any(adversarials != originals, axis=-1).reshape(len(table), -1)
    assert (changed.sum(axis=1)[searched] == table.loc[searched, "th"]).all()
    assert (table.loc[searched, "l0"] == table.loc[searched, "th"]).all()
    assert np.isin(adversarials[np.any(adversarials != originals, axis=-1)], [0, 255]).all()
    assert table["success"].any() and not table["success"].all()


@pytest.mark.parametrize("attack", [square_attack, sparse_rs])
def test_same_seed_same_table_whatever_the_batch(small_model, fashion_subset, attack):
    images, labels = fashion_subset["x_test"][:5], fashion_subset["y_test"][:5]
    options = {"queries": 25, "progress": False}
    first = attack(small_model, images, labels, [2, 8], seed=3, **options)
    # One image at a time: each search draws from its own (seed, image, th) generator.
    again = attack(small_model, images, labels, [2, 8], seed=3, max_batch_size=1, **options)
    pd.testing.assert_frame_equal(first, again)
    other_seed = attack(small_model, images, labels, [2, 8], seed=4, **options)
    assert not first.equals(other_seed)


@pytest.mark.parametrize("attack", [square_attack, sparse_rs])
def test_targeted_success_means_the_target_class(small_model, correct_images, attack):
    images, labels = correct_images[0][:6], correct_images[1][:6]
    targets = (labels + 1) % 10
    table = attack(small_model, images, labels, 40, queries=60, target_labels=targets, progress=False)
    assert (table["success"] == (table["adversarial_label"] == targets)).all()
    assert (table["success"] == table["rescored_success"]).all()


@pytest.mark.parametrize("attack", [square_attack, sparse_rs])
def test_probability_fitness_searches_too(small_model, correct_images, attack):
    images, labels = correct_images[0][:6], correct_images[1][:6]
    options = {"queries": 60, "progress": False}
    margin = attack(small_model, images, labels, 40, **options)
    probability = attack(small_model, images, labels, 40, fitness="probability", **options)
    assert (probability["success"] == probability["rescored_success"]).all()
    assert (probability["success"] == (probability["adversarial_label"] != labels)).all()
    # The same draws ranked by another fitness keep other candidates.
    assert not probability.equals(margin)


def test_square_attack_beats_cma_es_threshold_attack_at_equal_queries(small_model, correct_images):
    images, labels = correct_images
    square = square_attack(small_model, images, labels, 12, queries=300, progress=False)
    cma_es = attacks.threshold_attack(
        small_model, images, labels, 12, population=20, generations=15, progress=False
    )
    assert cma_es["queries"].max() == square["queries"].max() == 300
    assert square["success"].sum() > cma_es["success"].sum()


def test_sparse_rs_beats_cma_es_pixel_attack_at_equal_queries(small_model, correct_images):
    images, labels = correct_images[0][:20], correct_images[1][:20]
    sparse = sparse_rs(small_model, images, labels, 4, queries=300, progress=False)
    cma_es = attacks.pixel_attack(
        small_model, images, labels, 4, population=20, generations=15, progress=False
    )
    assert cma_es["queries"].max() == sparse["queries"].max() == 300
    assert sparse["success"].sum() > cma_es["success"].sum()


def test_schedules_follow_the_papers():
    # Square Attack: p halves at fixed fractions of the budget, down to p_init / 512.
    iterations = [0, 10, 11, 40, 100, 300, 800, 1500, 3000, 5000, 7000, 9000, 9999]
    p_values = [square_p_schedule(0.05, iteration, 10000) for iteration in iterations]
    expected = [1, 1, 2, 2, 4, 8, 16, 32, 64, 128, 256, 512, 512]
    assert p_values == pytest.approx([0.05 / divisor for divisor in expected])
    # Rescaled to the budget: the same fraction of a 100-query budget gives the same p.
    assert square_p_schedule(0.05, 30, 100) == square_p_schedule(0.05, 3000, 10000)
    # Sparse-RS (L0): alpha_init at the start, then / 2, 4, 5, 6, 8, 10, 12, 15, 20.
    iterations = [0, 1, 51, 201, 501, 1001, 2001, 4001, 6001, 8001, 9999]
    alphas = [sparse_rs_alpha_schedule(0.3, iteration, 10000) for iteration in iterations]
    divisors = [1, 2, 4, 5, 6, 8, 10, 12, 15, 20, 20]
    assert alphas == pytest.approx([0.3 / divisor for divisor in divisors])


@pytest.mark.parametrize(
    "attack, options, message",
    [
        (square_attack, {"th": 0}, "th"),
        (square_attack, {"th": 256}, "th"),
        (square_attack, {"th": 4, "p_init": 1.5}, "p_init"),
        (square_attack, {"th": 4, "queries": 0}, "queries"),
        (square_attack, {"th": 4, "fitness": "loss"}, "fitness"),
        (sparse_rs, {"th": 784}, "th"),
        (sparse_rs, {"th": 2, "alpha_init": 0}, "alpha_init"),
        (sparse_rs, {"th": 2, "seed": -1}, "seed"),
    ],
)
def test_bad_arguments_raise_value_error_naming_them(small_model, fashion_subset, attack, options, message):
    with pytest.raises(ValueError, match=message):
        attack(small_model, fashion_subset["x_test"][:2], fashion_subset["y_test"][:2], progress=False, **options)


@pytest.mark.parametrize("attack, name", [(square_attack, "p_init"), (sparse_rs, "alpha_init")])
def test_the_initial_fraction_must_be_in_zero_to_one(attack, name):
    model = models.build_model("lenet", (28, 28, 1), 3, width=0.25)
    images, labels = np.zeros((1, 28, 28, 1), np.uint8), np.zeros(1, np.int64)
    for value in (0, 1.5):
        with pytest.raises(ValueError, match=rf"`{name}`"):
            attack(model, images, labels, 3, **{name: value})
