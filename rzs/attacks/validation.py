"""Argument checks shared by every attack; each raises ValueError naming the parameter and value."""

import numpy as np


def check_images(images, model, integer_valued):
    """Return `images` as a float32 array after checking it against the model contract.

    Args:
        images: array-like of shape `(num_images, height, width, channels)`, raw pixels
            in [0, 255].
        model: the Keras model the images will be fed to; its input shape, where
            known, must match the images' shape.
        integer_valued: whether the values must be whole numbers (8-bit pixels),
            which the pixel and threshold attacks need to return integer images.

    Returns:
        float32 array of shape `(num_images, height, width, channels)`.
    """
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[0] == 0:
        raise ValueError(
            "Expected `images` of shape (num_images, height, width, channels) with "
            f"num_images >= 1. Received: images.shape={images.shape}"
        )
    expected_shape = tuple(model.input_shape[1:])
    if any(
        expected is not None and expected != received
        for expected, received in zip(expected_shape, images.shape[1:])
    ):
        raise ValueError(
            f"Expected `images` of shape (num_images, *{expected_shape}) to match the "
            f"model's input. Received: images.shape={images.shape}"
        )
    images = images.astype("float32")
    if not np.all(np.isfinite(images)):
        raise ValueError("Expected finite `images`. Received: images with NaN or inf values")
    if images.min() < 0 or images.max() > 255:
        raise ValueError(
            "Expected `images` with raw pixel values in [0, 255]. Received: images with "
            f"min={images.min()}, max={images.max()}"
        )
    if integer_valued and np.any(images != np.round(images)):
        raise ValueError(
            "Expected integer-valued `images` (8-bit pixels in [0, 255]). Received: images "
            "with non-integer values"
        )
    return images


def check_labels(labels, num_images, num_classes, name="labels"):
    """Return `labels` as int64 `(num_images,)` after checking values in [0, num_classes)."""
    labels = np.asarray(labels)
    if labels.shape != (num_images,):
        raise ValueError(
            f"Expected `{name}` of shape ({num_images},), one class index per image. "
            f"Received: {name}.shape={labels.shape}"
        )
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(
            f"Expected integer class indices in `{name}`. Received: {name}.dtype={labels.dtype}"
        )
    if labels.min() < 0 or labels.max() >= num_classes:
        raise ValueError(
            f"Expected `{name}` in [0, {num_classes - 1}]. Received: {name} with "
            f"min={labels.min()}, max={labels.max()}"
        )
    return labels.astype("int64")


def check_target_labels(target_labels, labels, num_classes):
    """Return the checked target labels, or None for an untargeted attack."""
    if target_labels is None:
        return None
    target_labels = check_labels(target_labels, len(labels), num_classes, "target_labels")
    same = np.flatnonzero(target_labels == labels)
    if len(same):
        raise ValueError(
            "Expected `target_labels` to differ from `labels`. Received: "
            f"target_labels[{same[0]}]={target_labels[same[0]]} equal to the true label"
        )
    return target_labels


def check_th(th, maximum, allow_none=False):
    """The budgets th to try, a list of ints in [1, maximum], from an int or a list of them.

    With `allow_none`, None passes through (the evolutionary attacks' binary search of each
    image's minimal th).
    """
    if th is None and allow_none:
        return None
    values = list(th) if isinstance(th, (list, tuple, np.ndarray)) else [th]
    if not values or any(
        isinstance(value, bool)
        or not isinstance(value, (int, np.integer))
        or not 1 <= value <= maximum
        for value in values
    ):
        also = ", or None" if allow_none else ""
        raise ValueError(
            f"Expected `th` to be an integer in [1, {maximum}], a non-empty list of "
            f"them{also}. Received: th={th!r}"
        )
    return [int(value) for value in values]


def check_positive_integer(value, name, minimum=1):
    """Return `value` as an int after checking that it is an integer >= `minimum`."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(
            f"Expected `{name}` to be an integer >= {minimum}. Received: {name}={value!r}"
        )
    return int(value)


def _is_finite_number(value):
    return (
        not isinstance(value, bool)
        and isinstance(value, (int, float, np.integer, np.floating))
        and bool(np.isfinite(value))
    )


def check_positive_number(value, name):
    """Return `value` as a float after checking that it is a finite number > 0."""
    if not _is_finite_number(value) or value <= 0:
        raise ValueError(f"Expected `{name}` to be a finite number > 0. Received: {name}={value!r}")
    return float(value)


def check_fraction(value, name):
    """Return `value` as a float after checking that it is a finite number in (0, 1]."""
    value = check_positive_number(value, name)
    if value > 1:
        raise ValueError(f"Expected `{name}` in (0, 1]. Received: {name}={value!r}")
    return value


def check_non_negative_number(value, name):
    """Return `value` as a float after checking that it is a finite number >= 0."""
    if not _is_finite_number(value) or value < 0:
        raise ValueError(
            f"Expected `{name}` to be a finite number >= 0. Received: {name}={value!r}"
        )
    return float(value)


def check_choice(value, name, choices):
    """Return `value` after checking that it is one of `choices`."""
    if value not in choices:
        raise ValueError(
            f"Expected `{name}` to be one of {list(choices)}. Received: {name}={value!r}"
        )
    return value
