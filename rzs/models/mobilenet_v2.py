"""MobileNetV2 (Sandler et al., 2018) adapted to 32x32 images; an rzs addition."""

from keras import layers

from rzs.models import blocks, normalization
from rzs.models.recipe import RZS_SGD_SOURCE, Recipe
from rzs.models.registry import kernel_regularizer, probabilities, register, scaled

RECIPE = Recipe(weight_decay=2.5e-4, source=RZS_SGD_SOURCE.format(network="MobileNetV2"))

# (expansion, output filters, blocks, stride of the first block): Sandler et
# al.'s Table 2, with the second stage at stride 1 as in CIFAR versions.
INVERTED_RESIDUAL_STAGES = (
    (1, 16, 1, 1),
    (6, 24, 2, 1),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)


@register("mobilenet_v2", recipe=RECIPE)
def mobilenet_v2(inputs, num_classes, *, width, weight_decay):
    """MobileNetV2 with a stride-1 stem for 32x32 (and 28x28) images.

    A 32-filter 3x3 stem, 17 inverted residual blocks (1x1 expansion,
    3x3 depthwise, linear 1x1 projection, each with BN and ReLU6 but the
    last, plus the input when shapes match) and a 1280-filter 1x1 head
    before global average pooling. ImageNet's first two stride-2 layers
    (stem and second stage) use stride 1 here so that 32x32 inputs end at
    4x4 rather than 1x1; `width` is the paper's width multiplier.
    """
    regularizer = kernel_regularizer(weight_decay)

    def conv_bn(x, filters, kernel_size, activation=True):
        x = normalization.BatchNormalization()(blocks.conv(x, filters, regularizer, kernel_size, use_bias=False))
        return layers.ReLU(max_value=6.0)(x) if activation else x

    def inverted_residual_block(x, expansion, filters, strides):
        input_filters = x.shape[-1]
        residual = x
        if expansion != 1:
            residual = conv_bn(residual, input_filters * expansion, 1)
        # No weight decay on depthwise kernels, which hold very few weights
        # (Howard et al., 2017, MobileNets, section 4).
        residual = layers.DepthwiseConv2D(
            3,
            strides=strides,
            padding="same",
            use_bias=False,
            depthwise_initializer="he_normal",
        )(residual)
        residual = normalization.BatchNormalization()(residual)
        residual = layers.ReLU(max_value=6.0)(residual)
        residual = conv_bn(residual, filters, 1, activation=False)
        if strides == 1 and input_filters == filters:
            return layers.Add()([x, residual])
        return residual

    x = conv_bn(inputs, scaled(32, width), 3)
    for expansion, filters, repeats, first_strides in INVERTED_RESIDUAL_STAGES:
        for block in range(repeats):
            strides = first_strides if block == 0 else 1
            x = inverted_residual_block(x, expansion, scaled(filters, width), strides)
    x = conv_bn(x, scaled(1280, width), 1)
    x = layers.GlobalAveragePooling2D()(x)
    logits = layers.Dense(
        num_classes, kernel_initializer="he_normal", kernel_regularizer=regularizer
    )(x)
    return probabilities(logits)
