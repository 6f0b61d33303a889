"""rzs's fused BatchNormalization must compute what Keras's does."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import layers

from rzs.models.normalization import BatchNormalization


def _pair(shape, momentum=0.9):
    """A Keras BN and an rzs BN with the same (non-trivial) weights."""
    reference, fused = layers.BatchNormalization(momentum=momentum), BatchNormalization(
        momentum=momentum
    )
    channels = shape[-1]
    for layer in (reference, fused):
        layer.build(shape)
        layer.gamma.assign(np.linspace(0.5, 2.0, channels))
        layer.beta.assign(np.linspace(-1.0, 1.0, channels))
    return reference, fused


@pytest.fixture(params=["float32", "mixed_bfloat16"])
def policy(request):
    keras.mixed_precision.set_global_policy(request.param)
    yield request.param
    keras.mixed_precision.set_global_policy("float32")


def test_training_step_matches_keras(policy):
    rng = np.random.default_rng(0)
    images = rng.normal(3.0, 2.0, (8, 6, 6, 5)).astype("float32")
    # Per-element weights: a per-channel one would make gamma's gradient exactly 0.
    weights = rng.normal(size=images.shape).astype("float32")
    reference, fused = _pair(images.shape)
    tolerance = 1e-4 if policy == "float32" else 5e-2
    gradients = []
    for layer in (reference, fused):
        inputs = tf.constant(images)
        with tf.GradientTape() as tape:
            tape.watch(inputs)
            outputs = layer(inputs, training=True)
            loss = tf.reduce_sum(tf.cast(outputs, "float32") * weights)
        gradients.append(tape.gradient(loss, [inputs, layer.gamma, layer.beta]))
        assert outputs.dtype == layer.compute_dtype
    for expected, actual in zip(*gradients):
        np.testing.assert_allclose(actual, expected, rtol=tolerance, atol=tolerance)
    np.testing.assert_allclose(fused.moving_mean, reference.moving_mean, rtol=1e-5)
    # Keras keeps the biased batch variance; the fused kernel's unbiased one is corrected.
    np.testing.assert_allclose(fused.moving_variance, reference.moving_variance, rtol=1e-5)


def test_inference_matches_keras(policy):
    images = np.random.default_rng(1).normal(3.0, 2.0, (4, 6, 6, 5)).astype("float32")
    reference, fused = _pair(images.shape)
    for layer in (reference, fused):
        layer.moving_mean.assign(np.linspace(2.0, 4.0, 5))
        layer.moving_variance.assign(np.linspace(1.0, 5.0, 5))
    tolerance = 1e-5 if policy == "float32" else 1e-2
    np.testing.assert_allclose(
        np.float32(fused(images, training=False)),
        np.float32(reference(images, training=False)),
        rtol=tolerance,
        atol=tolerance,
    )


def test_non_image_inputs_use_keras_implementation():
    features = np.random.default_rng(2).normal(size=(16, 7)).astype("float32")
    reference, fused = _pair(features.shape)
    np.testing.assert_allclose(
        fused(features, training=True), reference(features, training=True), rtol=1e-5, atol=1e-6
    )
    np.testing.assert_allclose(fused.moving_variance, reference.moving_variance, rtol=1e-6)


def test_layer_survives_saving(tmp_path):
    model = keras.Sequential([keras.Input((4, 4, 3)), BatchNormalization(momentum=0.5)])
    model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras")
    assert isinstance(loaded.layers[0], BatchNormalization)
    assert loaded.layers[0].momentum == 0.5
