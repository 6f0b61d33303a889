"""VGG-16 and VGG-19 (Simonyan & Zisserman, 2015) as Kotyan et al. train them."""

from keras import layers

from rzs.models import blocks, normalization
from rzs.models.recipe import Recipe, authors_sgd_source, piecewise
from rzs.models.registry import kernel_regularizer, probabilities, register, scaled

RECIPE = Recipe(
    schedule=piecewise([80, 160], [0.1, 0.01, 0.001]),
    weight_decay=5e-4,
    source=authors_sgd_source("vgg.py", "lr 0.1 for epoch < 80, 0.01 for < 160, then 0.001; L2 5e-4"),
)

BLOCK_FILTERS = (64, 128, 256, 512, 512)


def vgg(inputs, num_classes, *, convolutions_per_block, width, weight_decay):
    """VGG with batch normalisation, global average pooling and one FC-512 layer.

    Five blocks of conv3x3-BN-ReLU layers with 64/128/256/512/512 filters,
    dropout 0.4 between the convolutions of a block and 2x2 max pooling
    after it; then global average pooling, FC-512-BN-ReLU, dropout 0.5 and
    the classifier, as in the authors' code (`networks/cifar/vgg.py`).
    Pooling uses "same" padding so that 28x28 inputs keep a 1x1 map after
    the fifth block (28-14-7-4-2-1); for 32x32 inputs it changes nothing.
    """
    regularizer = kernel_regularizer(weight_decay)
    x = inputs
    for filters, convolutions in zip(BLOCK_FILTERS, convolutions_per_block):
        for index in range(convolutions):
            x = blocks.conv(x, scaled(filters, width), regularizer)
            x = normalization.BatchNormalization()(x)
            x = layers.ReLU()(x)
            if index < convolutions - 1:
                x = layers.Dropout(0.4)(x)
        x = layers.MaxPooling2D(2, padding="same")(x)
    x = layers.GlobalAveragePooling2D()(x)
    x = blocks.dense(x, scaled(512, width), regularizer)
    x = normalization.BatchNormalization()(x)
    x = layers.ReLU()(x)
    x = layers.Dropout(0.5)(x)
    # The authors leave the classifier with Keras' default initialiser and no
    # weight decay.
    logits = layers.Dense(num_classes)(x)
    return probabilities(logits)


@register("vgg16", recipe=RECIPE)
def vgg16(inputs, num_classes, *, width, weight_decay):
    """VGG-16: 2, 2, 3, 3 and 3 convolutions per block (see `vgg`)."""
    return vgg(inputs, num_classes, convolutions_per_block=(2, 2, 3, 3, 3), width=width, weight_decay=weight_decay)


@register("vgg19", recipe=RECIPE)
def vgg19(inputs, num_classes, *, width, weight_decay):
    """VGG-19: 2, 2, 4, 4 and 4 convolutions per block (see `vgg`)."""
    return vgg(inputs, num_classes, convolutions_per_block=(2, 2, 4, 4, 4), width=width, weight_decay=weight_decay)
