"""Name -> builder registry for the study's networks.

Every network module registers one builder with its training recipe (a
`rzs.models.recipe.Recipe`):

    @register("lenet", recipe=RECIPE)
    def lenet(inputs, num_classes, *, width, weight_decay): ...

A builder receives the *standardised* input tensor and returns the class
probabilities; `build_model` wraps it in the contract every part of rzs relies
on: raw pixels as float32 in [0, 255] go in, the model standardises them per
channel itself, and rows of class probabilities (soft labels) come out.
Keeping the preprocessing inside the model means training, Raw Zero-Shot soft
labels, attacks and defences all see the very same function of the pixels.
"""

import dataclasses
from typing import Callable

import keras
from keras import layers

from rzs import registry
from rzs.models.recipe import Recipe
from rzs.models.standardization import Standardization

NETWORKS = registry.Registry("network")


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    name: str
    builder: Callable
    recipe: Recipe
    # Networks trained with something other than cross-entropy on the
    # probabilities (CapsNet: margin loss plus a reconstruction decoder) supply
    # a function (model, num_classes) -> (training_model, loss); see CONTRACTS.md.
    training_setup: Callable | None = None


def register(name, *, recipe, training_setup=None):
    """Decorator that adds a builder to the registry under `name`."""

    def decorator(builder):
        NETWORKS.register(name, ModelSpec(name, builder, recipe, training_setup))
        return builder

    return decorator


def list_models(filter=None, exclude_filters=None):
    """Names of the registered networks in registration order, narrowed by glob patterns if given."""
    _import_builtin_models()
    return NETWORKS.list(filter, exclude_filters)


def get_spec(name) -> ModelSpec:
    _import_builtin_models()
    return NETWORKS.get(name)


def get_recipe(name):
    """The network's training recipe as the dict of its cache key (a fresh copy, safe to modify)."""
    return get_spec(name).recipe.config()


def build_model(
    name,
    input_shape,
    num_classes,
    width=1.0,
    mean=None,
    std=None,
    weight_decay=None,
):
    """Build a registered network as a Keras Functional model.

    Args:
        name: a name from `list_models()`.
        input_shape: (height, width, channels), e.g. (28, 28, 1) or (32, 32, 3).
        num_classes: number of output classes (N, or N-1 for leave-one-out).
        width: multiplier on every channel count (1.0 = the authors' network);
            smaller values make CPU profiles affordable.
        mean, std: per-channel statistics of the training images on the 0-255
            scale used to standardise inputs inside the model. Default 127.5
            and 64 per channel, a neutral choice for untrained tests.
        weight_decay: L2 coefficient on kernels; default the recipe's.

    Returns:
        A `keras.Model` mapping float32 pixels in [0, 255] of shape
        (batch, *input_shape) to (batch, num_classes) probabilities.
    """
    spec = get_spec(name)
    input_shape = tuple(int(size) for size in input_shape)
    if len(input_shape) != 3 or min(input_shape) < 1:
        raise ValueError(
            f"input_shape must be (height, width, channels), received {input_shape}."
        )
    if int(num_classes) < 2:
        raise ValueError(f"num_classes must be at least 2, received {num_classes}.")
    if not width > 0:
        raise ValueError(f"width must be positive, received {width}.")
    channels = input_shape[-1]
    mean = _per_channel(mean if mean is not None else 127.5, channels, "mean")
    std = _per_channel(std if std is not None else 64.0, channels, "std")
    if min(std) <= 0:
        raise ValueError(f"std must be positive in every channel, received {std}.")
    if weight_decay is None:
        weight_decay = spec.recipe.weight_decay

    pixels = keras.Input(shape=input_shape, name="pixels")
    standardised = Standardization(mean, std, name="standardise")(pixels)
    probabilities = spec.builder(
        standardised, int(num_classes), width=float(width), weight_decay=weight_decay
    )
    return keras.Model(pixels, probabilities, name=name)


def scaled(channels, width):
    """Channel count `channels` scaled by `width`, never below 1."""
    return max(1, int(round(channels * width)))


def kernel_regularizer(weight_decay):
    return keras.regularizers.L2(weight_decay) if weight_decay else None


def probabilities(logits, name="probabilities"):
    """Softmax kept in float32 so mixed-precision policies stay numerically safe."""
    return layers.Activation("softmax", dtype="float32", name=name)(logits)


def _per_channel(value, channels, parameter):
    values = [float(v) for v in (value if hasattr(value, "__len__") else [value])]
    if len(values) == 1:
        values = values * channels
    if len(values) != channels:
        raise ValueError(
            f"{parameter} must have 1 or {channels} values, received {len(values)}."
        )
    return values


def _import_builtin_models():
    # Importing the package registers every built-in network exactly once.
    from rzs import models  # noqa: F401
