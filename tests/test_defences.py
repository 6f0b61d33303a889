import keras
import numpy as np
import pytest
import scipy.ndimage
import tensorflow as tf
from scipy import optimize

from rzs import attacks, defences, training, zeroshot
from rzs.defences import input_stages, total_variance, training_data
from rzs.store import RunStore
from rzs.training import TrainingSpec

TINY = dict(per_class_train=30, per_class_test=10, epochs=1, augmentation=False, batch_size=32)


def random_pixels(shape, seed=0):
    return np.random.default_rng(seed).integers(0, 256, size=shape).astype("float32")


def test_registry_holds_the_papers_defences_with_sourced_defaults():
    assert defences.list_defences() == [
        "adversarial_training",
        "feature_squeezing_test",
        "feature_squeezing",
        "spatial_smoothing_test",
        "spatial_smoothing",
        "jpeg_compression",
        "gaussian_augmentation",
        "label_smoothing",
        "thermometer_encoding",
        "total_variance_minimisation_test",
        "total_variance_minimisation",
    ]
    expected = {
        "adversarial_training": {"eps": 8 / 255, "step_size": 2 / 255, "iterations": 10},
        "feature_squeezing": {"bit_depth": 5},
        "spatial_smoothing": {"window_size": 3},
        "jpeg_compression": {"quality": 75},
        "gaussian_augmentation": {"sigma": 1.0, "ratio": 1.0},
        "label_smoothing": {"max_value": 0.9},
        "thermometer_encoding": {"levels": 16},
        "total_variance_minimisation": {
            "keep_probability": 0.3, "norm": 2, "weight": 0.5, "iterations": 10
        },
    }
    for name, params in expected.items():
        defence = defences.get_defence(name)
        assert dict(defence.params) == params and not defence.test_time_only
        assert all(defence.sources[parameter] for parameter in params)
    for name in ("feature_squeezing", "spatial_smoothing", "total_variance_minimisation"):
        test_time = defences.get_defence(f"{name}_test")
        assert test_time.test_time_only and test_time.params == defences.get_defence(name).params


def test_spec_rejects_unknown_defences_listing_the_choices():
    with pytest.raises(ValueError, match=r"^defence must be one of \[.*'spatial_smoothing'.*\], received 'median'\.$"):
        TrainingSpec("lenet", "fashion_mnist", defence="median")


def test_defence_and_its_settings_name_the_cached_result():
    vanilla = TrainingSpec("lenet", "fashion_mnist")
    smoothed = TrainingSpec("lenet", "fashion_mnist", defence="spatial_smoothing")
    assert "defence" not in vanilla.config()
    assert smoothed.config()["defence"] == {
        "name": "spatial_smoothing", "params": {"window_size": 3}
    }
    test_time = TrainingSpec("lenet", "fashion_mnist", defence="spatial_smoothing_test")
    assert len({str(spec.config()) for spec in (vanilla, smoothed, test_time)}) == 3


def test_feature_squeezing_keeps_32_evenly_spaced_levels():
    pixels = np.arange(256, dtype="float32").reshape(1, 16, 16, 1)
    squeezed = np.asarray(input_stages.FeatureSqueezing(5)(pixels))
    levels = np.unique(squeezed)
    np.testing.assert_allclose(levels, np.arange(32) * 255 / 31, rtol=1e-6)
    # Every value moves to its nearest level.
    assert np.abs(squeezed - pixels).max() <= 255 / 31 / 2 + 1e-4


@pytest.mark.parametrize(
    "window_size, shape", [(3, (2, 7, 6, 3)), (3, (1, 5, 5, 1)), (5, (2, 8, 9, 1))]
)
def test_median_smoothing_matches_scipy(window_size, shape):
    pixels = random_pixels(shape)
    smoothed = input_stages.MedianSmoothing(window_size)(pixels)
    window = (1, window_size, window_size, 1)
    expected = scipy.ndimage.median_filter(pixels, size=window, mode="reflect")
    np.testing.assert_array_equal(np.asarray(smoothed), expected)


