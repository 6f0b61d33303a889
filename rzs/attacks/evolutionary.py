"""Pixel (L0) and threshold (L-inf) attacks: black-box, score-based, evolutionary.

Kotyan & Vargas, "Adversarial robustness assessment: Why in evaluation both L0
and L-inf attacks are necessary" (PLOS ONE 2022). The search minimises a
fitness computed in float32 from the model's log-scale scores
(`rzs.attacks.model_calls`):

- "margin" (the default): `s_y - max_{j != y} s_j`, the true class's
  log-probability minus the best other one (targeted: the mirror,
  `max_{j != t} s_j - s_t`). It keeps ranking candidates on images the model
  is sure of, where every probability of the true class rounds to 1.0.
- "probability": the authors' fitness, the probability of the true class
  (targeted: 1 - the probability of the target). On a confident image every
  candidate scores exactly 1.0 and the search has nothing to follow.

An image's search ends at its first successful generation or after its last
one; the search's own convergence tests end it early only when asked
(`stop_on_convergence`), and each row records why it ended (`stop_reason`).

Speed comes from batching: up to `max_batch_size // population` images are
searched at once, the candidates of all of them are scored in one model call
per generation, and a finished image's place goes to the next one straight
away, so the batch stays full until the last images.
"""

import dataclasses

import numpy as np
import threadpoolctl
from tqdm.auto import tqdm

from rzs.attacks import model_calls, validation
from rzs.attacks.encodings import PixelEncoding, ThresholdEncoding
from rzs.attacks.results import FinishedSearch, search_table
from rzs.attacks.search import CMAESSearch, DifferentialEvolutionSearch

STRATEGIES = ("cmaes", "de")
FITNESSES = ("margin", "probability")
# The authors' binary search for an image's minimal th.
BINARY_SEARCH_RANGE = (1, 127)


def pixel_attack(
    model,
    images,
    labels,
    th,
    strategy="cmaes",
    population=400,
    generations=100,
    seed=0,
    target_labels=None,
    max_batch_size=8192,
    return_images=False,
    progress=True,
    cma_options=None,
    fitness="margin",
    stop_on_convergence=False,
):
    """Pixel attack (L0): change at most th pixels, each to any colour.

    Each of the th pixels is searched as (row, column, one value per channel),
    so the search has 5 * th variables on colour images and 3 * th on grey
    ones; values are rounded to integers in [0, 255].

    Args:
        model: Keras model, float32 raw pixels in [0, 255] in, class
            probabilities out (docs/CONTRACTS.md).
        images: array `(num_images, height, width, channels)` of integer-valued
            pixels in [0, 255] (uint8 or float).
        labels: int array `(num_images,)`, the true classes.
        th: number of pixels: an int in [1, height * width], a list of them
            (every image is attacked at every th), or None for the authors'
            binary search of each image's minimal th in 1..127.
        strategy: "cmaes" (CMA-ES, the paper's default) or "de" (differential
            evolution).
        population: candidates per generation and image (the authors' 400).
        generations: most generations per image and th (the authors' 100);
            an image costs at most `population * generations` queries per th.
        seed: int >= 0; the same seed gives the same table.
        target_labels: int array `(num_images,)` for a targeted attack, or None.
        max_batch_size: most images per model call; sets how many images are
            searched at once (`max_batch_size // population`).
        return_images: also return the adversarial images.
        progress: show a progress bar over images.
        cma_options: dict of `cma.CMAOptions` overriding the defaults of
            `rzs.attacks.search.CMAESSearch`.
        fitness: "margin" (log-margin, the default) or "probability" (the
            authors' probability of the true class); see the module docstring.
        stop_on_convergence: also end an image's search, unsuccessful, when
            CMA-ES's own termination criteria fire (flat fitness, tiny steps),
            as `cma` does by default. Off by default: a search that gives up on
            a flat fitness reports an image as robust after part of its budget.

    Returns:
        The result table (`rzs.attacks.results.COLUMNS`), one row per image and
        th tried, sorted by image and th. With `return_images=True`, the tuple
        `(table, adversarial_images)` where `adversarial_images` is a uint8
        array `(num_rows, height, width, channels)` holding, per row, the first
        successful candidate found, or the best one when the attack failed.
    """
    images = validation.check_images(images, model, integer_valued=True)
    return _run_attack(
        PixelEncoding(images.shape[1:]),
        model,
        images,
        labels,
        th,
        strategy,
        population,
        generations,
        seed,
        target_labels,
        max_batch_size,
        return_images,
        progress,
        cma_options,
        fitness,
        stop_on_convergence,
    )


