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

import numpy as np
import pandas as pd

from rzs import attacks, inference, options, reproducibility, zeroshot
from rzs.attacks import registry as attack_registry
from rzs.training import TrainingSpec

TABLE_FILE = "table.csv"
ADVERSARIALS_FILE = "adversarials.npz"
# AttackSpec's settings of one search family or another (every attack's option but `images`);
# each family takes only its own into its key.
SEARCH_SETTINGS = tuple(field.name for field in dataclasses.fields(options.AttackOptions) if field.name != "images")
SETTINGS_USED = {
    "evolutionary": ("strategy", "population", "generations", "fitness", "stop_on_convergence"),
    "random_search": ("fitness", "queries"),
    "gradient": ("gradient_loss", "random_start"),
    "minimal": (),
}


@dataclasses.dataclass(frozen=True)
class AttackSpec(options.AttackOptions):
    """Everything that determines one attack result, and so its cache key.

    The search settings are `rzs.options.AttackOptions` (keyword only); a
    study names them `attack_<name>`.
    """

    model: dict  # the attacked model's TrainingSpec fields
    attack: str
    thresholds: tuple = (1, 3, 5, 10)
    seed: int = 0

    kind = "attack"

    def __post_init__(self):
        attack_registry.get_attack(self.attack)  # raises ValueError naming the attacks
        self.validate()
        object.__setattr__(self, "thresholds", tuple(self.thresholds))
        if self.entry.budgeted:
            bad = [th for th in self.thresholds if not options.is_integer(th) or not 1 <= th <= 255]
            if bad or not self.thresholds:
                raise ValueError(
                    f"thresholds must be a non-empty list of integers in [1, 255], "
                    f"received {list(self.thresholds)}."
                )
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


def run_attack(spec, model, images, labels, return_images=False):
    """The attack's result table on `images` (uint8 NHWC) with true `labels`.

    The attacks score a model that does not compute in float32 through a
    float32 copy of it (`rzs.attacks.model_calls.scoring_model`). With
    `return_images`, the tuple `(table, adversarial_images)`, one image per
    table row in table order: uint8 from the search attacks, float32 from the
    gradient and minimal ones, whose images are not integer-valued.
    """
    entry = spec.entry
    if entry.search in ("evolutionary", "random_search"):
        # The settings in the cache key are exactly the settings the search receives.
        settings = {name: getattr(spec, name) for name in SETTINGS_USED[entry.search]}
        return entry.function(
            model, images, labels, list(spec.thresholds), seed=spec.seed, return_images=return_images, **settings
        )
    if entry.search == "minimal":
        return entry.function(model, images, labels, return_images=return_images)
    options = {"loss": spec.gradient_loss, "return_images": return_images}
    if spec.attack == "pgd":
        options.update(seed=spec.seed, random_start=spec.random_start)
    outputs = [entry.function(model, images, labels, eps=th / 255, **options) for th in spec.thresholds]
    if not return_images:
        return pd.concat(outputs, ignore_index=True)
    tables, adversarials = zip(*outputs)
    return pd.concat(tables, ignore_index=True), np.concatenate(adversarials)


def get_or_attack(spec, store):
    """The stored result of `spec`, attacking only if it is missing.

    The attacked model is loaded from the store (trained first if missing).
    Beside the table, `ADVERSARIALS_FILE` holds the adversarial images (array
    "images", one per table row, in table order, compressed) for
    `rzs.adversarial_transfer`; it is not part of the cache key, so a result
    stored before it existed lacks it (docs/metrics.md says what then).
    """

    def compute():
        training_spec = spec.training_spec
        trained = zeroshot.get_or_train(training_spec, store)
        model = inference.load_float32_model(trained.path(zeroshot.MODEL_FILE))
        dataset, _ = training_spec.load_data()
        images, labels = dataset.x_test[: spec.images], dataset.y_test[: spec.images]
        start = time.perf_counter()
        table, adversarials = run_attack(spec, model, images, labels, return_images=True)
        seconds = time.perf_counter() - start
        summary = attacks.summarize(table)
        record = {
            # NaN (th of unbudgeted attacks, accuracy on zero correct images) as JSON null.
            "summary": summary.astype(object).where(summary.notna(), None).to_dict(orient="records"),
            "timings": {"attack_seconds": seconds, "images_per_second": len(images) / seconds},
            "inference_precision": inference.precision(model),
            **reproducibility.environment(),
        }
        return record, {}, lambda directory: _write_result_files(directory, table, adversarials)

    return store.compute(spec.kind, spec.config(), compute)


def _write_result_files(directory, table, adversarials):
    """The per-image table, and the adversarial images compressed: uint8 images compress to a
    fraction of their size, and they are the largest part of a result."""
    table.to_csv(directory / TABLE_FILE, index=False)
    np.savez_compressed(directory / ADVERSARIALS_FILE, images=adversarials)
