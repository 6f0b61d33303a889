"""Name -> defence registry, and how a defence's input stage joins a model.

A `Defence` says what it changes, with the authors' settings as defaults:

- `input_stage`: a layer put in front of the network on raw pixels in
  [0, 255] (`with_input_stage`), part of the model for training, soft labels
  and attacks alike;
- `training_set`, `targets`, `training_wrapper`: hooks into the training
  recipe (noisy copies of the images, smoothed labels, adversarial batches).

A test-time-only defence (`test_time_only=True`) trains nothing: it puts its
input stage in front of the vanilla network's stored weights.
"""

import dataclasses
import functools
import types
from typing import Callable, Mapping

import keras

from rzs import registry

DEFENCES = registry.Registry("defence")


@dataclasses.dataclass(frozen=True)
class Defence:
    """One defence of the study and the authors' settings for it.

    Attributes:
        name: registry name; also names the input stage layer.
        summary: one line on what the defence does.
        params: parameter -> value, the keyword arguments of the defence's
            hook (authors' settings).
        sources: parameter -> where its value comes from.
        test_time_only: applied to the vanilla network's weights at test time
            only, without retraining.
        input_stage: layer class built with `**params`, mapping raw pixels
            `(batch, H, W, C)` in [0, 255] to the network's input.
        network_statistics: `(mean, std)` with which the network standardises
            the input stage's output, when that is not on the pixel scale;
            None uses the training images' statistics.
        training_set: `(images, labels, seed, **params) -> (images, labels)`,
            applied to the training set once before training.
        targets: `(one_hot, **params) -> targets`, applied to every batch.
        training_wrapper: `(training_model, attacked_model, seed, **params) ->
            keras.Model` to fit in place of the training model.
    """

    name: str
    summary: str
    params: Mapping[str, object]
    sources: Mapping[str, str]
    test_time_only: bool = False
    input_stage: type | None = None
    network_statistics: tuple[float, float] | None = None
    training_set: Callable | None = None
    targets: Callable | None = None
    training_wrapper: Callable | None = None

    def __post_init__(self):
        if set(self.params) != set(self.sources):
            raise ValueError(
                f"Every parameter of {self.name!r} needs a source, received params "
                f"{sorted(self.params)} and sources {sorted(self.sources)}."
            )
        if self.test_time_only and self.input_stage is None:
            raise ValueError(
                f"A test-time-only defence needs an input stage, {self.name!r} has none."
            )
        # Read-only views, so that a registered defence cannot be changed in place.
        object.__setattr__(self, "params", types.MappingProxyType(dict(self.params)))
        object.__setattr__(self, "sources", types.MappingProxyType(dict(self.sources)))

    def config(self):
        """The JSON config that, with the training spec, names a defended result."""
        return {"name": self.name, "params": dict(self.params)}

    def build_input_stage(self):
        """A new input stage layer, or None when the defence has none."""
        if self.input_stage is None:
            return None
        return self.input_stage(**self.params, name=self.name)

    def transform_training_set(self, images, labels, seed):
        """The training set the network is fitted on (unchanged without a hook)."""
        if self.training_set is None:
            return images, labels
        return self.training_set(images, labels, seed, **self.params)

    def label_transform(self):
        """Callable one-hot batch -> targets, or None."""
        if self.targets is None:
            return None
        return functools.partial(self.targets, **self.params)

    def wrap_training_model(self, training_model, attacked_model, seed):
        """The model to compile and fit (`training_model` itself without a hook)."""
        if self.training_wrapper is None:
            return training_model
        return self.training_wrapper(training_model, attacked_model, seed=seed, **self.params)


def register(defence):
    """Add `defence` to `DEFENCES` under its own name, so that the name cannot disagree."""
    return DEFENCES.register(defence.name, defence)


def list_defences(filter=None, exclude_filters=None):
    """Names of the registered defences in registration order, optionally narrowed by glob patterns.

    `list_defences(exclude_filters="*_test")` leaves out the test-time-only variants.
    """
    return DEFENCES.list(filter, exclude_filters)


def get_defence(name) -> Defence:
    """The `Defence` of `name`; ValueError listing the registered defences otherwise."""
    return DEFENCES.get(name)


def with_input_stage(model, stage, input_shape):
    """`model` behind `stage`: raw pixels -> stage -> model, as one Functional model.

    Args:
        model: a model taking the stage's output, or a training model taking a
            dict whose "pixels" entry is the stage's output (CapsNet).
        stage: an input stage layer (`Defence.build_input_stage()`).
        input_shape: `(height, width, channels)` of the raw pixels.

    Returns:
        A `keras.Model` with the same inputs as `model` except that "pixels"
        are raw pixels of `input_shape`, and the same outputs.
    """
    pixels = keras.Input(shape=tuple(input_shape), name="pixels")
    if isinstance(model.input, dict):
        inputs = {
            name: keras.Input(shape=tensor.shape[1:], name=name)
            for name, tensor in model.input.items()
            if name != "pixels"
        }
        inputs["pixels"] = pixels
        outputs = model({**inputs, "pixels": stage(pixels)})
    else:
        inputs = pixels
        outputs = model(stage(pixels))
    return keras.Model(inputs, outputs, name=f"{model.name}_{stage.name}")