def threshold_attack(
    model,
    images,
    labels,
    th,
    strategy="cmaes",
    population=400,
    generations=100,
    seed=0,
    target_labels=None,
    max_batch_size=8192,
    return_images=False,
    progress=True,
    cma_options=None,
    fitness="margin",
    stop_on_convergence=False,
):
    """Threshold attack (L-inf): move every value by at most th.

    Every channel value x may become any integer in [x - th, x + th] that lies
    in [0, 255]; the search has one variable per value (784 on MNIST, 3072 on
    CIFAR-10), so CMA-ES adapts a diagonal covariance there (see
    `rzs.attacks.search.FULL_COVARIANCE_MAX_DIMENSION`).

    Args:
        model, images, labels, strategy, population, generations, seed,
        target_labels, max_batch_size, return_images, progress, cma_options,
        fitness, stop_on_convergence: as in `pixel_attack`.
        th: largest change of a value on the 0-255 scale: an int in [1, 255], a
            list of them, or None for the binary search of each image's minimal
            th in 1..127.

    Returns:
        As in `pixel_attack`.
    """
    images = validation.check_images(images, model, integer_valued=True)
    return _run_attack(
        ThresholdEncoding(images.shape[1:]),
        model,
        images,
        labels,
        th,
        strategy,
        population,
        generations,
        seed,
        target_labels,
        max_batch_size,
        return_images,
        progress,
        cma_options,
        fitness,
        stop_on_convergence,
    )


def _fixed_schedule(th_values):
    """Tries every th in turn, whatever the outcome."""
    for th in th_values:
        yield th


def _binary_search_schedule(low, high):
    """The authors' binary search: a success moves the upper end below th."""
    while low <= high:
        th = (low + high) // 2
        succeeded = yield th
        if succeeded:
            high = th - 1
        else:
            low = th + 1


@dataclasses.dataclass
class _RunningSearch:
    """The search for one image at one th, with its best candidate so far."""

    image: int
    th: int
    search: object
    generation: int = 0
    queries: int = 0
    best_fitness: float = np.inf
    best_candidate: np.ndarray | None = None
    best_scores: np.ndarray | None = None


def _run_attack(
    encoding,
    model,
    images,
    labels,
    th,
    strategy,
    population,
    generations,
    seed,
    target_labels,
    max_batch_size,
    return_images,
    progress,
    cma_options,
    fitness,
    stop_on_convergence,
):
    """Checks the arguments and runs the attack of `encoding`; see `pixel_attack`."""
    num_classes = model.output_shape[-1]
    labels = validation.check_labels(labels, len(images), num_classes)
    target_labels = validation.check_target_labels(target_labels, labels, num_classes)
    th_values = validation.check_th(th, encoding.maximum_th, allow_none=True)
    validation.check_choice(strategy, "strategy", STRATEGIES)
    validation.check_choice(fitness, "fitness", FITNESSES)
    if not isinstance(stop_on_convergence, bool):
        raise ValueError(
            "Expected `stop_on_convergence` to be True or False. Received: "
            f"stop_on_convergence={stop_on_convergence!r}"
        )
    # DE/best/1 needs two partners besides each member.
    population = validation.check_positive_integer(population, "population", minimum=3)
    generations = validation.check_positive_integer(generations, "generations")
    seed = validation.check_positive_integer(seed, "seed", minimum=0)
    max_batch_size = validation.check_positive_integer(max_batch_size, "max_batch_size")
    if cma_options is not None and not isinstance(cma_options, dict):
        raise ValueError(
            f"Expected `cma_options` to be a dict or None. Received: cma_options={cma_options!r}"
        )
    run = _AttackRun(
        encoding=encoding,
        model=model,
        images=images,
        labels=labels,
        target_labels=target_labels,
        strategy=strategy,
        population=population,
        generations=generations,
        seed=seed,
        max_batch_size=max_batch_size,
        cma_options=cma_options,
        fitness=fitness,
        stop_on_convergence=stop_on_convergence,
    )
    records = run.run(th_values, progress)
    return search_table(
        records,
        attack=run.encoding.name,
        strategy=run.strategy,
        images=run.images,
        labels=run.labels,
        target_labels=run.target_labels,
        clean_scores=run.clean_scores,
        scores_model=run.scores_model,
        max_batch_size=run.max_batch_size,
        return_images=return_images,
    )


