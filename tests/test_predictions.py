"""Float32 predictions as cached results, and what Study builds on them: soft-label pairs,
calibration, metric hygiene, seeds and the seed-reliability table."""

import dataclasses

import numpy as np
import pytest
from scipy import special

from rzs import inference, metrics, pipeline, robustness, zeroshot
from rzs.store import RunStore
from rzs.study import Study
from rzs.training import TrainingSpec

CLASSES, TEST_PER_CLASS, TRAIN_PER_CLASS = 4, 10, 6


def save_predictions(store, excluded, log_scores, train_log_scores):
    """A synthetic "predictions" result of the 4-class model without `excluded` (None: full)."""
    spec = zeroshot.PredictionSpec(model=dataclasses.asdict(TrainingSpec("lenet", "synthetic", excluded=excluded)))
    test_labels = np.repeat(np.arange(CLASSES), TEST_PER_CLASS)
    train_labels = np.repeat(np.arange(CLASSES), TRAIN_PER_CLASS)
    arrays = {
        "test_log_scores": log_scores,
        "test_soft_labels": special.softmax(log_scores, axis=1),
        "test_labels": test_labels,
    }
    if excluded is None:
        arrays.update(
            train_log_scores=train_log_scores,
            train_soft_labels=special.softmax(train_log_scores, axis=1),
            train_labels=train_labels,
        )
    else:
        arrays.update(
            excluded_train_log_scores=train_log_scores,
            excluded_train_soft_labels=special.softmax(train_log_scores, axis=1),
            excluded_train_indices=np.flatnonzero(train_labels == excluded),
        )
    record = {"precision": "float32", "class_names": list("abcd")}
    return store.save(spec.kind, spec.config(), record, arrays)


@pytest.fixture
def synthetic_zero_shot(tmp_path):
    """A RawZeroShot of 4 classes whose model without class 1 outputs one constant row."""
    generator = np.random.default_rng(0)
    store = RunStore(tmp_path)
    test_labels = np.repeat(np.arange(CLASSES), TEST_PER_CLASS)
    full_scores = generator.normal(size=(len(test_labels), CLASSES)) + 4 * np.eye(CLASSES)[test_labels]
    full = save_predictions(store, None, full_scores, generator.normal(size=(CLASSES * TRAIN_PER_CLASS, CLASSES)))
    leave_one_out = {}
    for excluded in range(CLASSES):
        seen = zeroshot.seen_class_labels(test_labels, excluded)
        scores = generator.normal(size=(len(test_labels), CLASSES - 1))
        scores[test_labels != excluded, seen[test_labels != excluded]] += 4
        if excluded == 1:
            scores = np.tile([2.0, 0.0, 0.0], (len(test_labels), 1))
        leave_one_out[excluded] = save_predictions(
            store, excluded, scores, generator.normal(size=(TRAIN_PER_CLASS, CLASSES - 1))
        )
    return zeroshot.RawZeroShot("lenet", full, leave_one_out)


def test_soft_label_pairs_take_each_excluded_class_images_from_both_models(synthetic_zero_shot):
    pairs = synthetic_zero_shot.soft_label_pairs("test")
    full_soft_labels = synthetic_zero_shot.full.arrays["test_soft_labels"]
    assert synthetic_zero_shot.precision == "float32" and sorted(pairs) == [0, 1, 2, 3]
    zero_shot, full = pairs[2]
    assert zero_shot.shape == (TEST_PER_CLASS, CLASSES - 1) and full.shape == (TEST_PER_CLASS, CLASSES)
    np.testing.assert_array_equal(full, full_soft_labels[2 * TEST_PER_CLASS: 3 * TEST_PER_CLASS])
    train_zero_shot, train_full = synthetic_zero_shot.soft_label_pairs("train")[3]
    np.testing.assert_array_equal(
        train_full, synthetic_zero_shot.full.arrays["train_soft_labels"][3 * TRAIN_PER_CLASS:]
    )
    assert train_zero_shot.shape == (TRAIN_PER_CLASS, CLASSES - 1)
    with pytest.raises(ValueError, match="images"):
        synthetic_zero_shot.soft_label_pairs("validation")


def test_a_constant_output_leave_one_out_model_is_flagged(synthetic_zero_shot):
    hygiene = synthetic_zero_shot.hygiene()
    assert sorted(hygiene, key=str) == [0, 1, 2, 3, None]
    assert hygiene[1]["degenerate"] and hygiene[1]["classes_predicted"] == 1
    assert not any(hygiene[i]["degenerate"] for i in (None, 0, 2, 3))
    assert hygiene[0]["accuracy"] > 0.9


