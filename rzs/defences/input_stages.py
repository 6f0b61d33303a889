"""Input-transforming defences as Keras layers on raw pixels in [0, 255].

Each layer sits in front of a network (see `rzs.defences.with_input_stage`),
so training, Raw Zero-Shot soft labels and every attack see the defended model
exactly as it would be deployed. All of them compute in float32 whatever the
global precision policy, so that 8-bit pixel values stay exact.

Gradients: the median filter is differentiable almost everywhere (the
gradient flows to the median pixel of each window). Bit-depth reduction and
JPEG compression have zero or no gradient, so their backward pass is the
identity (BPDA, Athalye et al. 2018): `x + stop_gradient(transform(x) - x)`.
Thermometer encoding back-propagates through its piecewise-linear relaxation
(Athalye et al. 2018; IBM ART's `estimate_gradient`).
"""

import keras
import tensorflow as tf
from keras import ops

PIXEL_MAX = 255.0


def straight_through(pixels, transformed):
    """`transformed` in the forward pass, identity gradient in the backward pass."""
    return pixels + ops.stop_gradient(transformed - pixels)


class InputStage(keras.layers.Layer):
    """A weightless float32 preprocessing layer."""

    def __init__(self, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)


@keras.saving.register_keras_serializable(package="rzs")
class FeatureSqueezing(InputStage):
    """Bit-depth reduction (Xu et al. 2018), as IBM ART's `FeatureSqueezing`.

    Each value v in [0, 255] becomes round(v / 255 * (2^bits - 1)) / (2^bits - 1)
    * 255, i.e. the nearest of 2^bits evenly spaced levels of [0, 255].

    Args:
        bit_depth: bits kept per value, 1 to 8.

    Input shape: `(batch, height, width, channels)`, pixels in [0, 255].
    Output shape: the same, values on 2^bit_depth levels of [0, 255].
    """

    def __init__(self, bit_depth, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(bit_depth, int) or not 1 <= bit_depth <= 8:
            raise ValueError(f"bit_depth must be an integer in [1, 8], received {bit_depth!r}.")
        self.bit_depth = bit_depth

    def call(self, pixels):
        steps = 2.0**self.bit_depth - 1.0
        squeezed = ops.round(pixels / PIXEL_MAX * steps) / steps * PIXEL_MAX
        return straight_through(pixels, squeezed)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "bit_depth": self.bit_depth}


@keras.saving.register_keras_serializable(package="rzs")
class MedianSmoothing(InputStage):
    """Spatial smoothing: a per-channel median filter (Xu et al. 2018).

    Matches `scipy.ndimage.median_filter(x, size=(1, w, w, 1), mode="reflect")`,
    which IBM ART's `SpatialSmoothing` calls: borders are mirrored including
    the edge pixel (TensorFlow's "symmetric" padding).

    Args:
        window_size: odd side of the square window, at least 3.

    Input shape: `(batch, height, width, channels)`.
    Output shape: the same.
    """

    def __init__(self, window_size, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(window_size, int) or window_size < 3 or window_size % 2 == 0:
            raise ValueError(f"window_size must be an odd integer >= 3, received {window_size!r}.")
        self.window_size = window_size

    def call(self, pixels):
        border = self.window_size // 2
        padded = ops.pad(
            pixels, [[0, 0], [border, border], [border, border], [0, 0]], mode="symmetric"
        )
        patches = ops.image.extract_patches(padded, self.window_size, strides=1, padding="valid")
        # Patches hold (window row, window column, channel) with the channel
        # fastest; move the window's values to the last axis of each channel.
        batch, height, width, channels = ops.shape(pixels)
        windows = ops.reshape(patches, (batch, height, width, self.window_size**2, channels))
        windows = ops.transpose(windows, (0, 1, 2, 4, 3))
        # With an odd number of values the median is the middle one: the
        # smallest of the largest half.
        largest_half, _ = ops.top_k(windows, k=self.window_size**2 // 2 + 1)
        return largest_half[..., -1]

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "window_size": self.window_size}


@keras.saving.register_keras_serializable(package="rzs")
class JpegCompression(InputStage):
    """JPEG encode-decode round trip (Dziugaite et al. 2016; Das et al. 2017).

    Values are rounded to 8-bit integers, each image is encoded at `quality`
    with TensorFlow's libjpeg and decoded again, with 4:2:0 chroma subsampling
    and the accurate integer DCT, the defaults of Pillow, which IBM ART uses
    (TensorFlow's default fast DCT adds errors of several grey levels).
    TensorFlow-only (`tf.io`).

    Args:
        quality: JPEG quality, 1 to 100.

    Input shape: `(batch, height, width, channels)` with 1 or 3 channels.
    Output shape: the same, integer values in [0, 255].
    """

    def __init__(self, quality, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(quality, int) or not 1 <= quality <= 100:
            raise ValueError(f"quality must be an integer in [1, 100], received {quality!r}.")
        self.quality = quality

    def build(self, input_shape):
        if input_shape[-1] not in (1, 3):
            raise ValueError(
                f"JPEG images have 1 or 3 channels, received input shape {tuple(input_shape)}."
            )

    def call(self, pixels):
        channels = pixels.shape[-1]
        eight_bit = tf.cast(tf.clip_by_value(tf.round(pixels), 0.0, PIXEL_MAX), tf.uint8)

        def round_trip(image):
            encoded = tf.io.encode_jpeg(image, quality=self.quality)
            return tf.io.decode_jpeg(encoded, channels=channels, dct_method="INTEGER_ACCURATE")

        compressed = tf.map_fn(round_trip, eight_bit, fn_output_signature=tf.uint8)
        compressed = tf.ensure_shape(tf.cast(compressed, pixels.dtype), pixels.shape)
        return straight_through(pixels, compressed)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "quality": self.quality}


@keras.saving.register_keras_serializable(package="rzs")
class ThermometerEncoding(InputStage):
    """Thermometer encoding (Buckman et al. 2018), as IBM ART's `ThermometerEncoding`.

    A value v in [0, 255] is read on the [0, 1] scale, u = v / 255, and becomes
    `levels` binary values: level k is 1 when u > k / levels (level 0 is always
    1). Output channel `c * levels + k` holds level k of input channel c, the
    order of ART. The backward pass uses the relaxation
    min(max(u - k / levels, 0), 1) of each level.

    Args:
        levels: number of levels per channel, at least 2.

    Input shape: `(batch, height, width, channels)`, pixels in [0, 255].
    Output shape: `(batch, height, width, channels * levels)`, values in {0, 1}.
    """

    def __init__(self, levels, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(levels, int) or levels < 2:
            raise ValueError(f"levels must be an integer >= 2, received {levels!r}.")
        self.levels = levels

    def call(self, pixels):
        unit = ops.clip(pixels / PIXEL_MAX, 0.0, 1.0)[..., None]
        thresholds = ops.arange(self.levels, dtype=unit.dtype) / self.levels
        relaxed = ops.clip(unit - thresholds, 0.0, 1.0)
        # Level 0 compares with a threshold below every value, as ART's is always 1.
        hard_thresholds = ops.where(thresholds > 0, thresholds, -1.0)
        encoded = ops.cast(unit > hard_thresholds, unit.dtype)
        encoded = relaxed + ops.stop_gradient(encoded - relaxed)
        batch, height, width, channels = ops.shape(pixels)
        return ops.reshape(encoded, (batch, height, width, channels * self.levels))

    def compute_output_shape(self, input_shape):
        *leading, channels = input_shape
        return (*leading, None if channels is None else channels * self.levels)

    def get_config(self):
        return {**super().get_config(), "levels": self.levels}
