"""How the pixel and threshold attacks turn a search vector into an image.

Both searches (CMA-ES, differential evolution) work on real vectors inside a box
`[lower, upper]`; an encoding fixes the box for one image and th, where the
search starts, and how a vector becomes an integer image in [0, 255]. The box
edges of discrete variables sit half a unit outside the valid integers so that
rounding gives every integer an equal share of the box.
"""

import numpy as np


class PixelEncoding:
    """L0 attack: th pixels, each (row, column, one value per channel).

    A vector holds `th * (2 + channels)` variables: 5 per pixel for colour
    images, 3 for grey ones. Pixels that land on the same position count once,
    so an image has at most th pixels changed.
    """

    name = "pixel"

    def __init__(self, image_shape):
        self.height, self.width, self.channels = image_shape

    @property
    def maximum_th(self):
        return self.height * self.width

    def bounds(self, image, th):
        """Box of the search vectors, two arrays of shape `(th * (2 + channels),)`."""
        lower = [0.0, 0.0] + [-0.5] * self.channels
        # Positions are floored, so the upper edge itself (probability zero) is the
        # only point outside the image; `decode` folds it onto the last row/column.
        upper = [float(self.height), float(self.width)] + [255.5] * self.channels
        return np.tile(lower, th), np.tile(upper, th)

    def initial_mean(self, image, th, rng):
        """CMA-ES start: th pixels at random positions with random values."""
        lower, upper = self.bounds(image, th)
        return rng.uniform(lower, upper)

    def initial_sigma(self, th):
        """CMA-ES step size: 63 / 4 on every variable, the authors' value."""
        return 63 / 4

    def decode(self, image, vectors, th):
        """Images with the pixels of each vector written into `image`.

        Args:
            image: float32 array `(height, width, channels)`, integer-valued.
            vectors: array `(num_candidates, th * (2 + channels))` inside the box.
            th: number of pixels per vector.

        Returns:
            float32 array `(num_candidates, height, width, channels)`, integer values
            in [0, 255].
        """
        num_candidates = len(vectors)
        genes = vectors.reshape(num_candidates, th, 2 + self.channels)
        rows = np.minimum(genes[..., 0].astype("int64"), self.height - 1)
        columns = np.minimum(genes[..., 1].astype("int64"), self.width - 1)
        values = np.clip(np.rint(genes[..., 2:]), 0, 255)
        candidates = np.repeat(image[None], num_candidates, axis=0)
        candidates[np.arange(num_candidates)[:, None], rows, columns] = values
        return candidates


class ThresholdEncoding:
    """L-inf attack: one variable per value, the change added to it.

    The change of a value x is bounded by [max(-th, -x), min(th, 255 - x)], so
    the image stays in [0, 255] and within th of the original without clipping,
    which would flatten the fitness over the clipped part of the box.
    """

    name = "threshold"
    maximum_th = 255

    def __init__(self, image_shape):
        self.image_shape = tuple(image_shape)

    def _change_limits(self, image, th):
        flat = image.reshape(-1)
        return np.maximum(-th, -flat), np.minimum(th, 255 - flat)

    def bounds(self, image, th):
        """Box of the search vectors, two arrays of shape `(height * width * channels,)`."""
        lowest, highest = self._change_limits(image, th)
        return lowest - 0.5, highest + 0.5

    def initial_mean(self, image, th, rng):
        """CMA-ES start: the unchanged image, as in the authors' code."""
        return np.zeros(image.size)

    def initial_sigma(self, th):
        """CMA-ES step size: th / 4, the authors' value."""
        return th / 4

    def decode(self, image, vectors, th):
        """`image` plus each vector's rounded change.

        Args:
            image: float32 array `(height, width, channels)`, integer-valued.
            vectors: array `(num_candidates, height * width * channels)` inside the box.
            th: largest change of a value.

        Returns:
            float32 array `(num_candidates, height, width, channels)`, integer values
            in [0, 255] within th of `image`.
        """
        lowest, highest = self._change_limits(image, th)
        changes = np.clip(np.rint(vectors), lowest, highest)
        candidates = image.reshape(1, -1) + changes
        return candidates.reshape((len(vectors),) + self.image_shape).astype("float32")
