"""Square Attack (L-inf): score-based black-box random search, batched over images.

Andriushchenko, Croce, Flammarion & Hein, "Square Attack: a query-efficient
black-box adversarial attack via random search" (ECCV 2020), Algorithm 1 and
its L-inf sampling distribution (Algorithm 2), after the authors' code
(github.com/max-andr/square-attack, `square_attack_linf`):

- start from vertical stripes: every column of every channel moved by +th or
  -th (one query);
- each iteration redraws the perturbation on one random square window of side
  `s = round(sqrt(p * height * width))` to +th or -th per channel, and keeps
  the candidate when it lowers the loss; `p` follows the authors' piecewise
  constant schedule (`square_p_schedule`), halved at fixed fractions of the
  query budget.

The loss is computed in float32 from the model's log-scale scores
(`rzs.attacks.model_calls`), as in the evolutionary attacks: "margin" (the
default, the paper's loss) `s_y - max_{j != y} s_j` (targeted: the mirror),
or "probability", the probability of the true class (targeted: 1 - that of
the target). An image's search ends at its first misclassified candidate or
when its query budget is spent, never earlier.

With th an integer on the 0-255 scale, every candidate is an integer image in
[0, 255] within th of the clean one. Each image runs with its own random
generator seeded by (seed, image, th), so a result does not depend on which
other images share its model calls; all running images are scored together,
one candidate each, in one model call per iteration.

`run_random_search` is the batched driver shared with Sparse-RS
(`rzs.attacks.sparse_rs`): it only needs, per image and th, a proposal that
gives a first candidate, proposes the next one and is told when one is kept.
"""

import dataclasses

import numpy as np
from tqdm.auto import tqdm

from rzs.attacks import model_calls, validation
from rzs.attacks.evolutionary import FITNESSES
from rzs.attacks.results import FinishedSearch, search_table

# The random-search attacks have no population; the column names how they search.
STRATEGY = "random_search"


def square_attack(
    model,
    images,
    labels,
    th,
    queries=10000,
    p_init=0.05,
    seed=0,
    target_labels=None,
    fitness="margin",
    max_batch_size=8192,
    return_images=False,
    progress=True,
):
    """Square Attack (L-inf): every value moved by at most th, searched on random squares.

    Args:
        model: Keras model, float32 raw pixels in [0, 255] in, class
            probabilities out (docs/CONTRACTS.md).
        images: array `(num_images, height, width, channels)` of integer-valued
            pixels in [0, 255].
        labels: int array `(num_images,)`, the true classes.
        th: largest change of a value on the 0-255 scale, as in the threshold
            attack: an int in [1, 255] or a list of them (every image is
            attacked at every th).
        queries: most model evaluations per image and th, the stripes
            initialisation included (the paper's 10,000).
        p_init: initial fraction of the pixels in the square window (the
            authors' L-inf default 0.05); the schedule divides it down to
            p_init / 512 over the budget.
        seed: int >= 0; the same seed gives the same table.
        target_labels: int array `(num_images,)` for a targeted attack, or None.
        fitness: "margin" (default) or "probability"; see the module docstring.
        max_batch_size: most images searched at once (one candidate each per
            model call).
        return_images: also return the adversarial images.
        progress: show a progress bar over images.

    Returns:
        The result table (`rzs.attacks.results.COLUMNS`), one row per image and
        th, sorted by image and th; `generations` counts scored candidates (the
        initialisation and every iteration), equal to `queries`. With
        `return_images=True`, the tuple `(table, adversarial_images)`, a uint8
        array `(num_rows, height, width, channels)` holding per row the first
        misclassified candidate, or the kept one when the attack failed.
    """
    images = validation.check_images(images, model, integer_valued=True)
    p_init = validation.check_fraction(p_init, "p_init")
    height, width = images.shape[1:3]
    if min(height, width) < 2:
        raise ValueError(
            f"Expected images of at least 2 x 2 pixels. Received: images.shape={images.shape}"
        )

    def new_proposal(image, th, rng, budget):
        return SquareProposal(image, th, rng, budget, p_init)

    return run_random_search(
        "square",
        new_proposal,
        model,
        images,
        labels,
        validation.check_th(th, 255),
        queries,
        seed,
        target_labels,
        fitness,
        max_batch_size,
        return_images,
        progress,
    )


