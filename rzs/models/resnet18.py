"""ResNet-18 (He et al., 2016) with a CIFAR stem; an rzs addition."""

from keras import layers

from rzs.models import normalization
from rzs.models.recipe import RZS_SGD_SOURCE, Recipe
from rzs.models.registry import kernel_regularizer, probabilities, register, scaled

RECIPE = Recipe(weight_decay=2.5e-4, source=RZS_SGD_SOURCE.format(network="ResNet-18"))

STAGE_FILTERS = (64, 128, 256, 512)
BLOCKS_PER_STAGE = 2


@register("resnet18", recipe=RECIPE)
def resnet18(inputs, num_classes, *, width, weight_decay):
    """ResNet-18: 4 stages of 2 basic blocks, 64/128/256/512 filters.

    Original (post-activation) basic blocks, conv3x3-BN-ReLU-conv3x3-BN plus
    the input (a 1x1 convolution and BN when the shape changes), then ReLU.
    The ImageNet stem (7x7 stride-2 convolution and max pooling) is replaced
    by a 3x3 stride-1 convolution, as is usual for 32x32 images, so stages
    work at 32, 16, 8 and 4 pixels.
    """
    regularizer = kernel_regularizer(weight_decay)

    def conv_bn(x, filters, kernel_size, strides=1):
        x = layers.Conv2D(
            filters,
            kernel_size,
            strides=strides,
            padding="same",
            use_bias=False,
            kernel_initializer="he_normal",
            kernel_regularizer=regularizer,
        )(x)
        return normalization.BatchNormalization()(x)

    def basic_block(x, filters, strides):
        residual = conv_bn(x, filters, 3, strides=strides)
        residual = layers.ReLU()(residual)
        residual = conv_bn(residual, filters, 3)
        if strides == 1 and x.shape[-1] == filters:
            shortcut = x
        else:
            shortcut = conv_bn(x, filters, 1, strides=strides)
        return layers.ReLU()(layers.Add()([residual, shortcut]))

    x = layers.ReLU()(conv_bn(inputs, scaled(STAGE_FILTERS[0], width), 3))
    for stage, filters in enumerate(STAGE_FILTERS):
        for block in range(BLOCKS_PER_STAGE):
            strides = 2 if stage > 0 and block == 0 else 1
            x = basic_block(x, scaled(filters, width), strides)
    x = layers.GlobalAveragePooling2D()(x)
    logits = layers.Dense(
        num_classes, kernel_initializer="he_normal", kernel_regularizer=regularizer
    )(x)
    return probabilities(logits)
