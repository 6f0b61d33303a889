"""Capsule network with dynamic routing (Sabour et al., 2017), as Kotyan et al. use it.

The inference model follows the rzs contract: its output is the length of
each class capsule, normalised so that every row sums to 1. Training uses
the raw lengths with the margin loss plus a reconstruction loss, through the
model returned by `training_setup`.
"""

import math

import keras
from keras import layers, ops

from rzs.models.recipe import AUTHORS_AUGMENTATION, Recipe
from rzs.models.registry import kernel_regularizer, register, scaled

RECIPE = Recipe(
    optimizer="adam",
    learning_rate=1e-3,
    schedule={"kind": "exponential", "decay_epochs": 10},
    epochs=50,
    weight_decay=0.0,
    loss="margin",
    source=(
        "Authors' code (RepresentationMetrics, networks/cifar/capsnet.py): Adam "
        "lr 1e-3 x exp(-epoch / 10); 50 epochs (hard-coded in fit_model); batch "
        "64 (run.py default); no weight decay (no regularizer in their CapsNet); "
        f"margin loss plus 0.1 x MSE reconstruction loss. {AUTHORS_AUGMENTATION}"
    ),
)

CONV_FILTERS = 256
PRIMARY_CAPSULE_TYPES = 32
PRIMARY_CAPSULE_DIM = 8
CLASS_CAPSULE_DIM = 16
ROUTING_ITERATIONS = 3
DECODER_UNITS = (512, 1024)
RECONSTRUCTION_WEIGHT = 0.1


def squash(vectors, axis=-1):
    """Rescales vectors to length |s|^2 / (1 + |s|^2), keeping their direction."""
    squared_norm = ops.sum(ops.square(vectors), axis=axis, keepdims=True)
    norm = ops.sqrt(squared_norm + keras.config.epsilon())
    return vectors * (squared_norm / (1.0 + squared_norm) / norm)


@keras.saving.register_keras_serializable(package="rzs")
class Squash(layers.Layer):
    """The capsule non-linearity `squash` as a layer."""

    def call(self, inputs):
        return squash(inputs)


@keras.saving.register_keras_serializable(package="rzs")
class ClassCapsules(layers.Layer):
    """Capsules computed from input capsules by routing-by-agreement.

    Every input capsule i predicts every output capsule j through its own
    matrix, u_hat[i, j] = u[i] W[i, j]. Each output capsule is the squashed
    sum of the predictions weighted by coupling coefficients, a softmax over
    j of routing logits that start at zero and grow by the agreement
    <u_hat[i, j], v[j]> at every iteration (Sabour et al., 2017, Procedure 1).

    Args:
        num_capsules: number of output capsules (one per class).
        capsule_dim: dimension of each output capsule.
        routing_iterations: number of routing iterations, at least 1.
        kernel_initializer: initialiser of the prediction matrices.
        kernel_regularizer: optional regulariser of the prediction matrices.

    Input shape: (batch, input_capsules, input_dim).
    Output shape: (batch, num_capsules, capsule_dim).
    """

    def __init__(
        self,
        num_capsules,
        capsule_dim,
        routing_iterations=3,
        kernel_initializer="glorot_uniform",
        kernel_regularizer=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if routing_iterations < 1:
            raise ValueError(
                "routing_iterations must be at least 1, "
                f"received {routing_iterations}."
            )
        self.num_capsules = num_capsules
        self.capsule_dim = capsule_dim
        self.routing_iterations = routing_iterations
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)

    def build(self, input_shape):
        _, input_capsules, input_dim = input_shape
        self.kernel = self.add_weight(
            shape=(input_capsules, self.num_capsules, input_dim, self.capsule_dim),
            initializer=self.kernel_initializer,
            regularizer=self.kernel_regularizer,
            name="kernel",
        )

    def call(self, inputs):
        predictions = ops.einsum("bid,ijde->bije", inputs, self.kernel)
        # Routing starts afresh for every image. The authors' code instead
        # accumulates the logits in a variable shared by all batches, which
        # makes a prediction depend on the images seen before it.
        routing_logits = ops.zeros_like(predictions[..., 0])
        for iteration in range(self.routing_iterations):
            coupling = ops.softmax(routing_logits, axis=2)
            outputs = squash(ops.einsum("bij,bije->bje", coupling, predictions))
            if iteration < self.routing_iterations - 1:
                agreement = ops.einsum("bije,bje->bij", predictions, outputs)
                routing_logits = routing_logits + agreement
        return outputs

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.num_capsules, self.capsule_dim)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_capsules": self.num_capsules,
                "capsule_dim": self.capsule_dim,
                "routing_iterations": self.routing_iterations,
                "kernel_initializer": keras.initializers.serialize(
                    self.kernel_initializer
                ),
                "kernel_regularizer": keras.regularizers.serialize(
                    self.kernel_regularizer
                ),
            }
        )
        return config


