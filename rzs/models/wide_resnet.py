"""Wide ResNet WRN-16-8 (Zagoruyko & Komodakis, 2016) as trained by Kotyan et al."""


from rzs.models import blocks
from rzs.models.recipe import Recipe, authors_sgd_source, piecewise
from rzs.models.registry import kernel_regularizer, register, scaled

RECIPE = Recipe(
    schedule=piecewise([61, 121, 161], [0.1, 0.02, 0.004, 0.0008]),
    weight_decay=5e-4,
    source=authors_sgd_source("wide_resnet.py", "lr 0.1 for epoch <= 60, 0.02 for <= 120, 0.004 for <= 160, then 0.0008; L2 5e-4"),
)

DEPTH = 16
WIDENING_FACTOR = 8
STAGE_FILTERS = (16, 32, 64)


@register("wide_resnet", recipe=RECIPE)
def wide_resnet(inputs, num_classes, *, width, weight_decay):
    """WRN-16-8: a 16-filter 3x3 stem and 3 stages of 2 pre-activation blocks.

    Stages have 128/256/512 filters (16/32/64 widened 8 times) and the
    second and third start with stride 2. Every block adds a 1x1 projection
    of its input rather than the input itself: the authors' code
    (`networks/cifar/wide_resnet.py`) projects whenever the block has other
    than 16 filters, which is every block of WRN-16-8, so we keep those
    projections to reproduce the network they trained.
    """
    regularizer = kernel_regularizer(weight_decay)
    blocks_per_stage = (DEPTH - 4) // 6
    x = blocks.conv(inputs, scaled(STAGE_FILTERS[0], width), regularizer)
    for stage, filters in enumerate(STAGE_FILTERS):
        for block in range(blocks_per_stage):
            strides = 2 if stage > 0 and block == 0 else 1
            x = blocks.preactivation_block(
                x,
                scaled(filters * WIDENING_FACTOR, width),
                strides,
                regularizer,
                project_shortcut=True,
            )
    return blocks.pooled_classifier(x, num_classes, regularizer)
