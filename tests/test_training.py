import dataclasses

import numpy as np
import pytest

from rzs import training, zeroshot
from rzs.store import RunStore
from rzs.training import TrainingSpec, learning_rate_schedule

TINY = dict(per_class_train=30, per_class_test=10, epochs=1, augmentation=False, batch_size=32)


def test_piecewise_schedule_scales_to_shorter_runs():
    recipe = {
        "learning_rate": 0.1,
        "epochs": 20,
        "schedule": {"kind": "piecewise", "boundaries": [80, 150], "values": [0.1, 0.01, 0.001]},
    }
    schedule = learning_rate_schedule(recipe, authors_epochs=200)
    assert [schedule(epoch) for epoch in (0, 7, 8, 14, 15, 19)] == [0.1, 0.1, 0.01, 0.01, 0.001, 0.001]


def test_exponential_and_constant_schedules():
    recipe = {"learning_rate": 1e-3, "epochs": 50, "schedule": {"kind": "exponential", "decay_epochs": 10}}
    assert learning_rate_schedule(recipe, 50)(10) == pytest.approx(1e-3 / np.e)
    recipe["schedule"] = {"kind": "constant"}
    assert learning_rate_schedule(recipe, 50)(30) == 1e-3


@pytest.mark.parametrize(
    "field, value",
    [
        ("network", "alexnet"),
        ("epochs", 0),
        ("batch_size", 2.5),
        ("precision", "float8"),
        ("seed", "0"),
        ("batch_norm_momentum", 1.0),
        ("batch_norm_momentum", False),
        ("epochs", True),
        ("seed", False),
        ("dropout_scale", 1.5),
        ("dropout_scale", True),
        ("optimizer", "rmsprop"),
        ("learning_rate", 0),
        ("schedule", "linear"),
        ("width", 0),
        ("per_class_train", -1),
        ("augmentation", "yes"),
    ],
)
def test_spec_rejects_bad_values_naming_them(field, value):
    arguments = {"network": "lenet", "dataset": "fashion_mnist", field: value}
    with pytest.raises(ValueError, match=field if field != "network" else "alexnet"):
        TrainingSpec(**arguments)


def test_spec_config_carries_the_resolved_recipe():
    spec = TrainingSpec("lenet", "fashion_mnist", epochs=3, batch_size=16, augmentation=False)
    recipe = spec.config()["recipe"]
    assert (recipe["epochs"], recipe["batch_size"], recipe["augmentation"]) == (3, 16, False)
    assert spec.config() != spec.with_excluded(2).config()


def test_recipe_overrides_change_the_recipe_and_the_key_only_when_set():
    plain = TrainingSpec("allconv", "fashion_mnist")
    assert "optimizer" not in plain.config() and "batch_norm_momentum" not in plain.config()
    short = TrainingSpec("allconv", "fashion_mnist", optimizer="sgd", learning_rate=0.05, schedule="cosine")
    recipe = short.recipe()
    assert (recipe["optimizer"], recipe["momentum"], recipe["nesterov"]) == ("sgd", 0.9, True)
    assert recipe["learning_rate"] == 0.05 and recipe["schedule"] == {"kind": "cosine"}
    assert short.config()["optimizer"] == "sgd"
    adam = TrainingSpec("lenet", "fashion_mnist", optimizer="adam").recipe()
    assert adam["optimizer"] == "adam" and "momentum" not in adam


def test_cosine_schedule_decays_to_zero_over_the_run():
    optimizer = training.make_optimizer(
        {"optimizer": "adam", "learning_rate": 0.01, "schedule": {"kind": "cosine"}}, steps=100
    )
    rates = []
    for step in (0, 50, 100):
        optimizer.iterations.assign(step)
        rates.append(float(optimizer.learning_rate))
    np.testing.assert_allclose(rates, [0.01, 0.005, 0.0], atol=1e-7)
    with pytest.raises(ValueError, match="steps=None"):
        training.make_optimizer({"optimizer": "adam", "learning_rate": 0.01, "schedule": {"kind": "cosine"}})