def test_calibration_fits_each_pair_on_the_other_classes_test_images(synthetic_zero_shot):
    pairs, temperatures = synthetic_zero_shot.calibrated_soft_label_pairs("test")
    labels = synthetic_zero_shot.full.arrays["test_labels"]
    seen = labels != 2
    zero_shot_temperature = metrics.fit_temperature(
        synthetic_zero_shot.leave_one_out[2].arrays["test_log_scores"][seen],
        zeroshot.seen_class_labels(labels[seen], 2),
    )
    full_temperature = metrics.fit_temperature(synthetic_zero_shot.full.arrays["test_log_scores"][seen], labels[seen])
    assert temperatures[2] == pytest.approx((zero_shot_temperature, full_temperature))
    zero_shot_scores, _ = synthetic_zero_shot.log_score_pairs("test")[2]
    np.testing.assert_allclose(pairs[2][0], special.softmax(zero_shot_scores / zero_shot_temperature, axis=1))


def test_one_seed_keeps_the_cache_keys_of_the_seed_field_it_replaces():
    study = Study.from_parameters(networks=["lenet"], per_class_train=30, epochs=1)
    before = [
        spec.config()
        for spec in zeroshot.specs_for("lenet", "fashion_mnist", study.classes, per_class_train=30, epochs=1, seed=0)
    ]
    assert [spec.config() for spec in study.model_specs("lenet")] == before
    attack = robustness.AttackSpec(model=dataclasses.asdict(study.full_spec("lenet")), attack="pixel", seed=0,
                                   thresholds=(1, 3, 5, 10), images=100)
    assert study.attack_specs()[0].config() == attack.config()
    two_seeds = Study.from_parameters(networks=["lenet"], seeds=[0, 3])
    assert [spec.seed for spec in two_seeds.model_specs("lenet")] == [0] * 11 + [3] * 11
    assert [(spec.seed, spec.model["seed"]) for spec in two_seeds.attack_specs()] == [(0, 0), (0, 0), (3, 3), (3, 3)]


@pytest.mark.parametrize("field, value", [("seeds", []), ("seeds", [0, 0]), ("seeds", [True]), ("calibration", "platt")])
def test_study_rejects_bad_seeds_and_calibration_naming_them(field, value):
    with pytest.raises(ValueError, match=field):
        Study.from_parameters(**{field: value})


def test_study_tables_cover_every_seed_on_float32_predictions(shared_data, tmp_path):
    study = Study.from_parameters(
        networks=["lenet"], excluded_classes=[0, 1], per_class_train=20, per_class_test=10, epochs=1,
        batch_size=32, augmentation=False, precision="mixed_bfloat16", seeds=[0, 1], backend="inline",
        results_dir=str(tmp_path), calibration="temperature",
    )
    study.train()
    assert len(study.store.records("model")) == 6 and len(study.store.records("predictions")) == 6
    # The stored soft labels are those of the model reloaded in float32, not of its bfloat16 self.
    full = study.store.load("predictions", zeroshot.PredictionSpec(dataclasses.asdict(study.full_spec("lenet", seed=1))).config())
    model = inference.load_float32_model(study.store.load("model", study.full_spec("lenet", seed=1).config()).path(zeroshot.MODEL_FILE))
    dataset, _ = study.full_spec("lenet").load_data()
    np.testing.assert_allclose(full.arrays["test_soft_labels"], pipeline.predict_probabilities(model, dataset.x_test), atol=1e-5)
    assert full.record["training_precision"] == "mixed_bfloat16" and full.record["log_scores"] == "logits"

    table = study.metrics_table()
    assert list(table["seed"]) == [0, 0, 1, 1] and (table["precision"] == "float32").all()
    for column in ("degenerate", "embedded_dbi", "dbm_calibrated", "am_calibrated", "temperature_zero_shot"):
        assert column in table
    hygiene = study.hygiene_table()
    assert len(hygiene) == 6 and list(hygiene["classes"]) == [10, 9, 9] * 2
    assert hygiene["excluded_confidence"].isna().sum() == 2
    assert (hygiene["accuracy_ci_low"] <= hygiene["accuracy_seen"]).all()
    assert (hygiene["accuracy_seen"] <= hygiene["accuracy_ci_high"]).all()
    assert list(hygiene["images"]) == [hygiene["images"][0], *[hygiene["images"][0] * 9 // 10] * 2] * 2
    reliability_table = study.reliability_table()
    assert set(reliability_table["note"]) == {"needs >= 2 networks with every seed"}
    assert (reliability_table["seeds"] == 2).all()
    assert not study.train().computed  # every model and prediction is cached


def test_a_test_time_defence_predicts_through_its_input_stage(shared_data, tmp_path):
    store = RunStore(tmp_path)
    spec = TrainingSpec(
        "lenet", "fashion_mnist", defence="feature_squeezing_test", per_class_train=20, per_class_test=5,
        epochs=1, batch_size=32, augmentation=False,
    )
    predictions = zeroshot.get_or_predict(zeroshot.PredictionSpec(dataclasses.asdict(spec)), store)
    model = inference.load_float32_model(store.load("model", spec.config()).path(zeroshot.MODEL_FILE))
    dataset, _ = spec.load_data()
    np.testing.assert_allclose(
        predictions.arrays["test_soft_labels"], pipeline.predict_probabilities(model, dataset.x_test), atol=1e-5
    )
    assert predictions.record["precision"] == "float32" and len(store.records("model")) == 2  # and its vanilla model
