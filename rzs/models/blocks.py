"""Building blocks shared by several of the study's networks."""

from keras import layers

from rzs.models import normalization
from rzs.models.registry import probabilities


def conv(x, filters, regularizer, kernel_size=3, strides=1, padding="same", use_bias=True):
    """A he_normal-initialised convolution with L2 on its kernel, as every network of the authors'."""
    return layers.Conv2D(
        filters,
        kernel_size,
        strides=strides,
        padding=padding,
        use_bias=use_bias,
        kernel_initializer="he_normal",
        kernel_regularizer=regularizer,
    )(x)


def dense(x, units, regularizer):
    """A he_normal-initialised fully connected layer with L2 on its kernel."""
    return layers.Dense(units, kernel_initializer="he_normal", kernel_regularizer=regularizer)(x)


def classifier(x, num_classes, regularizer):
    """The class probabilities from a dense layer of `num_classes` logits."""
    return probabilities(dense(x, num_classes, regularizer))


def pooled_classifier(x, num_classes, regularizer):
    """BN-ReLU, global average pooling, then `classifier`: the head of the pre-activation networks."""
    x = normalization.BatchNormalization()(x)
    x = layers.ReLU()(x)
    x = layers.GlobalAveragePooling2D()(x)
    return classifier(x, num_classes, regularizer)


def preactivation_block(x, filters, strides, regularizer, project_shortcut):
    """BN-ReLU-conv3x3-BN-ReLU-conv3x3 plus the block's input (He et al., 2016).

    `project_shortcut` adds a 1x1 convolution (with the block's stride) on the
    shortcut instead of the identity; the authors' ResNet projects only where
    the resolution halves, their WRN in every block.
    """
    residual = normalization.BatchNormalization()(x)
    residual = layers.ReLU()(residual)
    residual = conv(residual, filters, regularizer, strides=strides)
    residual = normalization.BatchNormalization()(residual)
    residual = layers.ReLU()(residual)
    residual = conv(residual, filters, regularizer)
    shortcut = conv(x, filters, regularizer, 1, strides=strides) if project_shortcut else x
    return layers.Add()([residual, shortcut])