@dataclasses.dataclass
class _AttackRun:
    """One call of an evolutionary attack on a batch of images (arguments checked)."""

    encoding: PixelEncoding | ThresholdEncoding
    model: object
    images: np.ndarray
    labels: np.ndarray
    target_labels: np.ndarray | None
    strategy: str
    population: int
    generations: int
    seed: int
    max_batch_size: int
    cma_options: dict | None
    fitness: str
    stop_on_convergence: bool

    def __post_init__(self):
        self.targeted = self.target_labels is not None
        self.objective_labels = self.target_labels if self.targeted else self.labels
        self.scores_model = model_calls.scoring_model(self.model)
        self.clean_scores = model_calls.predict_scores(
            self.scores_model, self.images, self.max_batch_size
        )
        clean_predictions = np.argmax(self.clean_scores, axis=1)
        if self.targeted:
            self.clean_success = clean_predictions == self.target_labels
            self.clean_stop_reason = "clean_on_target"
        else:
            self.clean_success = clean_predictions != self.labels
            self.clean_stop_reason = "clean_misclassified"

    def fitness_and_success(self, scores, image):
        """Fitness (lower is better) and success of candidates for `image`.

        Args:
            scores: array `(num_candidates, num_classes)` of log-scale scores.
            image: index of the attacked image.

        Returns:
            Arrays `(num_candidates,)`: float fitness and bool success.
        """
        objective_label = self.objective_labels[image]
        predicted = np.argmax(scores, axis=1)
        success = predicted == objective_label if self.targeted else predicted != objective_label
        if self.fitness == "margin":
            objective_labels = np.full(len(scores), objective_label)
            return model_calls.margins(scores, objective_labels, self.targeted), success
        objective_probability = model_calls.probabilities_from_scores(scores)[:, objective_label]
        if self.targeted:
            return 1.0 - objective_probability, success
        return objective_probability, success

    def new_search(self, image, th):
        """A search for `image` at `th`, seeded by (seed, image, th).

        Seeding per image and th keeps a search's random draws independent of
        which other images share its model calls.
        """
        rng = np.random.default_rng([self.seed, image, th])
        lower, upper = self.encoding.bounds(self.images[image], th)
        if self.strategy == "de":
            search = DifferentialEvolutionSearch(lower, upper, self.population, rng)
        else:
            search = CMAESSearch(
                self.encoding.initial_mean(self.images[image], th, rng),
                self.encoding.initial_sigma(th),
                lower,
                upper,
                self.population,
                rng,
                self.cma_options,
            )
        return _RunningSearch(image, th, search)

    def run(self, th_values, progress):
        """Attacks every image at its th values.

        Args:
            th_values: list of th to try on every image, or None for the binary
                search of each image's minimal th.
            progress: show a progress bar over images.

        Returns:
            List of `FinishedSearch`.
        """
        if th_values is None:
            low, high = BINARY_SEARCH_RANGE
            high = min(high, self.encoding.maximum_th)
            schedules = [_binary_search_schedule(low, high) for _ in self.images]
        else:
            schedules = [_fixed_schedule(th_values) for _ in self.images]
        records = []
        description = f"{self.encoding.name} attack ({self.strategy})"
        progress_bar = tqdm(
            total=len(self.images), desc=description, unit="image", disable=not progress
        )

        def advance(image, succeeded):
            """The image's search at its next th; None when its schedule is done.

            Images that succeed before any change (the model already gets them
            wrong, or right for a targeted attack) succeed at every th without
            a search or a query.
            """
            schedule = schedules[image]
            try:
                th = next(schedule) if succeeded is None else schedule.send(succeeded)
                while self.clean_success[image]:
                    records.append(
                        FinishedSearch(
                            image,
                            th,
                            queries=0,
                            generations=0,
                            stop_reason=self.clean_stop_reason,
                            adversarial=self.images[image],
                            scores=self.clean_scores[image],
                        )
                    )
                    th = schedule.send(True)
            except StopIteration:
                progress_bar.update(1)
                return None
            return self.new_search(image, th)

        capacity = max(1, self.max_batch_size // self.population)
        next_image = 0
        running = []
        # CMA-ES's small eigendecompositions ran up to 100x slower here when BLAS
        # threads competed with the model's spinning threads; one thread is plenty.
        with threadpoolctl.threadpool_limits(limits=1, user_api="blas"), progress_bar:
            while True:
                while len(running) < capacity and next_image < len(self.images):
                    started = advance(next_image, None)
                    next_image += 1
                    if started is not None:
                        running.append(started)
                if not running:
                    return records
                still_running = []
                for item, succeeded in self.generation(running, records):
                    if succeeded is None:
                        still_running.append(item)
                        continue
                    follow_up = advance(item.image, succeeded)
                    if follow_up is not None:
                        still_running.append(follow_up)
                running = still_running

    def generation(self, running, records):
        """Scores one generation of every running search in one batched model call.

        Appends a row to `records` for each search that ends.

        Returns:
            List of `(search, outcome)`: outcome None while it goes on, else
            whether it succeeded.
        """
        candidates = [
            self.encoding.decode(self.images[item.image], item.search.ask(), item.th)
            for item in running
        ]
        scores = model_calls.predict_scores(
            self.scores_model, np.concatenate(candidates), self.max_batch_size
        )
        outcomes = []
        offset = 0
        for item, item_candidates in zip(running, candidates):
            item_scores = scores[offset : offset + len(item_candidates)]
            offset += len(item_candidates)
            fitness, success = self.fitness_and_success(item_scores, item.image)
            item.queries += len(item_candidates)
            item.generation += 1
            if success.any():
                # The generation that first succeeds ends the search; its best
                # successful candidate is the adversarial image, and the scores
                # that made it succeed decide the row's success.
                winner = np.argmin(np.where(success, fitness, np.inf))
                records.append(
                    self.finished_row(item, "success", item_candidates[winner], item_scores[winner])
                )
                outcomes.append((item, True))
                continue
            best = np.argmin(fitness)
            if item.best_candidate is None or fitness[best] < item.best_fitness:
                item.best_fitness = fitness[best]
                item.best_candidate = item_candidates[best]
                item.best_scores = item_scores[best]
            item.search.tell(fitness)
            convergence = item.search.convergence if self.stop_on_convergence else None
            if item.generation < self.generations and convergence is None:
                outcomes.append((item, None))
                continue
            stop_reason = "budget" if convergence is None else f"converged:{convergence}"
            records.append(
                self.finished_row(item, stop_reason, item.best_candidate, item.best_scores)
            )
            outcomes.append((item, False))
        return outcomes

    @staticmethod
    def finished_row(item, stop_reason, adversarial, scores):
        return FinishedSearch(
            item.image,
            item.th,
            queries=item.queries,
            generations=item.generation,
            stop_reason=stop_reason,
            adversarial=adversarial,
            scores=scores,
        )
