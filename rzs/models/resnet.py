"""Pre-activation ResNet-32 (He et al., 2016) as trained by Kotyan et al."""

from keras import layers

from rzs.models import blocks, normalization
from rzs.models.registry import kernel_regularizer, probabilities, register, scaled

RECIPE = {
    "optimizer": "sgd",
    "momentum": 0.9,
    "nesterov": True,
    "learning_rate": 0.1,
    "schedule": {
        "kind": "piecewise",
        "boundaries": [80, 150],
        "values": [0.1, 0.01, 0.001],
    },
    "epochs": 200,
    "batch_size": 64,
    "weight_decay": 1e-4,
    "loss": "categorical_crossentropy",
    "augmentation": True,
    "source": (
        "Authors' code (RepresentationMetrics, networks/cifar/resnet.py and "
        "networks/model.py): SGD momentum 0.9 Nesterov; lr 0.1 for epoch < 80, "
        "0.01 for < 150, then 0.001; L2 1e-4; 200 epochs, batch 64 (run.py "
        "defaults). Augmentation (flip + 1/8 shifts) is the authors' optional "
        "--augmentation flag, switched on here."
    ),
}

BLOCKS_PER_STAGE = 5
STAGE_FILTERS = (16, 32, 64)


@register("resnet", recipe=RECIPE)
def resnet(inputs, num_classes, *, width, weight_decay):
    """Pre-activation ResNet-32 for CIFAR: 3 stages of 5 basic blocks, 16/32/64 filters.

    Each block is BN-ReLU-conv3x3-BN-ReLU-conv3x3 plus its input; the first
    block of stages 2 and 3 halves the resolution with a stride-2 convolution
    and a 1x1 stride-2 projection of the (not pre-activated) input, as in the
    authors' code (`networks/cifar/resnet.py`). A final BN-ReLU precedes
    global average pooling.
    """
    regularizer = kernel_regularizer(weight_decay)
    x = blocks.conv(inputs, scaled(STAGE_FILTERS[0], width), regularizer)
    for stage, filters in enumerate(STAGE_FILTERS):
        for block in range(BLOCKS_PER_STAGE):
            strides = 2 if stage > 0 and block == 0 else 1
            x = blocks.preactivation_block(
                x, scaled(filters, width), strides, regularizer, project_shortcut=strides != 1
            )
    x = normalization.BatchNormalization()(x)
    x = layers.ReLU()(x)
    x = layers.GlobalAveragePooling2D()(x)
    logits = layers.Dense(
        num_classes, kernel_initializer="he_normal", kernel_regularizer=regularizer
    )(x)
    return probabilities(logits)
