"""DenseNet-BC-100, growth rate 12 (Huang et al., 2017), as trained by Kotyan et al."""

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
        "boundaries": [76, 151],
        "values": [0.1, 0.01, 0.001],
    },
    "epochs": 200,
    "batch_size": 64,
    "weight_decay": 1e-4,
    "loss": "categorical_crossentropy",
    "augmentation": True,
    "source": (
        "Authors' code (RepresentationMetrics, networks/cifar/densenet.py and "
        "networks/model.py): SGD momentum 0.9 Nesterov; lr 0.1 for epoch <= 75, "
        "0.01 for <= 150, then 0.001; L2 1e-4; 200 epochs, batch 64 (run.py "
        "defaults). Augmentation (flip + 1/8 shifts) is the authors' optional "
        "--augmentation flag, switched on here."
    ),
}

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
        return layers.Conv2D(
            filters,
            kernel_size,
            padding="same",
            use_bias=False,
            kernel_initializer="he_normal",
            kernel_regularizer=regularizer,
        )(x)

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
    x = normalization.BatchNormalization()(x)
    x = layers.ReLU()(x)
    x = layers.GlobalAveragePooling2D()(x)
    logits = layers.Dense(
        num_classes, kernel_initializer="he_normal", kernel_regularizer=regularizer
    )(x)
    return probabilities(logits)
