"""Inference in float32, and the pre-softmax scores that attacks and soft labels need.

Training may run under a mixed policy (`mixed_bfloat16`, `mixed_float16`); a
model stored that way computes every layer but its final softmax in 16 bits
when reloaded. bfloat16 keeps 8 significant bits: one grey level after
standardisation is about its spacing, and logits fall onto plateaus. Attacks,
soft labels and metric inputs therefore run on a float32 copy of the trained
model (`load_float32_model`, `float32_model`): the same layers and weights
(stored in float32 under every mixed policy), every layer computing in float32.

`logits_model` exposes the pre-softmax output of the models that end in a
softmax layer (every network of `rzs.models` but CapsNet, whose output is
normalised capsule lengths); `log_scores_model` gives those logits where they
exist and clipped log-probabilities otherwise. Both are log-scale scores: they
differ from the log-probabilities by one constant per image, so every
difference between two classes (a margin) is the same with either.
"""

import keras

# Recorded with every result computed by this module's models.
INFERENCE_PRECISION = "float32"
# Floor of the probabilities before the logarithm in `log_scores_model`: a
# probability that underflows to 0 then gives a large finite score, not -inf.
SMALLEST_PROBABILITY = 1e-30
_POLICY_CLASSES = ("DTypePolicy", "FloatDTypePolicy")
_LOW_PRECISION_DTYPES = ("bfloat16", "float16", "mixed_bfloat16", "mixed_float16")


def load_float32_model(path):
    """The model stored at `path` (a `.keras` file), every layer computing in float32.

    Args:
        path: path of a model saved with `model.save`, under any dtype policy.

    Returns:
        A `keras.Model` with the stored weights and a float32 policy on every
        layer, so its outputs do not depend on the policy it was trained with.
    """
    return float32_model(keras.saving.load_model(path, compile=False))


def float32_model(model):
    """A copy of `model` whose every layer computes in float32, with the same weights.

    The model's serialised config is rewritten (every dtype policy and every
    16-bit float dtype becomes float32), rebuilt, and given the model's
    weights. A model that already computes in float32 is returned as it is.

    Args:
        model: a `keras.Model` that Keras can serialise (built-in or registered
            layers), under any dtype policy.

    Returns:
        A `keras.Model` computing in float32.

    Raises:
        ValueError: when a layer of the rebuilt model still computes in another
            dtype (a layer that hard-codes its dtype outside its config).
    """
    if precision(model) == INFERENCE_PRECISION:
        return model
    config = _float32_config(keras.saving.serialize_keras_object(model))
    previous_policy = keras.config.dtype_policy()
    # Layers whose config carries no dtype take the global policy when rebuilt.
    keras.config.set_dtype_policy(INFERENCE_PRECISION)
    try:
        copy = keras.saving.deserialize_keras_object(config)
    finally:
        keras.config.set_dtype_policy(previous_policy)
    copy.set_weights(model.get_weights())
    if precision(copy) != INFERENCE_PRECISION:
        raise ValueError(
            f"Expected every layer of the rebuilt model {model.name!r} to compute in "
            f"float32. Received compute dtypes {sorted(_compute_dtypes(copy))}."
        )
    return copy


def precision(model):
    """The compute dtype of every layer of `model`, or "mixed" when they differ.

    Args:
        model: a `keras.Model`.

    Returns:
        A dtype name such as "float32" or "bfloat16", or "mixed".
    """
    dtypes = _compute_dtypes(model)
    return dtypes.pop() if len(dtypes) == 1 else "mixed"


def logits_model(model):
    """A model giving the input of `model`'s final softmax layer, or None.

    Args:
        model: a single-output `keras.Model`.

    Returns:
        A `keras.Model` sharing `model`'s layers and weights, mapping its inputs
        to the pre-softmax scores `(batch, num_classes)` (cast to float32), or
        None when the output is not produced by a softmax `Activation` layer.
    """
    if len(model.outputs) != 1 or not model.layers:
        return None
    last_layer = model.layers[-1]
    is_softmax = isinstance(last_layer, keras.layers.Activation) and (
        getattr(last_layer.activation, "__name__", None) == "softmax"
    )
    if not is_softmax or last_layer.output is not model.outputs[0]:
        return None
    logits = keras.ops.cast(last_layer.input, "float32")
    return keras.Model(model.inputs, logits, name=f"{model.name}_logits")


def log_scores_model(model):
    """Log-scale class scores of `model`: its logits, else its clipped log-probabilities.

    With probabilities p, the fallback is `log(max(p, SMALLEST_PROBABILITY))`.
    Either output equals `log p` up to one constant per image (exactly for
    logits, while no probability underflows for the fallback).

    Args:
        model: a single-output `keras.Model`, probabilities out.

    Returns:
        A `keras.Model` mapping `model`'s inputs to float32 `(batch, num_classes)`.
    """
    logits = logits_model(model)
    if logits is not None:
        return logits
    probabilities = keras.ops.cast(model.outputs[0], "float32")
    log_probabilities = keras.ops.log(keras.ops.maximum(probabilities, SMALLEST_PROBABILITY))
    return keras.Model(model.inputs, log_probabilities, name=f"{model.name}_log_probabilities")


def _compute_dtypes(model):
    """The set of compute dtypes of `model`'s layers, nested models included."""
    dtypes = set()
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        dtypes.add(layer.compute_dtype)
        if hasattr(layer, "layers"):
            dtypes |= _compute_dtypes(layer)
    return dtypes


def _float32_config(value):
    """`value` (a serialised Keras object) with every 16-bit dtype made float32."""
    if isinstance(value, list):
        return [_float32_config(item) for item in value]
    if not isinstance(value, dict):
        return value
    if value.get("class_name") in _POLICY_CLASSES and isinstance(value.get("config"), dict):
        if value["config"].get("name") in _LOW_PRECISION_DTYPES:
            return {**value, "config": {**value["config"], "name": INFERENCE_PRECISION}}
    rewritten = {}
    for key, item in value.items():
        if key == "dtype" and item in _LOW_PRECISION_DTYPES:
            rewritten[key] = INFERENCE_PRECISION
        else:
            rewritten[key] = _float32_config(item)
    return rewritten
