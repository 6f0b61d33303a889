import keras
import numpy as np
import pytest

from rzs.models.standardization import Standardization


def test_standardises_each_channel_with_its_own_statistics():
    layer = Standardization(mean=[10.0, 20.0, 30.0], std=[2.0, 4.0, 5.0])
    pixels = np.arange(2 * 4 * 4 * 3, dtype="float32").reshape(2, 4, 4, 3)
    expected = (pixels - np.array([10.0, 20.0, 30.0])) / np.array([2.0, 4.0, 5.0])
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer(pixels)), expected, rtol=1e-6)


def test_statistics_are_weights_that_can_be_assigned():
    # As weights (not constants), a compiled step sees statistics copied in after it was traced.
    layer = Standardization(mean=[0.0], std=[1.0])
    layer.build((None, 2, 2, 1))
    assert [weight.name for weight in layer.non_trainable_weights] == ["mean", "std"]
    assert layer.trainable_weights == []
    layer.mean.assign([1.0])
    layer.std.assign([2.0])
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer(np.full((1, 2, 2, 1), 5.0))), 2.0)


def test_survives_saving_inside_a_model(tmp_path):
    inputs = keras.Input((3, 3, 2))
    model = keras.Model(inputs, Standardization(mean=[1.0, 2.0], std=[3.0, 4.0])(inputs))
    model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras")
    pixels = np.random.default_rng(0).uniform(0, 255, (2, 3, 3, 2)).astype("float32")
    np.testing.assert_array_equal(loaded.predict(pixels, verbose=0), model.predict(pixels, verbose=0))


def test_follows_the_dtype_policy():
    layer = Standardization(mean=[128.0], std=[64.0], dtype="mixed_bfloat16")
    outputs = layer(np.full((1, 2, 2, 1), 192.0, dtype="float32"))
    assert keras.backend.standardize_dtype(outputs.dtype) == "bfloat16"
    assert float(keras.ops.convert_to_numpy(keras.ops.cast(outputs, "float32"))[0, 0, 0, 0]) == 1.0


@pytest.mark.parametrize(
    "mean, std, message",
    [
        ([0.0, 1.0], [1.0], "one value per channel each, received 2 and 1"),
        ([0.0], [0.0], "std must be positive"),
    ],
)
def test_bad_statistics_raise_naming_them(mean, std, message):
    with pytest.raises(ValueError, match=message):
        Standardization(mean=mean, std=std)


def test_an_input_with_other_channels_raises():
    with pytest.raises(ValueError, match="statistics for 3 channels"):
        Standardization(mean=[0.0] * 3, std=[1.0] * 3)(np.zeros((1, 2, 2, 1), "float32"))
