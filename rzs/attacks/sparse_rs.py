"""Sparse-RS (L0, pixels): score-based black-box random search over k pixels, batched.

Croce, Andriushchenko, Singh, Flammarion & Hein, "Sparse-RS: a versatile
framework for query-efficient sparse black-box adversarial attacks" (AAAI
2022), Algorithm 1 with the L0 pixel perturbations of its Section 3.1, after
the authors' code (github.com/fra31/sparse-rs, `RSAttack`, norm "L0"):

- start from k random pixel positions, each given a random colour of the
  vertices of the colour cube, {0, 255}^channels (one query);
- each iteration swaps `max(floor(alpha * k), 1)` of the perturbed positions
  for as many unperturbed ones (the removed ones get their clean values back,
  the new ones a random vertex colour), and keeps the candidate when it lowers
  the loss; alpha follows the authors' piecewise constant schedule
  (`sparse_rs_alpha_schedule`) over the query budget.

One choice differs from the authors' code: a new pixel's vertex colour is
drawn among those that differ from its clean colour (the authors enforce this
only when a single pixel is swapped). On grey images two colours exist, and a
background pixel at 0 would otherwise stay unchanged half of the time, leaving
part of the k pixels unused.

The loss, the stopping rule, the batching and the seeding are those of the
Square Attack (`rzs.attacks.square.run_random_search`): "margin" by default,
search ends at the first misclassified candidate or at the budget, one
generator per (seed, image, th). Every candidate is an integer image in
[0, 255] that differs from the clean one in exactly k pixel positions.
"""

import numpy as np

from rzs.attacks import validation
from rzs.attacks.square import run_random_search


def sparse_rs(
    model,
    images,
    labels,
    th,
    queries=10000,
    alpha_init=0.3,
    seed=0,
    target_labels=None,
    fitness="margin",
    max_batch_size=8192,
    return_images=False,
    progress=True,
):
    """Sparse-RS (L0): change at most th pixels, each to a corner of the colour cube.

    Args:
        model: Keras model, float32 raw pixels in [0, 255] in, class
            probabilities out (docs/CONTRACTS.md).
        images: array `(num_images, height, width, channels)` of integer-valued
            pixels in [0, 255].
        labels: int array `(num_images,)`, the true classes.
        th: number of pixels k, as in the pixel attack: an int in
            [1, height * width - 1] or a list of them.
        queries: most model evaluations per image and th, the initialisation
            included (the authors' 10,000).
        alpha_init: initial fraction of the k pixels swapped per iteration (the
            authors' untargeted L0 value 0.3); the schedule divides it down to
            alpha_init / 20 over the budget.
        seed: int >= 0; the same seed gives the same table.
        target_labels: int array `(num_images,)` for a targeted attack, or None.
        fitness: "margin" (default) or "probability"; see `rzs.attacks.square`.
        max_batch_size: most images searched at once (one candidate each per
            model call).
        return_images: also return the adversarial images.
        progress: show a progress bar over images.

    Returns:
        As in `rzs.attacks.square.square_attack`.
    """
    images = validation.check_images(images, model, integer_valued=True)
    alpha_init = validation.check_fraction(alpha_init, "alpha_init")
    height, width = images.shape[1:3]
    if height * width < 2:
        raise ValueError(
            f"Expected images of at least 2 pixels. Received: images.shape={images.shape}"
        )

    def new_proposal(image, th, rng, budget):
        return SparseRSProposal(image, th, rng, budget, alpha_init)

    return run_random_search(
        "sparse_rs",
        new_proposal,
        model,
        images,
        labels,
        # A swap needs an unperturbed pixel to move to.
        validation.check_th(th, height * width - 1),
        queries,
        seed,
        target_labels,
        fitness,
        max_batch_size,
        return_images,
        progress,
    )


