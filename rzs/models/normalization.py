"""Batch normalisation that runs as one fused kernel on the TensorFlow backend.

Keras 3's `BatchNormalization` computes the batch moments and the
normalisation as separate element-wise operations, each a pass over the
activations, forward and backward. At the channel counts of the CPU profiles
these passes cost about as much as the convolutions: on one core, ResNet-32,
ResNet-18, MobileNetV2 and LeNet train 1.2-1.9x faster per step (the figure
moves with the machine's load) with TensorFlow's fused kernel, DenseNet
1.0-1.1x (BENCHMARKS.md, "Where a short run's time goes").

The layer is Keras's own (same variables, same config, same saved files);
only `call` takes the fused kernel when the backend is TensorFlow and the
input is a 4-D channels-last tensor without a mask. Everything else, and every
other backend, goes through Keras's implementation.
"""

import keras
from keras import layers


@keras.saving.register_keras_serializable(package="rzs")
class BatchNormalization(layers.BatchNormalization):
    """`keras.layers.BatchNormalization` with a fused TensorFlow kernel for images.

    Outputs and moving statistics are Keras's up to float rounding
    (`moving = momentum * moving + (1 - momentum) * batch`, with the biased
    batch variance); statistics are computed in float32 whatever the dtype
    policy, as Keras does.
    """

    def call(self, inputs, training=None, mask=None):
        if not self._fusable(inputs, mask):
            return super().call(inputs, training=training, mask=mask)
        import tensorflow as tf  # the backend is TensorFlow, so it is loaded

        x = tf.cast(inputs, "float32")
        channels = x.shape[-1]
        scale = self.gamma if self.scale else tf.ones([channels])
        offset = self.beta if self.center else tf.zeros([channels])
        if training and self.trainable:
            outputs, mean, variance, *_ = tf.raw_ops.FusedBatchNormV3(
                x=x,
                scale=scale,
                offset=offset,
                mean=tf.constant([], "float32"),
                variance=tf.constant([], "float32"),
                epsilon=self.epsilon,
                data_format="NHWC",
                is_training=True,
            )
            # The kernel returns the unbiased variance; Keras keeps the biased one.
            count = tf.cast(tf.reduce_prod(tf.shape(x)[:3]), "float32")
            variance = variance * (count - 1.0) / count
            self.moving_mean.assign(
                self.moving_mean * self.momentum + mean * (1.0 - self.momentum)
            )
            self.moving_variance.assign(
                self.moving_variance * self.momentum + variance * (1.0 - self.momentum)
            )
        else:
            outputs, *_ = tf.raw_ops.FusedBatchNormV3(
                x=x,
                scale=scale,
                offset=offset,
                mean=self.moving_mean,
                variance=self.moving_variance,
                epsilon=self.epsilon,
                data_format="NHWC",
                is_training=False,
            )
        return tf.cast(outputs, self.compute_dtype)

    def _fusable(self, inputs, mask):
        return (
            keras.backend.backend() == "tensorflow"
            and mask is None
            and not self.renorm
            and not self.synchronized
            and len(inputs.shape) == 4
            and self.axis in (-1, 3)
        )