def test_warmup_cosine_schedule_rises_for_a_tenth_of_the_run_then_decays_to_zero():
    recipe = {"optimizer": "sgd", "learning_rate": 0.01, "schedule": {"kind": "warmup_cosine"}}
    optimizer = training.make_optimizer(recipe, steps=100)
    rates = []
    for step in (0, 5, 10, 55, 100):
        optimizer.iterations.assign(step)
        rates.append(float(optimizer.learning_rate))
    np.testing.assert_allclose(rates, [0.0, 0.005, 0.01, 0.005, 0.0], atol=1e-7)
    with pytest.raises(ValueError, match="warmup_cosine schedule needs the run's number of steps"):
        training.make_optimizer(recipe)
    with pytest.raises(ValueError, match="schedule must be None or one of"):
        TrainingSpec("allconv", "fashion_mnist", schedule="warmup")


def test_short_run_options_reach_the_trained_model(shared_data):
    spec = TrainingSpec("lenet", "fashion_mnist", batch_norm_momentum=0.8, schedule="cosine", **TINY)
    model = training.train(spec, verbose=0).model
    momenta = {layer.momentum for layer in model.layers if layer.__class__.__name__ == "BatchNormalization"}
    assert momenta == {0.8}


def test_optimizer_is_built_before_fit(shared_data, monkeypatch):
    # Built inside the first traced step instead, TensorFlow would trace that step twice.
    import keras

    fit = keras.Model.fit
    built_at_fit = []

    def recording_fit(model, *args, **kwargs):
        built_at_fit.append(model.optimizer.built)
        return fit(model, *args, **kwargs)

    monkeypatch.setattr(keras.Model, "fit", recording_fit)
    training.train(TrainingSpec("lenet", "fashion_mnist", **TINY), verbose=0)
    assert built_at_fit == [True]


def test_dropout_scale_multiplies_every_rate():
    from rzs import models

    model = models.build_model("allconv", (28, 28, 1), 10, width=0.125)
    rates = [layer.rate for layer in model.layers if layer.__class__.__name__ == "Dropout"]
    training.scale_dropout(model, 0.5)
    halved = [layer.rate for layer in model.layers if layer.__class__.__name__ == "Dropout"]
    assert rates and halved == [rate * 0.5 for rate in rates]


def test_same_seed_gives_the_same_soft_labels(shared_data, tmp_path):
    def soft_labels(spec, directory):
        prediction = zeroshot.prediction_specs([spec])[0]
        return zeroshot.get_or_predict(prediction, RunStore(tmp_path / directory)).arrays["test_soft_labels"]

    spec = TrainingSpec("lenet", "fashion_mnist", excluded=4, seed=7, **{**TINY, "augmentation": True})
    first = soft_labels(spec, "first")
    np.testing.assert_array_equal(first, soft_labels(spec, "second"))
    assert not np.array_equal(first, soft_labels(dataclasses.replace(spec, seed=8), "other_seed"))


def test_raw_zero_shot_of_lenet_on_fashion_mnist(shared_data, tmp_path):
    store = RunStore(tmp_path)
    result = zeroshot.raw_zero_shot(
        "lenet", "fashion_mnist", store, per_class_train=200, per_class_test=50,
        epochs=3, augmentation=False, batch_size=32,
    )
    assert sorted(result.leave_one_out) == list(range(10))
    # Soft labels come from the float32 "predictions" of the stored models.
    assert result.precision == "float32" and len(store.records("predictions")) == 11
    options = dict(per_class_train=200, per_class_test=50, epochs=3, augmentation=False, batch_size=32)
    full_record = store.load("model", TrainingSpec("lenet", "fashion_mnist", **options).config()).record
    assert full_record["test_accuracy"] > 0.6  # chance is 0.1
    pairs = result.soft_label_pairs()
    for excluded, (zero_shot, full) in pairs.items():
        assert zero_shot.shape == (50, 9) and full.shape == (50, 10)
        np.testing.assert_allclose(zero_shot.sum(axis=1), 1, atol=1e-5)
        # The full model's rows are its soft labels on the excluded class's own images.
        assert np.mean(full.argmax(axis=1) == excluded) > 0.3
    train_pairs = result.soft_label_pairs("train")
    assert train_pairs[0][0].shape == (200, 9)
    assert (tmp_path / "model").is_dir() and len(store.records("model")) == 11
    record = store.load("model", TrainingSpec("lenet", "fashion_mnist", excluded=3, **options).config()).record
    assert record["num_classes"] == 9 and "Dress" not in record["class_names"]
    assert record["versions"]["keras"] and record["timings"]["train_seconds"] > 0
    # A rerun is served from the store without training.
    again = zeroshot.raw_zero_shot(
        "lenet", "fashion_mnist", store, per_class_train=200, per_class_test=50,
        epochs=3, augmentation=False, batch_size=32,
    )
    assert again.full.directory == result.full.directory


