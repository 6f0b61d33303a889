"""Attacks on trained models as cached results of the run store.

One `AttackSpec` = one attack, at every budget th of a list, on the first
`images` test images of one trained model (the authors attack the first 1000
test images, whether or not the model classifies them correctly). Its result
holds the per-image table (`table.csv`) and the per-th summary in the record.

Every attack runs on a float32 copy of the trained model
(`rzs.inference.load_float32_model`), whatever precision it was trained in;
the record says so (`inference_precision`), and so does the cache key.
"""

import dataclasses
import time

import pandas as pd

from rzs import attacks, inference, reproducibility, zeroshot
from rzs.attacks import registry as attack_registry
from rzs.training import TrainingSpec

STRATEGIES = ("cmaes", "de")
FITNESSES = ("margin", "probability")
GRADIENT_LOSSES = ("cross_entropy", "margin")
TABLE_FILE = "table.csv"
# AttackSpec's settings of one search family or another; each family takes only its own.
SEARCH_SETTINGS = (
    "strategy", "population", "generations", "fitness", "stop_on_convergence",
    "gradient_loss", "random_start", "queries",
)
SETTINGS_USED = {
    "evolutionary": ("strategy", "population", "generations", "fitness", "stop_on_convergence"),
    "random_search": ("fitness", "queries"),
    "gradient": ("gradient_loss", "random_start"),
    "minimal": (),
}


@dataclasses.dataclass(frozen=True)
class AttackSpec:
    """Everything that determines one attack result, and so its cache key."""

    model: dict  # the attacked model's TrainingSpec fields
    attack: str
    thresholds: tuple = (1, 3, 5, 10)
    images: int = 100
    strategy: str = "cmaes"
    population: int = 400
    generations: int = 100
    seed: int = 0
    fitness: str = "margin"  # evolutionary attacks: "margin" or the authors' "probability"
    stop_on_convergence: bool = False  # evolutionary attacks: let cma's tolerances end a search
    gradient_loss: str = "cross_entropy"  # fgsm, bim, pgd: "cross_entropy" or "margin", from logits
    random_start: bool = False  # pgd only: start from a random point of the eps-ball
    queries: int = 10000  # square, sparse_rs: model evaluations per image and th (the papers' 10,000)

    kind = "attack"

    def __post_init__(self):
        attack_registry.get_attack(self.attack)  # raises ValueError naming the attacks
        if self.strategy not in STRATEGIES:
            raise ValueError(f"strategy must be one of {STRATEGIES}, received {self.strategy!r}.")
        if self.fitness not in FITNESSES:
            raise ValueError(f"fitness must be one of {FITNESSES}, received {self.fitness!r}.")
        if self.gradient_loss not in GRADIENT_LOSSES:
            raise ValueError(
                f"gradient_loss must be one of {GRADIENT_LOSSES}, received {self.gradient_loss!r}."
            )
        for name in ("stop_on_convergence", "random_start"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be True or False, received {getattr(self, name)!r}.")
        object.__setattr__(self, "thresholds", tuple(self.thresholds))
        if self.entry.budgeted:
            bad = [th for th in self.thresholds if not isinstance(th, int) or not 1 <= th <= 255]
            if bad or not self.thresholds:
                raise ValueError(
                    f"thresholds must be a non-empty list of integers in [1, 255], "
                    f"received {list(self.thresholds)}."
                )
        for name in ("images", "population", "generations", "queries"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, received {value!r}.")
        self.training_spec  # validates the model fields

    @property
    def training_spec(self):
        return TrainingSpec(**self.model)

    @property
    def entry(self):
        return attack_registry.get_attack(self.attack)

    @property
    def network(self):
        return self.model["network"]

    def config(self):
        fields = dataclasses.asdict(self)
        fields["model"] = self.training_spec.config()
        fields["thresholds"] = list(self.thresholds)
        fields["inference_precision"] = inference.INFERENCE_PRECISION
        # Settings that do not affect an attack stay out of its key.
        used = SETTINGS_USED[self.entry.search]
        if self.attack != "pgd":
            used = tuple(name for name in used if name != "random_start")
        unused = [name for name in SEARCH_SETTINGS if name not in used]
        for name in unused:
            fields.pop(name)
        return fields


def run_attack(spec, model, images, labels):
    """The attack's result table on `images` (uint8 NHWC) with true `labels`.

    The attacks score a model that does not compute in float32 through a
    float32 copy of it (`rzs.attacks.model_calls.scoring_model`).
    """
    entry = spec.entry
    if entry.search == "evolutionary":
        return entry.function(
            model,
            images,
            labels,
            list(spec.thresholds),
            strategy=spec.strategy,
            population=spec.population,
            generations=spec.generations,
            seed=spec.seed,
            fitness=spec.fitness,
            stop_on_convergence=spec.stop_on_convergence,
        )
    if entry.search == "random_search":
        return entry.function(
            model, images, labels, list(spec.thresholds), queries=spec.queries, seed=spec.seed,
            fitness=spec.fitness,
        )
    if entry.search == "minimal":
        return entry.function(model, images, labels)
    options = {"loss": spec.gradient_loss}
    if spec.attack == "pgd":
        options.update(seed=spec.seed, random_start=spec.random_start)
    return pd.concat(
        [entry.function(model, images, labels, eps=th / 255, **options) for th in spec.thresholds],
        ignore_index=True,
    )


def get_or_attack(spec, store):
    """The stored result of `spec`, attacking only if it is missing.

    The attacked model is loaded from the store (trained first if missing).
    """

    def compute():
        training_spec = spec.training_spec
        trained = zeroshot.get_or_train(training_spec, store)
        model = inference.load_float32_model(trained.path(zeroshot.MODEL_FILE))
        dataset, _ = training_spec.load_data()
        images, labels = dataset.x_test[: spec.images], dataset.y_test[: spec.images]
        start = time.perf_counter()
        table = run_attack(spec, model, images, labels)
        seconds = time.perf_counter() - start
        summary = attacks.summarize(table)
        record = {
            # NaN (th of unbudgeted attacks, accuracy on zero correct images) as JSON null.
            "summary": summary.astype(object).where(summary.notna(), None).to_dict(orient="records"),
            "timings": {"attack_seconds": seconds, "images_per_second": len(images) / seconds},
            "inference_precision": inference.precision(model),
            **reproducibility.environment(),
        }
        return record, {}, lambda directory: table.to_csv(directory / TABLE_FILE, index=False)

    return store.compute(spec.kind, spec.config(), compute)
