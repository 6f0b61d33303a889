"""Black-box searches over a box, driven one generation at a time (ask, then tell).

The attack driver asks every running search for its next population, scores
all of them in one model call and tells each its fitness, so the searches
never call the model themselves. Both keep their own random generator, which
makes a search's result independent of which other searches share the batch.
"""

import cma
import numpy as np

# Above this many variables CMA-ES adapts only a diagonal covariance
# (sep-CMA-ES): with 400 candidates per generation a full covariance costs
# 0.13 s per generation at 784 variables (an MNIST threshold attack) and
# seconds at 3072 (CIFAR-10), against 0.02 s and 0.1 s for the diagonal one.
FULL_COVARIANCE_MAX_DIMENSION = 100


def transform_into_box(values, lower, upper):
    """cma's `BoxConstraintsLinQuadTransformation`, vectorised over candidates.

    The identity on most of the box, quadratic in a margin near each edge and
    periodic outside, so any real vector maps into `[lower, upper]`. Its
    quadratic margins make values at the edges (colours 0 and 255) more likely
    than a plain mirror does: with it the pixel attack succeeded on 2 to 4
    more of 100 Fashion-MNIST images at an equal budget.

    Args:
        values: array `(num_candidates, dimension)`.
        lower, upper: arrays `(dimension,)` with `lower < upper`.

    Returns:
        array `(num_candidates, dimension)` inside the box.
    """
    half_width = (upper - lower) / 2
    lower_margin = np.minimum(half_width, 0.05 * np.maximum(np.abs(lower), 1))
    upper_margin = np.minimum(half_width, 0.05 * np.maximum(np.abs(upper), 1))
    period = 2 * (upper - lower + lower_margin + upper_margin)
    period_start = lower - 2 * lower_margin - half_width
    far = (values < period_start) | (values > upper + 2 * upper_margin + half_width)
    shifted = values - period * np.floor((values - period_start) / period)
    values = np.where(far, shifted, values)
    values = np.where(
        values > upper + upper_margin, 2 * (upper + upper_margin) - values, values
    )
    values = np.where(
        values < lower - lower_margin, 2 * (lower - lower_margin) - values, values
    )
    near_lower = lower + (values - lower + lower_margin) ** 2 / (4 * lower_margin)
    values = np.where(values < lower + lower_margin, near_lower, values)
    near_upper = upper - (values - upper - upper_margin) ** 2 / (4 * upper_margin)
    return np.where(values > upper - upper_margin, near_upper, values)


class CMAESSearch:
    """One CMA-ES run of the `cma` package on the box `[lower, upper]`.

    CMA-ES itself runs unbounded and each candidate is mapped into the box
    before it is scored, by the transformation behind cma's `bounds` option
    (`transform_into_box`) applied to the whole population at once: cma's own
    per-candidate loop makes `ask` about 8x slower at 400 candidates.

    Args:
        mean: array `(dimension,)`, the initial mean.
        sigma: initial step size.
        lower, upper: arrays `(dimension,)`, the box.
        population: candidates per generation.
        rng: `numpy.random.Generator` that draws all of the search's samples.
        options: dict of extra `cma.CMAOptions`, overriding the defaults here.
    """

    def __init__(self, mean, sigma, lower, upper, population, rng, options=None):
        self._lower = lower
        self._upper = upper
        cma_options = {
            "popsize": population,
            # cma seeds NumPy's global generator unless given its own sampler.
            "randn": lambda *shape: rng.standard_normal(shape),
            "seed": np.nan,
            "CMA_diagonal": len(mean) > FULL_COVARIANCE_MAX_DIMENSION,
            # cma's own cap when given `bounds`: a third of the box per coordinate.
            "maxstd": (upper - lower) / 3,
            "verbose": -9,
        }
        cma_options.update(options or {})
        self._strategy = cma.CMAEvolutionStrategy(mean, sigma, cma_options)
        self._genotypes = None

    @property
    def convergence(self):
        """The first of cma's termination criteria that fired (e.g. "tolfun"), or None.

        cma stops on a flat fitness (`tolfun`, `tolflatfitness`) and on small
        steps (`tolx`); its budget criteria (`maxiter`, `maxfevals`) are left to
        the attack, which counts generations itself.
        """
        criteria = [
            name for name in self._strategy.stop() if name not in ("maxiter", "maxfevals")
        ]
        return criteria[0] if criteria else None

    def ask(self):
        """The next population, array `(population, dimension)` inside the box."""
        self._genotypes = np.asarray(self._strategy.ask())
        return transform_into_box(self._genotypes, self._lower, self._upper)

    def tell(self, fitness):
        """Update the search with the fitness (lower is better) of the last population."""
        self._strategy.tell(list(self._genotypes), np.asarray(fitness, dtype="float64"))


class DifferentialEvolutionSearch:
    """Differential evolution with the authors' SciPy settings, vectorised.

    DE/best/1 with the mutation factor drawn from U(0.5, 1) each generation
    ("dithering"), recombination 1 (trial = mutant), a Latin-hypercube initial
    population and variables that leave the box redrawn uniformly inside it.
    A trial replaces its parent when its fitness is strictly lower, as in SciPy.

    Args:
        lower, upper: arrays `(dimension,)`, the box.
        population: candidates per generation, at least 3.
        rng: `numpy.random.Generator` that draws all of the search's samples.
    """

    # Differential evolution has no convergence test here: it runs to its budget.
    convergence = None

    def __init__(self, lower, upper, population, rng):
        # float32 halves the memory traffic of a generation (784 x 784 values for
        # an MNIST threshold attack), which otherwise costs as much as scoring it.
        self._lower = np.asarray(lower, dtype="float32")
        self._upper = np.asarray(upper, dtype="float32")
        self._rng = rng
        strata = np.arange(population)[:, None] + rng.random((population, len(lower)))
        # Each variable visits every stratum once, in its own random order.
        unit_population = (rng.permuted(strata, axis=0) / population).astype("float32")
        self._population = self._lower + unit_population * (self._upper - self._lower)
        self._fitness = None
        self._trials = None

    def ask(self):
        """The next population, array `(population, dimension)` inside the box."""
        if self._fitness is None:
            return self._population
        size = len(self._population)
        members = np.arange(size)
        # Two partners per member, distinct from each other and from the member.
        first_offset = self._rng.integers(1, size, size=size)
        second_offset = self._rng.integers(1, size - 1, size=size)
        second_offset += second_offset >= first_offset
        first = (members + first_offset) % size
        second = (members + second_offset) % size
        factor = np.float32(self._rng.uniform(0.5, 1.0))
        best = self._population[np.argmin(self._fitness)]
        trials = best + factor * (self._population[first] - self._population[second])
        outside = (trials < self._lower) | (trials > self._upper)
        # Drawing a replacement for every variable and keeping those needed is
        # faster than gathering the (often 30%) outside ones.
        uniform = self._rng.random(trials.shape, dtype="float32")
        redrawn = self._lower + (self._upper - self._lower) * uniform
        self._trials = np.where(outside, redrawn, trials)
        return self._trials

    def tell(self, fitness):
        """Keep each trial that beats its parent (lower fitness is better)."""
        fitness = np.asarray(fitness, dtype="float64")
        if self._fitness is None:
            self._fitness = fitness
            return
        improved = fitness < self._fitness
        self._population[improved] = self._trials[improved]
        self._fitness[improved] = fitness[improved]
