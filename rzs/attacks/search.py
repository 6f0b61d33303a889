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


def reflect_into_box(values, lower, upper):
    """Mirror `values` back into `[lower, upper]` at the box edges (periodically).

    Args:
        values: array `(num_candidates, dimension)`.
        lower, upper: arrays `(dimension,)` with `lower < upper`.

    Returns:
        array `(num_candidates, dimension)` inside the box.
    """
    width = upper - lower
    phase = np.mod(values - lower, 2 * width)
    return lower + np.where(phase > width, 2 * width - phase, phase)


class CMAESSearch:
    """One CMA-ES run of the `cma` package on the box `[lower, upper]`.

    CMA-ES itself runs unbounded and each candidate is mirrored into the box
    before it is scored. This is the same idea as cma's `bounds` option (a
    transformation of an unbounded search), vectorised: cma's own per-candidate
    bound transformation makes `ask` about 8x slower at 400 candidates.

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
            "verbose": -9,
        }
        cma_options.update(options or {})
        self._strategy = cma.CMAEvolutionStrategy(mean, sigma, cma_options)
        self._genotypes = None

    @property
    def stopped(self):
        """Whether cma's own termination criteria (flat fitness, tolerances) fired."""
        return bool(self._strategy.stop())

    def ask(self):
        """The next population, array `(population, dimension)` inside the box."""
        self._genotypes = np.asarray(self._strategy.ask())
        return reflect_into_box(self._genotypes, self._lower, self._upper)

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

    stopped = False

    def __init__(self, lower, upper, population, rng):
        self._lower = lower
        self._upper = upper
        self._rng = rng
        strata = (np.arange(population)[:, None] + rng.random((population, len(lower)))) / population
        # Each variable visits every stratum once, in its own random order.
        unit_population = rng.permuted(strata, axis=0)
        self._population = lower + unit_population * (upper - lower)
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
        factor = self._rng.uniform(0.5, 1.0)
        best = self._population[np.argmin(self._fitness)]
        trials = best + factor * (self._population[first] - self._population[second])
        outside = (trials < self._lower) | (trials > self._upper)
        lower = np.broadcast_to(self._lower, trials.shape)[outside]
        upper = np.broadcast_to(self._upper, trials.shape)[outside]
        trials[outside] = self._rng.uniform(lower, upper)
        self._trials = trials
        return trials

    def tell(self, fitness):
        """Keep each trial that beats its parent (lower fitness is better)."""
        fitness = np.asarray(fitness, dtype="float64")
        if self._fitness is None:
            self._fitness = fitness
            return
        improved = fitness < self._fitness
        self._population[improved] = self._trials[improved]
        self._fitness[improved] = fitness[improved]
