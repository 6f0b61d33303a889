"""LeNet-5 as trained by Kotyan et al., with batch normalisation."""

from keras import layers

from rzs.models import normalization
from rzs.models.registry import kernel_regularizer, probabilities, register, scaled

RECIPE = {
    "optimizer": "sgd",
    "momentum": 0.9,
    "nesterov": True,
    "learning_rate": 0.01,
    "schedule": {
        "kind": "piecewise",
        "boundaries": [100, 150],
        "values": [0.01, 0.005, 0.001],
    },
    "epochs": 200,
    "batch_size": 64,
    "weight_decay": 1e-4,
    "loss": "categorical_crossentropy",
    "augmentation": True,
    "source": (
        "Authors' code (RepresentationMetrics, networks/cifar/lenet.py and "
        "networks/model.py): SGD momentum 0.9 Nesterov; lr 0.01 for epoch < 100, "
        "0.005 for epoch < 150, then 0.001; L2 1e-4; 200 epochs, batch 64 "
        "(run.py defaults). Augmentation (flip + 1/8 shifts) is the authors' "
        "optional --augmentation flag, switched on here."
    ),
}


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
        x = layers.Conv2D(
            scaled(filters, width),
            5,
            kernel_initializer="he_normal",
            kernel_regularizer=regularizer,
        )(x)
        x = normalization.BatchNormalization()(x)
        x = layers.ReLU()(x)
        x = layers.MaxPooling2D(2)(x)
    x = layers.Flatten()(x)
    for units in (120, 84):
        x = layers.Dense(
            scaled(units, width),
            kernel_initializer="he_normal",
            kernel_regularizer=regularizer,
        )(x)
        x = normalization.BatchNormalization()(x)
        x = layers.ReLU()(x)
    logits = layers.Dense(
        num_classes, kernel_initializer="he_normal", kernel_regularizer=regularizer
    )(x)
    return probabilities(logits)
