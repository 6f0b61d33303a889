"""The All Convolutional Net (Springenberg et al., 2015) as trained by Kotyan et al."""

from keras import layers

from rzs.models import blocks
from rzs.models.recipe import AUTHORS_AUGMENTATION, Recipe
from rzs.models.registry import kernel_regularizer, probabilities, register, scaled

RECIPE = Recipe(
    optimizer="adam",
    learning_rate=1e-4,
    schedule={"kind": "constant"},
    source=(
        "Authors' code (RepresentationMetrics, networks/cifar/all_conv.py): "
        f"Adam lr 1e-4, constant; L2 1e-4; 200 epochs, batch 64 (run.py defaults). {AUTHORS_AUGMENTATION}"
    ),
)


@register("allconv", recipe=RECIPE)
def allconv(inputs, num_classes, *, width, weight_decay):
    """All-CNN-C: 3x3 convolutions only, strided convolutions instead of pooling.

    96-96-96(stride 2)-192-192-192(stride 2)-192-192(1x1)-N(1x1), ReLU, no
    batch normalisation, then global average pooling of the N class maps.
    As in the authors' code (`networks/cifar/all_conv.py`), dropout 0.2
    follows the first convolution (the original paper drops the input
    instead), dropout 0.5 follows each strided convolution, and the class
    maps pass through a ReLU before being averaged into logits.
    """
    regularizer = kernel_regularizer(weight_decay)

    def conv_relu(x, filters, kernel_size=3, strides=1):
        return layers.ReLU()(blocks.conv(x, filters, regularizer, kernel_size, strides))

    narrow, wide = scaled(96, width), scaled(192, width)
    x = conv_relu(inputs, narrow)
    x = layers.Dropout(0.2)(x)
    x = conv_relu(x, narrow)
    x = conv_relu(x, narrow, strides=2)
    x = layers.Dropout(0.5)(x)
    x = conv_relu(x, wide)
    x = conv_relu(x, wide)
    x = conv_relu(x, wide, strides=2)
    x = layers.Dropout(0.5)(x)
    x = conv_relu(x, wide)
    x = conv_relu(x, wide, kernel_size=1)
    x = conv_relu(x, num_classes, kernel_size=1)
    logits = layers.GlobalAveragePooling2D()(x)
    return probabilities(logits)
