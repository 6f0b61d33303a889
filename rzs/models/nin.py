"""Network in Network (Lin et al., 2014) as trained by Kotyan et al."""

from keras import layers

from rzs.models import blocks, normalization
from rzs.models.recipe import Recipe, authors_sgd_source, piecewise
from rzs.models.registry import kernel_regularizer, probabilities, register, scaled

RECIPE = Recipe(
    learning_rate=0.05,
    schedule=piecewise([61, 121, 161], [0.05, 0.01, 0.002, 0.0004]),
    source=authors_sgd_source("network_in_network.py", "lr 0.05 for epoch <= 60, 0.01 for <= 120, 0.002 for <= 160, then 0.0004; L2 1e-4"),
)


@register("nin", recipe=RECIPE)
def nin(inputs, num_classes, *, width, weight_decay):
    """Network in Network: three "mlpconv" blocks and global average pooling.

    Blocks 192@5x5-160@1x1-96@1x1, 192@5x5-192@1x1-192@1x1 and
    192@3x3-192@1x1-N@1x1, each convolution followed by batch normalisation
    and ReLU; the first two blocks end with 3x3 max pooling (stride 2) and
    dropout 0.5. The N class maps are averaged into logits, after their
    ReLU, exactly as in the authors' code (`networks/cifar/network_in_network.py`).
    """
    regularizer = kernel_regularizer(weight_decay)

    def mlpconv(x, filters, kernel_size):
        for index, channels in enumerate(filters):
            x = blocks.conv(x, channels, regularizer, kernel_size if index == 0 else 1)
            x = normalization.BatchNormalization()(x)
            x = layers.ReLU()(x)
        return x

    x = mlpconv(inputs, [scaled(c, width) for c in (192, 160, 96)], kernel_size=5)
    x = layers.MaxPooling2D(3, strides=2, padding="same")(x)
    x = layers.Dropout(0.5)(x)
    x = mlpconv(x, [scaled(c, width) for c in (192, 192, 192)], kernel_size=5)
    x = layers.MaxPooling2D(3, strides=2, padding="same")(x)
    x = layers.Dropout(0.5)(x)
    x = mlpconv(x, [scaled(192, width), scaled(192, width), num_classes], kernel_size=3)
    logits = layers.GlobalAveragePooling2D()(x)
    return probabilities(logits)