def sparse_rs_alpha_schedule(alpha_init, iteration, total_queries):
    """Sparse-RS's fraction alpha of the k pixels swapped at `iteration` (L0 version).

    The authors' `p_selection` for "L0": the iteration is rescaled to a budget
    of 10,000, `i' = floor(10000 * iteration / total_queries)`, and

        i' = 0 -> alpha_init,        (0, 50] -> alpha_init / 2,  (50, 200] -> / 4,
        (200, 500] -> / 5,           (500, 1000] -> / 6,         (1000, 2000] -> / 8,
        (2000, 4000] -> / 10,        (4000, 6000] -> / 12,       (6000, 8000] -> / 15,
        above 8000 -> / 20.

    Args:
        alpha_init: float in (0, 1].
        iteration: int >= 0, the query being proposed (0 is the initialisation).
        total_queries: the image's query budget.

    Returns:
        float, the fraction alpha.
    """
    rescaled = int(iteration / total_queries * 10000)
    for end, divisor in (
        (0, 1),
        (50, 2),
        (200, 4),
        (500, 5),
        (1000, 6),
        (2000, 8),
        (4000, 10),
        (6000, 12),
        (8000, 15),
    ):
        if rescaled <= end:
            return alpha_init / divisor
    return alpha_init / 20


class SparseRSProposal:
    """Sparse-RS's L0 candidates for one image with k pixels.

    Args:
        image: float32 array `(height, width, channels)`, integer-valued.
        k: int, the number of perturbed pixels.
        rng: `numpy.random.Generator` that draws all of the search's samples.
        total_queries: the image's query budget (sets the alpha schedule).
        alpha_init: initial fraction of the k pixels swapped per iteration.
    """

    def __init__(self, image, k, rng, total_queries, alpha_init):
        self._image = image
        self._pixels = image.reshape(-1, image.shape[-1])
        self._k = k
        self._rng = rng
        self._total_queries = total_queries
        self._alpha_init = alpha_init
        self._best = None
        self._candidate = None
        self._perturbed = None  # flat positions of the kept candidate's k pixels
        self._unperturbed = None
        self._swap = None

    def _vertex_colours(self, positions):
        """A random colour of {0, 255}^channels for each position, unlike its clean colour.

        Args:
            positions: int array `(count,)` of flat pixel positions.

        Returns:
            float32 array `(count, channels)`.
        """
        clean = self._pixels[positions]
        colours = 255 * self._rng.integers(0, 2, size=clean.shape).astype("float32")
        unchanged = np.all(colours == clean, axis=1)
        while unchanged.any():
            redrawn = self._rng.integers(0, 2, size=(unchanged.sum(), clean.shape[1]))
            colours[unchanged] = 255 * redrawn.astype("float32")
            unchanged = np.all(colours == clean, axis=1)
        return colours

    def first(self):
        """k random pixel positions, each given a random vertex colour."""
        order = self._rng.permutation(len(self._pixels))
        self._perturbed, self._unperturbed = order[: self._k], order[self._k :]
        candidate = self._pixels.copy()
        candidate[self._perturbed] = self._vertex_colours(self._perturbed)
        self._candidate = candidate.reshape(self._image.shape)
        self._swap = None
        return self._candidate

    def propose(self, iteration):
        """The kept image with some perturbed pixels moved to new positions and colours.

        Args:
            iteration: int >= 1, the query being proposed (1 follows the
                initialisation).

        Returns:
            float32 array `(height, width, channels)`.
        """
        alpha = sparse_rs_alpha_schedule(self._alpha_init, iteration, self._total_queries)
        count = min(max(int(alpha * self._k), 1), len(self._unperturbed))
        removed = self._rng.permutation(self._k)[:count]
        added = self._rng.permutation(len(self._unperturbed))[:count]
        candidate = self._best.reshape(-1, self._pixels.shape[1]).copy()
        candidate[self._perturbed[removed]] = self._pixels[self._perturbed[removed]]
        candidate[self._unperturbed[added]] = self._vertex_colours(self._unperturbed[added])
        self._candidate = candidate.reshape(self._image.shape)
        self._swap = (removed, added)
        return self._candidate

    def accept(self):
        """Keep the last proposed candidate and its pixel positions."""
        self._best = self._candidate
        if self._swap is None:
            return
        removed, added = self._swap
        leaving = self._perturbed[removed].copy()
        self._perturbed[removed] = self._unperturbed[added]
        self._unperturbed[added] = leaving
