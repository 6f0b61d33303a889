"""Per-channel standardisation of raw pixels, with the statistics held as weights.

Every rzs model starts with `(pixels - mean) / std`, using the channel
statistics of its own training images. Keras's `Normalization(mean=...,
variance=...)` keeps given statistics as constants, and a traced training step
captures constants: two leave-one-out models of one network, which differ
only in their statistics and weights, would then need a trace each. Held as
(non-trainable) weights, the statistics are copied in like any other weight,
and `rzs.training` trains every such model with one traced step.
"""

import keras
from keras import initializers, layers, ops


@keras.saving.register_keras_serializable(package="rzs")
class Standardization(layers.Layer):
    """`(inputs - mean) / std` over the last axis.

    Args:
        mean: one value per channel (length of the input's last axis).
        std: one positive value per channel.

    Computed in the layer's compute dtype, as `keras.layers.Normalization` is.
    """

    def __init__(self, mean, std, **kwargs):
        super().__init__(**kwargs)
        self.mean_values = [float(value) for value in mean]
        self.std_values = [float(value) for value in std]
        if len(self.mean_values) != len(self.std_values):
            raise ValueError(
                f"mean and std must have one value per channel each, received "
                f"{len(self.mean_values)} and {len(self.std_values)} values."
            )
        if min(self.std_values) <= 0:
            raise ValueError(f"std must be positive in every channel, received {self.std_values}.")

    def build(self, input_shape):
        channels = input_shape[-1]
        if channels != len(self.mean_values):
            raise ValueError(
                f"Standardization holds statistics for {len(self.mean_values)} channels, "
                f"received an input of shape {input_shape}."
            )
        self.mean = self.add_weight(
            shape=(channels,),
            initializer=initializers.Constant(self.mean_values),
            trainable=False,
            name="mean",
        )
        self.std = self.add_weight(
            shape=(channels,),
            initializer=initializers.Constant(self.std_values),
            trainable=False,
            name="std",
        )

    def call(self, inputs):
        inputs = ops.cast(inputs, self.compute_dtype)
        mean = ops.cast(self.mean, self.compute_dtype)
        std = ops.cast(self.std, self.compute_dtype)
        return (inputs - mean) / std

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "mean": self.mean_values, "std": self.std_values}