def square_p_schedule(p_init, iteration, total_queries):
    """The Square Attack's fraction p of pixels in the window at `iteration`.

    The authors' `p_selection`: the iteration is rescaled to a budget of 10,000,
    `i' = floor(10000 * iteration / total_queries)`, and p halves at fixed
    points of it:

        i' in [0, 10] -> p_init,    (10, 50] -> p_init / 2,  (50, 200] -> / 4,
        (200, 500] -> / 8,          (500, 1000] -> / 16,     (1000, 2000] -> / 32,
        (2000, 4000] -> / 64,       (4000, 6000] -> / 128,   (6000, 8000] -> / 256,
        (8000, 10000] -> / 512.

    Args:
        p_init: float in (0, 1].
        iteration: int >= 0, iterations done after the initialisation.
        total_queries: the image's query budget.

    Returns:
        float, the fraction p.
    """
    rescaled = int(iteration / total_queries * 10000)
    for end, divisor in (
        (10, 1),
        (50, 2),
        (200, 4),
        (500, 8),
        (1000, 16),
        (2000, 32),
        (4000, 64),
        (6000, 128),
        (8000, 256),
        (10000, 512),
    ):
        if rescaled <= end:
            return p_init / divisor
    return p_init


class SquareProposal:
    """The L-inf Square Attack's candidates for one image at one th.

    Args:
        image: float32 array `(height, width, channels)`, integer-valued.
        th: int, the L-inf budget on the 0-255 scale.
        rng: `numpy.random.Generator` that draws all of the search's samples.
        total_queries: the image's query budget (sets the p schedule).
        p_init: initial fraction of the pixels in the window.
    """

    def __init__(self, image, th, rng, total_queries, p_init):
        self._image = image
        self._th = th
        self._rng = rng
        self._total_queries = total_queries
        self._p_init = p_init
        self._best = None
        self._candidate = None

    def first(self):
        """Vertical stripes: each column of each channel moved by +th or -th."""
        _, width, channels = self._image.shape
        signs = self._rng.choice(np.array([-1.0, 1.0], dtype="float32"), size=(1, width, channels))
        self._candidate = np.clip(self._image + self._th * signs, 0, 255)
        return self._candidate

    def propose(self, iteration):
        """The kept image with one random square window redrawn to +th or -th per channel.

        Args:
            iteration: int >= 1, the query being proposed (1 follows the
                initialisation).

        Returns:
            float32 array `(height, width, channels)`.
        """
        height, width, channels = self._image.shape
        p = square_p_schedule(self._p_init, iteration - 1, self._total_queries)
        side = int(np.rint(np.sqrt(p * height * width)))
        # At least one pixel, and a window that leaves room to move, as the authors clamp it.
        side = min(max(side, 1), min(height, width) - 1)
        row = self._rng.integers(0, height - side)
        column = self._rng.integers(0, width - side)
        window = (slice(row, row + side), slice(column, column + side))
        clean_window = self._image[window]
        kept_window = self._best[window]
        # Redraw the signs until the window changes: a draw equal to the kept
        # window would spend a query on the kept image again.
        while True:
            signs = self._rng.choice(np.array([-1.0, 1.0], dtype="float32"), size=channels)
            new_window = np.clip(clean_window + self._th * signs, 0, 255)
            if np.any(new_window != kept_window):
                break
        self._candidate = self._best.copy()
        self._candidate[window] = new_window
        return self._candidate

    def accept(self):
        """Keep the last proposed candidate."""
        self._best = self._candidate


@dataclasses.dataclass
class _RunningSearch:
    """The random search of one image at one th, with its kept candidate."""

    image: int
    th: int
    proposal: object
    queries: int = 0
    best_fitness: float = np.inf
    best_candidate: np.ndarray | None = None
    best_scores: np.ndarray | None = None