@keras.saving.register_keras_serializable(package="rzs")
class CapsuleLength(layers.Layer):
    """Euclidean length of each capsule: (batch, capsules, dim) -> (batch, capsules)."""

    def call(self, inputs):
        # The epsilon keeps the gradient finite for an all-zero capsule.
        return ops.sqrt(ops.sum(ops.square(inputs), axis=-1) + keras.config.epsilon())

    def compute_output_shape(self, input_shape):
        return input_shape[:-1]


@keras.saving.register_keras_serializable(package="rzs")
class SumToOne(layers.Layer):
    """Divides each row of positive scores by its sum.

    Capsule lengths are independent per class, so they are normalised into
    the probability rows that attacks and Raw Zero-Shot soft labels expect.
    """

    def call(self, inputs):
        return inputs / ops.sum(inputs, axis=-1, keepdims=True)


@keras.saving.register_keras_serializable(package="rzs")
class SelectCapsule(layers.Layer):
    """The capsule of the labelled class, the input of the reconstruction decoder.

    Takes `[capsules, one_hot_labels]` of shapes (batch, classes, dim) and
    (batch, classes) and returns (batch, dim). Like the authors' code, the
    decoder sees only the selected 16-D capsule rather than Sabour et al.'s
    masked (classes x 16)-D vector.
    """

    def call(self, inputs):
        capsules, one_hot_labels = inputs
        return ops.einsum(
            "bje,bj->be", capsules, ops.cast(one_hot_labels, capsules.dtype)
        )

    def compute_output_shape(self, input_shape):
        capsules_shape, _ = input_shape
        return (capsules_shape[0], capsules_shape[2])


@keras.saving.register_keras_serializable(package="rzs")
class ReconstructionLoss(layers.Layer):
    """Adds `weight` x MSE(pixels / 255, reconstruction) and passes `outputs` on.

    Takes `[outputs, pixels, reconstruction]`. Returning `outputs` unchanged
    puts the decoder on the path to the training model's output, so the loss
    is computed at every training step (the "endpoint layer" pattern of the
    Keras guides).
    """

    def __init__(self, weight=RECONSTRUCTION_WEIGHT, **kwargs):
        super().__init__(**kwargs)
        self.weight = weight

    def call(self, inputs):
        outputs, pixels, reconstruction = inputs
        # In float32 even under mixed precision: the loss is a tiny mean.
        target = ops.cast(pixels, "float32") / 255.0
        error = target - ops.cast(reconstruction, "float32")
        self.add_loss(self.weight * ops.mean(ops.square(error)))
        return outputs

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        config = super().get_config()
        config.update({"weight": self.weight})
        return config


@keras.saving.register_keras_serializable(package="rzs")
def margin_loss(y_true, y_pred):
    """Sabour et al.'s margin loss on capsule lengths: m+ 0.9, m- 0.1, lambda 0.5."""
    y_true = ops.cast(y_true, y_pred.dtype)
    present = y_true * ops.square(ops.relu(0.9 - y_pred))
    absent = 0.5 * (1.0 - y_true) * ops.square(ops.relu(y_pred - 0.1))
    return ops.sum(present + absent, axis=-1)


