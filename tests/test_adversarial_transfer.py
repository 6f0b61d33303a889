"""DBM and AM of adversarial examples: stored adversarial images, the cached soft labels of a tiny
model's leave-one-out models, and the estimates built on them."""

import dataclasses

import numpy as np
import pandas as pd
import pytest
from scipy import special

from rzs import adversarial_transfer, inference, models, pipeline, plots, robustness, zeroshot
from rzs.attacks import results
from rzs.store import RunStore
from rzs.training import TrainingSpec

CLASSES, TEST_PER_CLASS = 3, 3


@pytest.fixture(scope="module")
def tiny_store(tmp_path_factory):
    """A store holding an untrained LeNet (full and each leave-one-out) on a 3-class npz dataset,
    and a square (uint8 images) and an FGSM (float32 images) attack on its full model."""
    directory = tmp_path_factory.mktemp("adversarial")
    rng = np.random.default_rng(0)
    path = directory / "tiny.npz"
    np.savez(
        path,
        x_train=rng.integers(0, 256, (2 * CLASSES, 28, 28), dtype=np.uint8),
        y_train=np.arange(2 * CLASSES) % CLASSES,
        x_test=rng.integers(0, 256, (TEST_PER_CLASS * CLASSES, 28, 28), dtype=np.uint8),
        y_test=np.arange(TEST_PER_CLASS * CLASSES) % CLASSES,
    )
    store = RunStore(directory / "results")
    full_spec = TrainingSpec("lenet", f"npz:{path}", width=0.25)
    for spec, outputs in [(full_spec, CLASSES)] + [(full_spec.with_excluded(c), CLASSES - 1) for c in range(CLASSES)]:
        model = models.build_model("lenet", (28, 28, 1), outputs, width=0.25)
        store.save(spec.kind, spec.config(), {}, {}, lambda folder, model=model: model.save(folder / zeroshot.MODEL_FILE))
    attack_specs = [
        robustness.AttackSpec(model=dataclasses.asdict(full_spec), attack="square", thresholds=(8, 64), images=6,
                              queries=5),
        robustness.AttackSpec(model=dataclasses.asdict(full_spec), attack="fgsm", thresholds=(4,), images=6),
    ]
    for attack_spec in attack_specs:
        robustness.get_or_attack(attack_spec, store)
    return store, full_spec, attack_specs


def test_attack_results_store_one_adversarial_image_per_table_row(tiny_store):
    store, full_spec, attack_specs = tiny_store
    square, fgsm = (store.load(spec.kind, spec.config()) for spec in attack_specs)
    with np.load(square.path(robustness.ADVERSARIALS_FILE), allow_pickle=False) as arrays:
        images = arrays["images"]
    assert images.dtype == np.uint8 and images.shape == (12, 28, 28, 1)
    np.testing.assert_array_equal(adversarial_transfer.load_adversarials(square), images)
    assert adversarial_transfer.load_adversarials(fgsm).dtype == np.float32
    # Row by row, the table's perturbation sizes are those of the stored images: same order.
    table = pd.read_csv(square.path(robustness.TABLE_FILE))
    originals = full_spec.load_data()[0].x_test[table["image"].to_numpy()]
    l0, _, linf = results.perturbation_sizes(originals, images)
    np.testing.assert_array_equal(l0, table["l0"])
    np.testing.assert_allclose(linf, table["linf"])


def test_a_result_without_images_asks_for_a_recompute(tmp_path):
    older = RunStore(tmp_path).save("attack", {"attack": "square"}, {}, {})
    with pytest.raises(LookupError, match="holds no adversarial images.*Delete that directory"):
        adversarial_transfer.load_adversarials(older)


