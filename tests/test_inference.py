"""Tests of rzs.inference: float32 copies of mixed-precision models, and their logits."""

import keras
import numpy as np
import pytest

from rzs import inference
from rzs.models import registry


def build_under_policy(name, policy, input_shape=(28, 28, 1)):
    """A small untrained network built under the global dtype `policy`."""
    keras.utils.set_random_seed(0)
    keras.config.set_dtype_policy(policy)
    try:
        return registry.build_model(name, input_shape, 10, width=0.25)
    finally:
        keras.config.set_dtype_policy("float32")


@pytest.fixture(scope="module")
def pixels():
    return np.random.default_rng(0).uniform(0, 255, (16, 28, 28, 1)).astype("float32")


@pytest.fixture(scope="module")
def stored_bfloat16_lenet(tmp_path_factory):
    model = build_under_policy("lenet", "mixed_bfloat16")
    path = tmp_path_factory.mktemp("models") / "model.keras"
    model.save(path)
    return model, path


def test_reloaded_bfloat16_model_computes_in_float32(stored_bfloat16_lenet, pixels):
    trained, path = stored_bfloat16_lenet
    assert inference.precision(keras.saving.load_model(path)) == "mixed"
    reloaded = inference.load_float32_model(path)
    assert inference.precision(reloaded) == "float32"
    float32_output = np.asarray(reloaded.predict_on_batch(pixels))
    bfloat16_output = np.asarray(trained.predict_on_batch(pixels))
    # bfloat16 keeps 8 significant bits: its probabilities are off by ~1e-3.
    assert np.abs(float32_output - bfloat16_output).max() > 1e-4
    again = inference.load_float32_model(path)
    np.testing.assert_array_equal(float32_output, again.predict_on_batch(pixels))


def test_float32_copy_matches_a_float32_build_with_the_same_weights(pixels):
    mixed = build_under_policy("lenet", "mixed_bfloat16")
    plain = build_under_policy("lenet", "float32")
    plain.set_weights(mixed.get_weights())
    copy = inference.float32_model(mixed)
    np.testing.assert_allclose(copy.predict_on_batch(pixels), plain.predict_on_batch(pixels), atol=1e-6)


def test_float32_model_returns_a_float32_model_unchanged():
    model = build_under_policy("lenet", "float32")
    assert inference.float32_model(model) is model


def test_logits_differ_from_log_probabilities_by_one_constant_per_image(pixels):
    model = build_under_policy("lenet", "float32")
    logits = np.asarray(inference.logits_model(model).predict_on_batch(pixels), dtype="float64")
    log_probabilities = np.log(np.asarray(model.predict_on_batch(pixels), dtype="float64"))
    offsets = logits - log_probabilities
    np.testing.assert_allclose(offsets, offsets[:, :1].repeat(10, axis=1), atol=1e-4)


def test_capsnet_has_no_logits_and_falls_back_to_clipped_log_probabilities(pixels):
    model = build_under_policy("capsnet", "float32")
    assert inference.logits_model(model) is None
    scores = np.asarray(inference.log_scores_model(model).predict_on_batch(pixels))
    probabilities = np.asarray(model.predict_on_batch(pixels))
    expected = np.log(np.maximum(probabilities, inference.SMALLEST_PROBABILITY))
    np.testing.assert_allclose(scores, expected, rtol=1e-6)
