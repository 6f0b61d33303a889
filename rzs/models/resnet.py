"""Pre-activation ResNet-32 (He et al., 2016) as trained by Kotyan et al."""

from rzs.models import blocks
from rzs.models.recipe import Recipe, authors_sgd_source, piecewise
from rzs.models.registry import kernel_regularizer, register, scaled

RECIPE = Recipe(
    schedule=piecewise([80, 150], [0.1, 0.01, 0.001]),
    source=authors_sgd_source("resnet.py", "lr 0.1 for epoch < 80, 0.01 for < 150, then 0.001; L2 1e-4"),
)

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
    return blocks.pooled_classifier(x, num_classes, regularizer)