def test_stored_model_reloads_with_the_same_predictions(shared_data, tmp_path):
    import keras

    from rzs import pipeline

    spec = TrainingSpec("lenet", "fashion_mnist", **TINY)
    trained = training.train(spec, verbose=0)
    trained.model.save(tmp_path / zeroshot.MODEL_FILE)  # as `zeroshot.compute_model` saves it
    model = keras.saving.load_model(tmp_path / zeroshot.MODEL_FILE)
    dataset, _ = spec.load_data()
    np.testing.assert_allclose(
        pipeline.predict_probabilities(model, dataset.x_test),
        pipeline.predict_probabilities(trained.model, dataset.x_test),
        atol=1e-6,
    )


# AllConv has dropout and CapsNet its own training model and loss; with augmentation on, every
# source of randomness in a training step is exercised.
@pytest.mark.parametrize("network", ["allconv", "capsnet"])
def test_a_reused_training_step_gives_the_bits_of_a_fresh_one(shared_data, network):
    import keras

    options = dict(TINY, augmentation=True, width=0.25, precision="mixed_bfloat16", seed=3)
    first = TrainingSpec(network, "fashion_mnist", excluded=0, **options)
    second = first.with_excluded(1)
    trained_first = training.train(first, verbose=0)
    first_weights = [weight.copy() for weight in trained_first.model.get_weights()]
    reused = training.train(second, verbose=0)
    assert not trained_first.reused_step and reused.reused_step
    # The first model is a model of its own: training the second did not touch its weights.
    for before, after in zip(first_weights, trained_first.model.get_weights()):
        np.testing.assert_array_equal(before, after)

    keras.backend.clear_session()
    fresh = training.train(second, verbose=0, reuse=False)
    assert not fresh.reused_step
    assert reused.history == fresh.history
    for from_reused, from_fresh in zip(reused.model.get_weights(), fresh.model.get_weights()):
        np.testing.assert_array_equal(from_reused, from_fresh)


def test_only_a_model_with_the_same_graph_reuses_the_step(shared_data):
    spec = TrainingSpec("lenet", "fashion_mnist", excluded=0, **TINY)
    training.train(spec, verbose=0)
    # The full model has one class more, so other variable shapes.
    assert not training.train(spec.with_excluded(None), verbose=0).reused_step
    assert not training.train(spec, verbose=0).reused_step  # the full model's step came between
    assert training.train(spec.with_excluded(5), verbose=0).reused_step
    wider = TrainingSpec("lenet", "fashion_mnist", excluded=5, width=0.5, **TINY)
    assert not training.train(wider, verbose=0).reused_step
    with_defence = TrainingSpec("lenet", "fashion_mnist", excluded=5, width=0.5, defence="label_smoothing", **TINY)
    assert not training.train(with_defence, verbose=0).reused_step


def test_seeding_again_with_the_same_seed_restarts_python_and_numpy():
    import random

    from rzs import reproducibility

    draws = []
    for _ in range(2):
        reproducibility.seed_everything(11)  # the second call leaves TensorFlow's caches alone
        draws.append((random.random(), np.random.random()))
    assert draws[0] == draws[1]
