"""Total-variance minimisation (Guo et al. 2018), as IBM ART's `TotalVarMin`.

Each channel x of an image (on the [0, 1] scale) is replaced by the z that
minimises, from z = x, for `iterations` L-BFGS-B iterations (scipy),

    ||mask * (z - x)||_2 + weight * TV(z),
    TV(z) = sum_i ||z[i + 1, :] - z[i, :]||_norm + sum_j ||z[:, j + 1] - z[:, j]||_norm,

where mask keeps each value with probability `keep_probability` (a fresh
Bernoulli draw per value and call). The sums run over the norms of whole row
and column differences, the TV_p of Guo et al. and of ART.

The solver runs on the CPU in NumPy, one image channel at a time, through
`tf.numpy_function`: about 2 ms per 28x28 channel, so a test set of 10,000
images takes tens of seconds and retraining with the defence pays that for
every training batch. TensorFlow-only.
"""

import keras
import numpy as np
import tensorflow as tf
import threadpoolctl
from keras import ops
from scipy import optimize

from rzs.defences.input_stages import PIXEL_MAX, InputStage, straight_through

# Floor for norms in the gradient, as ART, so that flat rows have a finite one.
_SMALLEST_NORM = 1e-6


def total_variation(image, norm=2):
    """TV_norm of a 2D array `(height, width)`: norms of row plus column differences."""
    rows = np.linalg.norm(image[1:, :] - image[:-1, :], ord=norm, axis=1).sum()
    columns = np.linalg.norm(image[:, 1:] - image[:, :-1], ord=norm, axis=0).sum()
    return rows + columns


def _objective_and_gradient(flat, original, mask, norm, weight):
    """The objective for one channel and its exact gradient with respect to z."""
    z = flat.reshape(original.shape)
    difference = z - original
    fidelity = np.sqrt(np.sum(mask * difference**2))
    gradient = mask * difference / max(fidelity, _SMALLEST_NORM)
    variation_gradient = np.zeros_like(z)
    for axis in (0, 1):
        steps = np.diff(z, axis=axis)
        # Rows of differences are normed along axis 1, columns along axis 0.
        step_norms = np.linalg.norm(steps, ord=norm, axis=1 - axis, keepdims=True)
        # d||v||_p / dv = sign(v) |v|^(p-1) / ||v||_p^(p-1)
        step_gradient = (
            np.sign(steps) * np.abs(steps) ** (norm - 1)
            / np.maximum(step_norms, _SMALLEST_NORM) ** (norm - 1)
        )
        leading = [slice(None)] * 2
        trailing = [slice(None)] * 2
        leading[axis], trailing[axis] = slice(None, -1), slice(1, None)
        variation_gradient[tuple(leading)] -= step_gradient
        variation_gradient[tuple(trailing)] += step_gradient
    objective = fidelity + weight * total_variation(z, norm)
    return objective, (gradient + weight * variation_gradient).ravel()


def minimise_total_variation(images, mask, norm, weight, iterations):
    """Apply the minimisation to every channel of every image.

    Args:
        images: float array `(batch, height, width, channels)` on the [0, 1] scale.
        mask: array of the same shape, 1 where a value enters the fidelity term.
        norm: the p of TV_p, a positive integer.
        weight: the weight of TV (lambda).
        iterations: L-BFGS-B iterations per channel.

    Returns:
        float32 array of the same shape, clipped to [0, 1].
    """
    smoothed = np.empty_like(images, dtype=np.float64)
    # L-BFGS-B's small BLAS calls run ~50x slower when OpenBLAS spreads them
    # over threads that TensorFlow's own threads are competing for.
    with threadpoolctl.threadpool_limits(limits=1, user_api="blas"):
        for image, channel in np.ndindex(images.shape[0], images.shape[3]):
            original = images[image, :, :, channel].astype(np.float64)
            result = optimize.minimize(
                _objective_and_gradient,
                original.ravel(),
                args=(original, mask[image, :, :, channel], norm, weight),
                method="L-BFGS-B",
                jac=True,
                options={"maxiter": iterations},
            )
            smoothed[image, :, :, channel] = result.x.reshape(original.shape)
    return np.clip(smoothed, 0.0, 1.0).astype(np.float32)


@keras.saving.register_keras_serializable(package="rzs")
class TotalVarianceMinimisation(InputStage):
    """Total-variance minimisation of each image, on raw pixels in [0, 255].

    The backward pass is the identity (BPDA): the minimisation has no cheap
    gradient.

    Args:
        keep_probability: probability that a value enters the fidelity term
            (ART's `prob`).
        norm: the p of TV_p (ART's `norm`).
        weight: the weight of the total variation (ART's `lamb`).
        iterations: L-BFGS-B iterations per channel (ART's `max_iter`).
        seed: seed of the Bernoulli masks, or None for Keras' global seed.

    Input shape: `(batch, height, width, channels)`, pixels in [0, 255].
    Output shape: the same.
    """

    def __init__(self, keep_probability, norm, weight, iterations, seed=None, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 < keep_probability <= 1.0:
            raise ValueError(f"keep_probability must lie in (0, 1], received {keep_probability!r}.")
        if not isinstance(norm, int) or norm < 1:
            raise ValueError(f"norm must be a positive integer, received {norm!r}.")
        if not weight > 0:
            raise ValueError(f"weight must be positive, received {weight!r}.")
        if not isinstance(iterations, int) or iterations < 1:
            raise ValueError(f"iterations must be a positive integer, received {iterations!r}.")
        self.keep_probability = keep_probability
        self.norm = norm
        self.weight = weight
        self.iterations = iterations
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, pixels):
        mask = ops.cast(
            keras.random.uniform(ops.shape(pixels), seed=self.seed_generator)
            < self.keep_probability,
            "float32",
        )
        smoothed = tf.numpy_function(
            lambda images, keep: minimise_total_variation(
                images, keep, self.norm, self.weight, self.iterations
            ),
            [pixels / PIXEL_MAX, mask],
            tf.float32,
            stateful=False,
        )
        smoothed = tf.ensure_shape(smoothed, pixels.shape) * PIXEL_MAX
        return straight_through(pixels, smoothed)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {
            **super().get_config(),
            "keep_probability": self.keep_probability,
            "norm": self.norm,
            "weight": self.weight,
            "iterations": self.iterations,
            "seed": self.seed,
        }
