"""LeNet-5 as trained by Kotyan et al., with batch normalisation."""

from keras import layers

from rzs.models import blocks, normalization
from rzs.models.recipe import Recipe, authors_sgd_source, piecewise
from rzs.models.registry import kernel_regularizer, register, scaled

RECIPE = Recipe(
    learning_rate=0.01,
    schedule=piecewise([100, 150], [0.01, 0.005, 0.001]),
    source=authors_sgd_source("lenet.py", "lr 0.01 for epoch < 100, 0.005 for epoch < 150, then 0.001; L2 1e-4"),
)


@register("lenet", recipe=RECIPE)
def lenet(inputs, num_classes, *, width, weight_decay):
    """LeNet-5: conv6 5x5, pool, conv16 5x5, pool, FC120, FC84, FC N.

    The authors' variant (Kotyan et al., 2022, code `networks/cifar/lenet.py`)
    adds batch normalisation before every ReLU and uses ReLU and max pooling
    instead of LeCun's squashing function and subsampling. Valid convolutions
    leave a 5x5 map for 32x32 inputs and a 4x4 one for 28x28 inputs.
    """
    regularizer = kernel_regularizer(weight_decay)
    x = inputs
    for filters in (6, 16):
        x = blocks.conv(x, scaled(filters, width), regularizer, kernel_size=5, padding="valid")
        x = normalization.BatchNormalization()(x)
        x = layers.ReLU()(x)
        x = layers.MaxPooling2D(2)(x)
    x = layers.Flatten()(x)
    for units in (120, 84):
        x = blocks.dense(x, scaled(units, width), regularizer)
        x = normalization.BatchNormalization()(x)
        x = layers.ReLU()(x)
    return blocks.classifier(x, num_classes, regularizer)
