"""Defences that change what the network is trained on: noisy copies, soft targets."""

import numpy as np

from rzs.defences.input_stages import PIXEL_MAX


def gaussian_augmentation(images, labels, seed, sigma, ratio):
    """The training set plus noisy copies, as IBM ART's `GaussianAugmentation`.

    `ratio * n` images are drawn with replacement, Gaussian noise of standard
    deviation `sigma` (on the 0-255 scale) is added, and the copies are
    appended with their labels; values are clipped to [0, 255].

    Args:
        images: array `(n, height, width, channels)`, pixels in [0, 255].
        labels: int array `(n,)`.
        seed: seed of the draw and the noise.
        sigma: noise standard deviation on the 0-255 scale.
        ratio: noisy copies per training image (1 doubles the set).

    Returns:
        `(images, labels)`: float32 `(n + ratio * n, height, width, channels)`
        and the matching labels, originals first.
    """
    if not sigma > 0:
        raise ValueError(f"sigma must be positive, received {sigma!r}.")
    if not ratio > 0:
        raise ValueError(f"ratio must be positive, received {ratio!r}.")
    generator = np.random.default_rng(seed)
    chosen = generator.integers(0, len(images), size=int(len(images) * ratio))
    noisy = images[chosen] + generator.normal(0.0, sigma, size=(len(chosen), *images.shape[1:]))
    noisy = np.clip(noisy, 0.0, PIXEL_MAX).astype(np.float32)
    return (
        np.concatenate([images.astype(np.float32), noisy]),
        np.concatenate([labels, labels[chosen]]),
    )


def label_smoothing(one_hot, max_value):
    """Smoothed targets, as IBM ART's `LabelSmoothing`.

    The true class gets `max_value`, every other class an equal share of the
    rest, so each row still sums to 1.

    Args:
        one_hot: float tensor `(batch, num_classes)` of one-hot labels.
        max_value: target of the true class, in (1 / num_classes, 1).

    Returns:
        float tensor `(batch, num_classes)`.
    """
    num_classes = one_hot.shape[-1]
    if not 1.0 / num_classes < max_value < 1.0:
        raise ValueError(
            f"max_value must lie in (1 / {num_classes}, 1), received {max_value!r}."
        )
    other_value = (1.0 - max_value) / (num_classes - 1)
    return one_hot * (max_value - other_value) + other_value