def run_random_search(
    attack,
    new_proposal,
    model,
    images,
    labels,
    th_values,
    queries,
    seed,
    target_labels,
    fitness,
    max_batch_size,
    return_images,
    progress,
):
    """Runs a random-search attack on every image at every th; see `square_attack`.

    Every running image proposes one candidate per iteration; all of them are
    scored in one model call. A candidate is kept when its fitness is strictly
    lower than the kept one's (the first candidate is always kept); the first
    misclassified candidate ends the image's search, and so does the budget.

    Args:
        attack: name written to the table ("square", "sparse_rs").
        new_proposal: callable `(image, th, rng, queries)` returning an object
            with `first()` and `propose(iteration)` (each a float32 candidate
            `(height, width, channels)`) and `accept()`.
        model, labels, queries, seed, target_labels, fitness, max_batch_size,
        return_images, progress: as in `square_attack`, unchecked.
        images: float32 array `(num_images, height, width, channels)`, checked.
        th_values: list of checked th.

    Returns:
        As in `square_attack`.
    """
    num_classes = model.output_shape[-1]
    labels = validation.check_labels(labels, len(images), num_classes)
    target_labels = validation.check_target_labels(target_labels, labels, num_classes)
    queries = validation.check_positive_integer(queries, "queries")
    seed = validation.check_positive_integer(seed, "seed", minimum=0)
    validation.check_choice(fitness, "fitness", FITNESSES)
    max_batch_size = validation.check_positive_integer(max_batch_size, "max_batch_size")
    targeted = target_labels is not None
    objective_labels = target_labels if targeted else labels
    scores_model = model_calls.scoring_model(model)
    clean_scores = model_calls.predict_scores(scores_model, images, max_batch_size)
    clean_predictions = np.argmax(clean_scores, axis=1)
    if targeted:
        clean_success = clean_predictions == target_labels
        clean_stop_reason = "clean_on_target"
    else:
        clean_success = clean_predictions != labels
        clean_stop_reason = "clean_misclassified"

    rows = []
    pending = []
    for image in range(len(images)):
        for th in th_values:
            if clean_success[image]:
                rows.append(
                    FinishedSearch(
                        image, th, 0, clean_stop_reason, images[image], clean_scores[image]
                    )
                )
            else:
                pending.append((image, th))
    pending.reverse()
    progress_bar = tqdm(
        total=len(pending), desc=f"{attack} attack", unit="search", disable=not progress
    )
    running = []
    with progress_bar:
        while pending or running:
            while pending and len(running) < max_batch_size:
                image, th = pending.pop()
                # Seeded per image and th, so a search's draws do not depend on
                # which other searches share its model calls.
                rng = np.random.default_rng([seed, image, th])
                running.append(
                    _RunningSearch(image, th, new_proposal(images[image], th, rng, queries))
                )
            candidates = np.stack(
                [
                    item.proposal.first()
                    if item.queries == 0
                    else item.proposal.propose(item.queries)
                    for item in running
                ]
            )
            scores = model_calls.predict_scores(scores_model, candidates, max_batch_size)
            running_objectives = objective_labels[[item.image for item in running]]
            predictions = np.argmax(scores, axis=1)
            if targeted:
                successes = predictions == running_objectives
            else:
                successes = predictions != running_objectives
            if fitness == "margin":
                fitnesses = model_calls.margins(scores, running_objectives, targeted)
            else:
                probabilities = model_calls.probabilities_from_scores(scores)
                objective = probabilities[np.arange(len(running)), running_objectives]
                fitnesses = 1.0 - objective if targeted else objective
            still_running = []
            for index, item in enumerate(running):
                item.queries += 1
                if successes[index]:
                    rows.append(
                        FinishedSearch(
                            item.image,
                            item.th,
                            item.queries,
                            "success",
                            candidates[index],
                            scores[index],
                        )
                    )
                    progress_bar.update(1)
                    continue
                if item.best_candidate is None or fitnesses[index] < item.best_fitness:
                    item.best_fitness = fitnesses[index]
                    # Copies: a view would keep the whole batch of candidates alive.
                    item.best_candidate = candidates[index].copy()
                    item.best_scores = scores[index].copy()
                    item.proposal.accept()
                if item.queries < queries:
                    still_running.append(item)
                    continue
                rows.append(
                    FinishedSearch(
                        item.image,
                        item.th,
                        item.queries,
                        "budget",
                        item.best_candidate,
                        item.best_scores,
                    )
                )
                progress_bar.update(1)
            running = still_running
    return search_table(
        rows,
        attack=attack,
        strategy=STRATEGY,
        images=images,
        labels=labels,
        target_labels=target_labels,
        clean_scores=clean_scores,
        scores_model=scores_model,
        max_batch_size=max_batch_size,
        return_images=return_images,
    )