def training_setup(model, num_classes):
    """The CapsNet training model: raw capsule lengths, margin loss, reconstruction.

    Args:
        model: a model from `build_model("capsnet", ...)`.
        num_classes: its number of classes.

    Returns:
        `(training_model, margin_loss)`. `training_model` maps
        `{"pixels": images, "labels": one_hot_labels}` to the class capsule
        lengths and adds 0.1 x the mean squared error between pixels / 255
        and a 512-1024-(H*W*C) sigmoid decoder's reconstruction from the
        labelled class capsule. It shares every layer of `model`.
    """
    capsules = model.get_layer("class_capsules").output
    if capsules.shape[1] != num_classes:
        raise ValueError(
            f"num_classes must match the model's {capsules.shape[1]} class "
            f"capsules, received {num_classes}."
        )
    pixels = model.input
    image_shape = tuple(pixels.shape[1:])
    # The decoder is scaled and regularised like the network it trains.
    first_convolution = model.get_layer("capsnet_conv")
    width = first_convolution.filters / CONV_FILTERS
    regularizer = first_convolution.kernel_regularizer

    labels = keras.Input(shape=(num_classes,), name="labels")
    x = SelectCapsule(name="select_capsule")([capsules, labels])
    for units in DECODER_UNITS:
        x = layers.Dense(
            scaled(units, width), activation="relu", kernel_regularizer=regularizer
        )(x)
    x = layers.Dense(
        math.prod(image_shape), activation="sigmoid", kernel_regularizer=regularizer
    )(x)
    reconstruction = layers.Reshape(image_shape, name="reconstruction")(x)
    lengths = ReconstructionLoss(RECONSTRUCTION_WEIGHT, name="reconstruction_loss")(
        [model.get_layer("capsule_lengths").output, pixels, reconstruction]
    )
    training_model = keras.Model(
        {"pixels": pixels, "labels": labels}, lengths, name=f"{model.name}_training"
    )
    return training_model, margin_loss


@register("capsnet", recipe=RECIPE, training_setup=training_setup)
def capsnet(inputs, num_classes, *, width, weight_decay):
    """CapsNet: conv 256@8x8, primary capsules, 16-D class capsules by routing.

    A ReLU convolution of 256 filters 8x8 ("valid"; Sabour et al. use 9x9,
    the authors' code 8x8), then a 256-filter 9x9 stride-2 convolution read
    as 32 types of 8-D primary capsules per position (32x32 inputs: 9x9x32 =
    2592 capsules; 28x28: 7x7x32 = 1568), squashed, then one 16-D capsule
    per class after 3 routing iterations. Like the authors' code it uses
    Keras' default glorot-uniform initialiser and no batch normalisation.
    The output is the class capsule lengths normalised to sum 1.
    """
    regularizer = kernel_regularizer(weight_decay)
    capsule_types = scaled(PRIMARY_CAPSULE_TYPES, width)
    x = layers.Conv2D(
        scaled(CONV_FILTERS, width),
        8,
        activation="relu",
        kernel_regularizer=regularizer,
        name="capsnet_conv",
    )(inputs)
    x = layers.Conv2D(
        capsule_types * PRIMARY_CAPSULE_DIM,
        9,
        strides=2,
        kernel_regularizer=regularizer,
        name="primary_capsules_conv",
    )(x)
    x = layers.Reshape((-1, PRIMARY_CAPSULE_DIM), name="primary_capsules")(x)
    x = Squash(name="primary_squash")(x)
    capsules = ClassCapsules(
        num_classes,
        CLASS_CAPSULE_DIM,
        routing_iterations=ROUTING_ITERATIONS,
        kernel_regularizer=regularizer,
        name="class_capsules",
    )(x)
    lengths = CapsuleLength(name="capsule_lengths")(capsules)
    return SumToOne(dtype="float32", name="probabilities")(lengths)