def test_the_spec_stores_each_leave_one_out_models_soft_labels_of_its_class(tiny_store):
    store, full_spec, attack_specs = tiny_store
    spec = adversarial_transfer.AdversarialSoftLabelSpec(
        attacks=tuple(dataclasses.asdict(attack_spec) for attack_spec in attack_specs), excluded_classes=(0, 2))
    result = adversarial_transfer.get_or_compute(spec, store)
    fields = adversarial_transfer.attack_arrays(result)
    square = fields["square"]
    assert set(square["true_label"]) == {0, 2} and len(square["rows"]) == 8  # 4 of 6 images, 2 th
    assert square["adversarial_zero_shot"].shape == (8, CLASSES - 1) and square["clean_full"].shape == (8, CLASSES)
    assert fields["fgsm"]["th"].tolist() == [4.0] * 4

    attack_result = store.load(attack_specs[0].kind, attack_specs[0].config())
    adversarials = adversarial_transfer.load_adversarials(attack_result)[square["rows"]]
    image_indices = pd.read_csv(attack_result.path(robustness.TABLE_FILE))["image"].to_numpy()[square["rows"]]
    clean = full_spec.load_data()[0].x_test[image_indices]
    full = scores_model(store, full_spec)
    np.testing.assert_allclose(square["clean_full"], softmax_of(full, clean), atol=1e-6)
    np.testing.assert_allclose(square["adversarial_full"], softmax_of(full, adversarials), atol=1e-6)
    for excluded in (0, 2):
        zero_shot = scores_model(store, full_spec.with_excluded(excluded))
        of_class = square["true_label"] == excluded
        np.testing.assert_allclose(square["adversarial_zero_shot"][of_class],
                                   softmax_of(zero_shot, adversarials[of_class]), atol=1e-6)
        np.testing.assert_allclose(square["clean_zero_shot"][of_class], softmax_of(zero_shot, clean[of_class]),
                                   atol=1e-6)
    assert adversarial_transfer.get_or_compute(spec, store).directory == result.directory  # cached

    table = adversarial_transfer.adversarial_estimates({("lenet", 0): fields}, resamples=50)
    assert set(table["attack"]) == {"square", "fgsm"} and set(table["metric"]) == {"DBM", "AM"}
    assert (table["classes"] <= 2).all() and (table["seeds"] == 1).all()


def scores_model(store, spec):
    path = store.load(spec.kind, spec.config()).path(zeroshot.MODEL_FILE)
    return inference.log_scores_model(inference.load_float32_model(path))


def softmax_of(model, images):
    return special.softmax(pipeline.predict_probabilities(model, images).astype(np.float64), axis=1)


def test_identical_images_give_zero_difference_with_a_zero_interval():
    rng = np.random.default_rng(1)
    count = 12
    true_label = np.arange(count) % CLASSES
    zero_shot = special.softmax(rng.normal(size=(count, CLASSES - 1)), axis=1).astype(np.float32)
    full = special.softmax(rng.normal(size=(count, CLASSES)), axis=1).astype(np.float32)
    fields = {
        "rows": np.arange(count), "th": np.ones(count), "true_label": true_label,
        "correct": np.ones(count, bool), "success": np.arange(count) < 6,
        "clean_zero_shot": zero_shot, "clean_full": full, "adversarial_zero_shot": zero_shot.copy(),
        "adversarial_full": full.copy(),
    }
    table = adversarial_transfer.adversarial_estimates({("net", 0): {"pixel": fields}}, resamples=200)
    assert len(table) == 4  # DBM and AM, all correct images and the successful ones
    for quantity in ("difference", "difference_ci_low", "difference_ci_high"):
        np.testing.assert_array_equal(table[quantity], 0.0)
    assert (table["clean"] == table["adversarial"]).all() and (table["clean_ci_low"] <= table["clean"]).all()
    assert table.loc[~table["successful_only"], "images"].tolist() == [12, 12]
    assert table.loc[table["successful_only"], "images"].tolist() == [6, 6]


def test_the_spec_refuses_attacks_on_different_models():
    first = TrainingSpec("lenet", "fashion_mnist")
    second = dataclasses.replace(first, seed=1)
    attacks = [dataclasses.asdict(robustness.AttackSpec(model=dataclasses.asdict(spec), attack="pixel"))
               for spec in (first, second)]
    with pytest.raises(ValueError, match="attacks must all attack the same full model"):
        adversarial_transfer.AdversarialSoftLabelSpec(attacks=tuple(attacks), excluded_classes=(0,))
    with pytest.raises(ValueError, match=r"excluded_classes must be a non-empty list .* received \[\]"):
        adversarial_transfer.AdversarialSoftLabelSpec(attacks=tuple(attacks[:1]), excluded_classes=())


def test_the_figure_has_a_panel_per_metric_and_a_legend_entry_per_attack_and_th():
    rows = [
        {"network": network, "attack": attack, "th": th, "successful_only": False, "metric": metric,
         "difference": 0.1, "difference_ci_low": 0.0, "difference_ci_high": 0.2}
        for network in ("lenet", "vgg16") for attack, th in (("pixel", 3.0), ("square", 10.0))
        for metric in ("DBM", "AM")
    ]
    figure = plots.plot_adversarial_transferability(pd.DataFrame(rows))
    assert [axis.get_xlabel() for axis in figure.axes] == ["DBM: adversarial \N{MINUS SIGN} clean",
                                                           "AM: adversarial \N{MINUS SIGN} clean"]
    assert [text.get_text() for text in figure.legends[0].get_texts()] == ["pixel th = 3", "square th = 10"]
    with pytest.raises(ValueError, match="rows with successful_only=True; received .* 0 such rows"):
        plots.plot_adversarial_transferability(pd.DataFrame(rows), successful_only=True)
