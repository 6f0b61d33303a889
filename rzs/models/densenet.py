"""DenseNet-BC-100, growth rate 12 (Huang et al., 2017), as trained by Kotyan et al."""

from keras import layers

from rzs.models import blocks, normalization
from rzs.models.recipe import Recipe, authors_sgd_source, piecewise
from rzs.models.registry import kernel_regularizer, register, scaled

RECIPE = Recipe(
    schedule=piecewise([76, 151], [0.1, 0.01, 0.001]),
    source=authors_sgd_source("densenet.py", "lr 0.1 for epoch <= 75, 0.01 for <= 150, then 0.001; L2 1e-4"),
)

DEPTH = 100
GROWTH_RATE = 12
COMPRESSION = 0.5


@register("densenet", recipe=RECIPE)
def densenet(inputs, num_classes, *, width, weight_decay):
    """DenseNet-BC-100 with growth rate 12 and compression 0.5.

    Three dense blocks of 16 bottleneck layers (BN-ReLU-conv1x1 to 4k
    channels, BN-ReLU-conv3x3 to k channels, concatenated to the block's
    input), each followed by a transition (BN-ReLU-conv1x1 halving the
    channels, 2x2 average pooling). As in the authors' code
    (`networks/cifar/densenet.py`), the third dense block is also followed
    by a transition, which the original network does not have, before the
    final BN-ReLU and global average pooling.
    """
    regularizer = kernel_regularizer(weight_decay)
    growth_rate = scaled(GROWTH_RATE, width)
    layers_per_block = (DEPTH - 4) // 6

    def bn_relu_conv(x, filters, kernel_size):
        x = normalization.BatchNormalization()(x)
        x = layers.ReLU()(x)
        return blocks.conv(x, filters, regularizer, kernel_size, use_bias=False)

    x = layers.Conv2D(
        2 * growth_rate,
        3,
        padding="same",
        use_bias=False,
        kernel_initializer="he_normal",
        kernel_regularizer=regularizer,
    )(inputs)
    for _ in range(3):
        for _ in range(layers_per_block):
            new_features = bn_relu_conv(x, 4 * growth_rate, 1)
            new_features = bn_relu_conv(new_features, growth_rate, 3)
            x = layers.Concatenate()([new_features, x])
        x = bn_relu_conv(x, int(x.shape[-1] * COMPRESSION), 1)
        x = layers.AveragePooling2D(2)(x)
    return blocks.pooled_classifier(x, num_classes, regularizer)