def test_jpeg_compression_changes_images_and_barely_at_quality_100():
    rows, columns = np.mgrid[0:32, 0:32]
    smooth = np.stack([rows * 8, columns * 8, (rows + columns) * 4], axis=-1)
    smooth = smooth[None].astype("float32")
    images = np.concatenate([smooth, random_pixels((1, 32, 32, 3))])
    compressed = np.asarray(input_stages.JpegCompression(75)(images))
    assert compressed.shape == images.shape and np.all(compressed == np.round(compressed))
    assert np.abs(compressed - images).mean() > 1.0
    best_quality = input_stages.JpegCompression(100)
    once = np.asarray(best_quality(smooth))
    assert np.abs(once - smooth).mean() < 1.0
    assert np.abs(np.asarray(best_quality(once)) - once).mean() < 0.5
    grey = np.asarray(input_stages.JpegCompression(75)(images[..., :1]))
    assert grey.shape == (2, 32, 32, 1)


def test_thermometer_encoding_has_16_monotone_levels_per_channel():
    pixels = np.linspace(0, 255, 3 * 4 * 5, dtype="float32").reshape(1, 4, 5, 3)
    encoded = np.asarray(input_stages.ThermometerEncoding(16)(pixels))
    assert encoded.shape == (1, 4, 5, 48)
    assert set(np.unique(encoded)) <= {0.0, 1.0}
    levels = encoded.reshape(-1, 3, 16)
    # Within a channel: once a level is off, every higher one is off too.
    assert np.all(np.diff(levels, axis=-1) <= 0)
    # Brighter values light up at least as many levels; level 0 is always on.
    ones = levels.sum(axis=-1).ravel()
    assert np.all(np.diff(ones[np.argsort(pixels.ravel(), kind="stable")]) >= 0)
    above_thresholds = pixels.reshape(-1, 1) / 255 > np.arange(1, 16) / 16
    np.testing.assert_array_equal(ones, 1 + above_thresholds.sum(axis=1))


