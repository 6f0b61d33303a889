"""MobileNetV2 (Sandler et al., 2018) adapted to 32x32 images; an rzs addition."""

from keras import layers

from rzs.models import normalization
from rzs.models.registry import kernel_regularizer, probabilities, register, scaled

RECIPE = {
    "optimizer": "sgd",
    "momentum": 0.9,
    "nesterov": True,
    "learning_rate": 0.1,
    "schedule": {
        "kind": "piecewise",
        "boundaries": [100, 150],
        "values": [0.1, 0.01, 0.001],
    },
    "epochs": 200,
    "batch_size": 64,
    "weight_decay": 2.5e-4,
    "loss": "categorical_crossentropy",
    "augmentation": True,
    "source": (
        "rzs addition, not in the authors' code. Chosen to match the authors' "
        "SGD networks: SGD momentum 0.9 Nesterov, lr 0.1 divided by 10 at 50% "
        "and 75% of 200 epochs, batch 64. L2 2.5e-4 on Keras' sum-of-squares "
        "scale equals the weight decay 5e-4 common for CIFAR MobileNetV2."
    ),
}

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
        x = layers.Conv2D(
            filters,
            kernel_size,
            padding="same",
            use_bias=False,
            kernel_initializer="he_normal",
            kernel_regularizer=regularizer,
        )(x)
        x = normalization.BatchNormalization()(x)
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
    for expansion, filters, blocks, first_strides in INVERTED_RESIDUAL_STAGES:
        for block in range(blocks):
            strides = first_strides if block == 0 else 1
            x = inverted_residual_block(x, expansion, scaled(filters, width), strides)
    x = conv_bn(x, scaled(1280, width), 1)
    x = layers.GlobalAveragePooling2D()(x)
    logits = layers.Dense(
        num_classes, kernel_initializer="he_normal", kernel_regularizer=regularizer
    )(x)
    return probabilities(logits)