def test_total_variance_minimisation_lowers_total_variation():
    rows, columns = np.mgrid[0:12, 0:12]
    checkerboard = ((rows // 6 + columns // 6) % 2 * 200 + 25).astype("float32")
    noise = np.random.default_rng(1).normal(0, 40, size=(3, 12, 12, 2))
    noisy = np.clip(checkerboard[None, :, :, None] + noise, 0, 255).astype("float32")
    stage = total_variance.TotalVarianceMinimisation(0.3, 2, 0.5, 10, seed=0)
    smoothed = np.asarray(stage(noisy))
    assert smoothed.shape == noisy.shape and 0 <= smoothed.min() and smoothed.max() <= 255
    for image, channel in np.ndindex(3, 2):
        before = total_variance.total_variation(noisy[image, :, :, channel] / 255)
        after = total_variance.total_variation(smoothed[image, :, :, channel] / 255)
        assert after < 0.7 * before


@pytest.mark.parametrize("norm", [1, 2])
def test_total_variance_objective_gradient_is_exact(norm):
    generator = np.random.default_rng(norm)
    original = generator.uniform(size=(6, 5))
    mask = (generator.uniform(size=original.shape) < 0.3).astype(float)
    point = (original + generator.normal(0, 0.1, size=original.shape)).ravel()
    error = optimize.check_grad(
        lambda z: total_variance._objective_and_gradient(z, original, mask, norm, 0.5)[0],
        lambda z: total_variance._objective_and_gradient(z, original, mask, norm, 0.5)[1],
        point,
    )
    assert error < 1e-5


def test_label_smoothing_rows_sum_to_one():
    one_hot = tf.one_hot([0, 3, 9], 10)
    targets = np.asarray(training_data.label_smoothing(one_hot, max_value=0.9))
    np.testing.assert_allclose(targets.sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(targets[[0, 1, 2], [0, 3, 9]], 0.9)
    np.testing.assert_allclose(targets[0, 1:], 0.1 / 9, rtol=1e-6)
    with pytest.raises(ValueError, match="0.05"):
        training_data.label_smoothing(one_hot, max_value=0.05)


def test_gaussian_augmentation_appends_noisy_copies_with_their_labels():
    images = random_pixels((20, 4, 4, 1)).astype("uint8")
    labels = np.arange(20) % 4
    augmented, augmented_labels = training_data.gaussian_augmentation(
        images, labels, seed=0, sigma=1.0, ratio=1.0
    )
    assert augmented.shape == (40, 4, 4, 1) and augmented_labels.shape == (40,)
    np.testing.assert_array_equal(augmented[:20], images)
    assert 0 <= augmented.min() and augmented.max() <= 255
    # Each copy lies within a few sigma of an original of its own label.
    for copy, label in zip(augmented[20:], augmented_labels[20:]):
        distances = np.abs(images[labels == label].astype("float32") - copy).max(axis=(1, 2, 3))
        assert distances.min() < 6.0


@pytest.mark.parametrize(
    "stage",
    [
        input_stages.FeatureSqueezing(5),
        input_stages.MedianSmoothing(3),
        input_stages.JpegCompression(75),
        input_stages.ThermometerEncoding(16),
        total_variance.TotalVarianceMinimisation(0.3, 2, 0.5, 10, seed=0),
    ],
    ids=lambda stage: type(stage).__name__,
)
def test_stages_pass_gradients_and_reload_from_model_keras(stage, tmp_path):
    inputs = keras.Input(stage.compute_output_shape((None, 8, 8, 1))[1:])
    # Scaled down so that the softmax is not saturated and passes gradients.
    features = keras.layers.Flatten()(keras.layers.Rescaling(1 / 255)(inputs))
    outputs = keras.layers.Dense(3, activation="softmax")(features)
    network = keras.Model(inputs, outputs)
    model = defences.with_input_stage(network, stage, (8, 8, 1))
    pixels = tf.constant(random_pixels((2, 8, 8, 1)))
    with tf.GradientTape() as tape:
        tape.watch(pixels)
        top = tf.reduce_max(model(pixels), axis=1)
    assert np.abs(tape.gradient(top, pixels).numpy()).sum() > 0
    model.save(tmp_path / "model.keras")
    reloaded = keras.saving.load_model(tmp_path / "model.keras")
    assert type(reloaded.get_layer(stage.name)) is type(stage)
    assert reloaded.get_layer(stage.name).get_config() == stage.get_config()
    if not isinstance(stage, total_variance.TotalVarianceMinimisation):  # random masks
        np.testing.assert_allclose(
            reloaded.predict(pixels, verbose=0), model.predict(pixels, verbose=0), atol=1e-6
        )


def test_defended_lenet_gives_soft_labels_and_is_attacked_through_its_defence(
    shared_data, tmp_path
):
    spec = TrainingSpec("lenet", "fashion_mnist", excluded=2, defence="spatial_smoothing", **TINY)
    store = RunStore(tmp_path)
    predictions = zeroshot.get_or_predict(zeroshot.prediction_specs([spec])[0], store)
    excluded = predictions.arrays["test_labels"] == 2
    soft_labels = predictions.arrays["test_soft_labels"][excluded]
    assert soft_labels.shape == (10, 9)
    np.testing.assert_allclose(soft_labels.sum(axis=1), 1, atol=1e-5)
    result = zeroshot.get_or_train(spec, store, verbose=0)
    model = keras.saving.load_model(result.path(zeroshot.MODEL_FILE))
    assert isinstance(model.get_layer("spatial_smoothing"), input_stages.MedianSmoothing)
    dataset, split = spec.load_data()
    np.testing.assert_allclose(
        model.predict(split.x_test_excluded.astype("float32"), verbose=0), soft_labels, atol=1e-5
    )

    images, labels = split.dataset.x_test[:4], split.dataset.y_test[:4]
    table, adversarial = attacks.pixel_attack(
        model, images, labels, th=3, population=20, generations=3, progress=False,
        return_images=True,
    )
    assert len(table) == 4 and (table["l0"] <= 3).all()
    # The attack's verdicts are the defended model's: smoothing included.
    predictions = model.predict(adversarial.astype("float32"), verbose=0).argmax(axis=1)
    np.testing.assert_array_equal(table["adversarial_label"], predictions)


def test_test_time_defence_reuses_the_vanilla_weights(shared_data, tmp_path):
    store = RunStore(tmp_path)
    spec = TrainingSpec("lenet", "fashion_mnist", defence="feature_squeezing_test", **TINY)
    with pytest.raises(ValueError, match="feature_squeezing_test"):
        training.train(spec)
    defended = zeroshot.get_or_train(spec, store, verbose=0)
    vanilla = store.load("model", TrainingSpec("lenet", "fashion_mnist", **TINY).config())
    assert defended.record["vanilla_key"] == vanilla.record["key"] != defended.record["key"]
    assert defended.record["timings"]["train_seconds"] == 0.0
    defended_model = keras.saving.load_model(defended.path(zeroshot.MODEL_FILE))
    vanilla_model = keras.saving.load_model(vanilla.path(zeroshot.MODEL_FILE))
    for defended_weight, vanilla_weight in zip(
        defended_model.get_layer("lenet").weights, vanilla_model.weights
    ):
        np.testing.assert_array_equal(defended_weight.numpy(), vanilla_weight.numpy())
    # The defended model is the vanilla one applied to 5-bit images.
    images = spec.load_data()[0].x_test.astype("float32")
    five_bit = np.round(images / 255 * 31) / 31 * 255
    np.testing.assert_allclose(
        defended_model.predict(images, verbose=0),
        vanilla_model.predict(five_bit, verbose=0),
        atol=1e-5,
    )


@pytest.mark.parametrize(
    "defence",
    [
        "jpeg_compression",
        "thermometer_encoding",
        "total_variance_minimisation",
        "gaussian_augmentation",
        "label_smoothing",
    ],
)
def test_training_time_defences_train_lenet(defence, shared_data):
    options = {**TINY, "per_class_train": 10}
    spec = TrainingSpec("lenet", "fashion_mnist", defence=defence, **options)
    trained = training.train(spec, verbose=0)
    assert trained.model.input_shape == (None, 28, 28, 1)
    assert trained.model.output_shape == (None, 10)
    assert trained.train_images == (200 if defence == "gaussian_augmentation" else 100)
    if defence == "thermometer_encoding":
        assert trained.model.get_layer("lenet").input_shape == (None, 28, 28, 16)


def test_adversarial_training_raises_pgd_accuracy(shared_data):
    options = dict(per_class_train=50, per_class_test=20, augmentation=False, batch_size=32)
    # The vanilla network gets as many optimiser steps: adversarial training takes two per batch.
    vanilla = training.train(TrainingSpec("lenet", "fashion_mnist", epochs=4, **options), verbose=0)
    robust_spec = TrainingSpec(
        "lenet", "fashion_mnist", epochs=2, defence="adversarial_training", **options
    )
    robust = training.train(robust_spec, verbose=0)
    dataset, _ = robust_spec.load_data()

    def pgd_accuracy(model):
        table = attacks.pgd(
            model, dataset.x_test, dataset.y_test, eps=8 / 255, step_size=2 / 255, iterations=10
        )
        return 1 - table["success"].mean()

    assert pgd_accuracy(robust.model) > pgd_accuracy(vanilla.model) + 0.05
