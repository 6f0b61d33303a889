"""The study's options, each declared once: its name, default, meaning and allowed values.

Four groups, each a dataclass whose fields are options:

- `TrainingOptions`: how every network is trained; `rzs.training.TrainingSpec`
  inherits them, so they are part of every model's cache key.
- `AttackOptions`: the attacks' images and search settings; `rzs.robustness.AttackSpec`
  inherits them. A study names them with the prefix `attack_` (`attack_images`).
- `MetricOptions`: how DBM and AM are measured (docs/metrics.md).
- `DefenceOptions`: which defences, on which networks and attacks.

`rzs.study.Study` is these groups' fields side by side (`flattened`), plus the
dataset, the networks and the grid; `python -m rzs.parameters_cell` writes them,
with their defaults and the comment on their line, into every notebook's
`parameters` cell. An option's `check` runs wherever its group's fields are
validated (`validate_fields`), with a message naming the option as the user types it.
"""

import dataclasses
from collections.abc import Callable
from pathlib import Path

from rzs import attacks, data, defences, metrics

PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")
OPTIMIZERS = ("sgd", "adam")
# "cosine": the learning rate falls from its initial value to 0 along a half
# cosine, step by step (keras.optimizers.schedules.CosineDecay). Short runs
# need the decay the authors' piecewise schedules only reach after 100 epochs.
# "warmup_cosine": the same, after a linear rise from 0 over the first
# `rzs.training.WARMUP_FRACTION` of the steps. AllConv needs it: its class maps
# pass through a ReLU, and a full learning rate from the first step pushes a
# class's map below 0 everywhere, after which that class gets no gradient and
# is never predicted (BENCHMARKS.md, "AllConv's dead classes").
# Both run per step, in the optimizer, not in a per-epoch callback.
SCHEDULES = ("cosine", "warmup_cosine")
GRADIENT_LOSSES = ("cross_entropy", "margin")
# "temperature": DBM, AM and the embedded DBI are also computed on soft labels whose temperature
# was fitted on held-out in-distribution images (docs/metrics.md, "Calibration").
CALIBRATIONS = ("none", "temperature")
METRIC_IMAGES = ("test", "train")
# Relative results_dir, figures_dir and tables_dir are relative to the repository, the folder
# of pyproject.toml and notebooks/, so that a study writes to the same place from any directory.
PROJECT_ROOT = Path(__file__).resolve().parents[1]


@dataclasses.dataclass(frozen=True)
class Check:
    """What an option's values must be.

    `accepts(value)` says whether a value is allowed; `description` completes
    "<name> must be ...", a string or a function returning one, for choices
    known only once registries are filled.
    """

    accepts: Callable
    description: str | Callable

    def __call__(self, value, name):
        if not self.accepts(value):
            description = self.description() if callable(self.description) else self.description
            raise ValueError(f"{name} must be {description}, received {value!r}.")


# Plain Python numbers only, since options become JSON cache keys; and not bools, which Python
# counts as integers: an option given True is a mistake, not 1.
def is_integer(value):
    return isinstance(value, int) and not isinstance(value, bool)


def is_real(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def optional(check):
    """`check`, or None (the option's "use the recipe's" or "all")."""
    description = check.description
    return Check(
        lambda value: value is None or check.accepts(value),
        lambda: "None or " + (description() if callable(description) else description),
    )


def one_of(choices):
    """One of `choices`, a collection or a function returning one (a registry's names)."""
    names = choices if callable(choices) else (lambda: choices)
    return Check(lambda value: isinstance(value, str) and value in names(), lambda: f"one of {list(names())}")


def list_of(choices, empty_allowed=False):
    """A list of distinct names from `choices` (see `one_of`)."""
    names = choices if callable(choices) else (lambda: choices)

    def accepts(value):
        return (
            isinstance(value, (list, tuple))
            and (empty_allowed or len(value) > 0)
            and all(isinstance(name, str) and name in names() for name in value)
            and len(set(value)) == len(value)
        )

    size = "a" if empty_allowed else "a non-empty"
    return Check(accepts, lambda: f"{size} list of distinct names from {list(names())}")


def number_in(low, high, closed_high=False):
    """A number in [low, high), or [low, high] when `closed_high`."""
    bracket = "]" if closed_high else ")"
    return Check(
        lambda value: is_real(value) and low <= value and (value <= high if closed_high else value < high),
        f"a number in [{low}, {high}{bracket}",
    )


POSITIVE_INTEGER = Check(lambda value: is_integer(value) and value >= 1, "a positive integer")
POSITIVE_NUMBER = Check(lambda value: is_real(value) and value > 0, "a positive number")
BOOLEAN = Check(lambda value: isinstance(value, bool), "True or False")
NAMES = Check(
    lambda value: isinstance(value, (list, tuple)) and len(value) > 0 and all(isinstance(name, str) for name in value),
    "a non-empty list of names",
)
NAME = Check(lambda value: isinstance(value, str) and value != "", "a non-empty string")
DATASET = Check(
    lambda value: value in data.DATASET_NAMES
    or (isinstance(value, str) and value.startswith("npz:") and Path(value[4:]).expanduser().is_file()),
    f"one of {list(data.DATASET_NAMES)}, or npz:PATH naming an existing .npz file",
)


def option(default=None, check=None, default_factory=None):
    """A dataclass field for an option: its default and the `Check` its values must pass."""
    if default_factory is not None:
        return dataclasses.field(default_factory=default_factory, metadata={"check": check})
    return dataclasses.field(default=default, metadata={"check": check})


def validate_fields(instance):
    """Run the check of every field of `instance` that declares one, naming the field as declared."""
    for field in dataclasses.fields(instance):
        check = field.metadata.get("check")
        if check is not None:
            check(getattr(instance, field.name), field.name)


class Options:
    """What every group of options shares: the prefix a study puts before its fields' names."""

    prefix = ""

    def validate(self):
        """Check every option where it is declared; ValueError naming the first bad one."""
        validate_fields(self)


@dataclasses.dataclass(frozen=True, kw_only=True)
class TrainingOptions(Options):
    """Training: how every network of a study is trained; None keeps the authors' recipe."""

    per_class_train: int | None = option(None, optional(POSITIVE_INTEGER))  # None: the whole training set
    per_class_test: int | None = option(None, optional(POSITIVE_INTEGER))  # test images per class (None: all)
    width: float = option(1.0, POSITIVE_NUMBER)  # channel multiplier; 1.0: the networks as the authors built them
    epochs: int | None = option(None, optional(POSITIVE_INTEGER))  # None: the authors' recipe
    batch_size: int | None = option(None, optional(POSITIVE_INTEGER))  # None: the authors' recipe
    augmentation: bool | None = option(None, optional(BOOLEAN))  # None: the recipe's (flips + 1/8 shifts)
    precision: str = option("float32", one_of(PRECISIONS))  # training precision: float32, mixed_bfloat16 or mixed_float16
    batch_norm_momentum: float | None = option(None, optional(number_in(0, 1)))  # None: Keras' 0.99, as the authors; short CPU runs need about 0.9
    dropout_scale: float | None = option(None, optional(number_in(0, 1, closed_high=True)))  # None: the networks' dropout; 0 turns it off
    optimizer: str | None = option(None, optional(one_of(OPTIMIZERS)))  # None: the recipe's; or sgd / adam
    learning_rate: float | None = option(None, optional(POSITIVE_NUMBER))  # None: the recipe's
    schedule: str | None = option(None, optional(one_of(SCHEDULES)))  # None: the recipe's; cosine (per-step decay to 0) or warmup_cosine



# Training options every network of a study shares, so that `network_options` may not set them:
# every network is tested on the same images, in one precision.
STUDY_WIDE_TRAINING_OPTIONS = ("per_class_test", "precision")
# The training options a study's `network_options` may set per network.
NETWORK_OPTIONS = tuple(
    field.name for field in dataclasses.fields(TrainingOptions) if field.name not in STUDY_WIDE_TRAINING_OPTIONS
)


@dataclasses.dataclass(frozen=True, kw_only=True)
class AttackOptions(Options):
    """Attacks (rzs.robustness): images, search and budget (the authors': CMA-ES, 400 x 100, 1000 images)."""

    prefix = "attack_"  # a study's attack_images is a spec's images

    images: int = option(100, POSITIVE_INTEGER)  # the first test images are attacked (the authors: 1000)
    strategy: str = option("cmaes", one_of(attacks.evolutionary.STRATEGIES))  # cmaes or de
    population: int = option(400, POSITIVE_INTEGER)  # candidates per generation (the authors: 400)
    generations: int = option(100, POSITIVE_INTEGER)  # generations per image and th (the authors: 100)
    fitness: str = option("margin", one_of(attacks.evolutionary.FITNESSES))  # margin (log-margin from logits) or probability (the authors'); docs/attacks.md
    stop_on_convergence: bool = option(False, BOOLEAN)  # True: cma's flat-fitness tolerances may end a search before its budget
    gradient_loss: str = option("cross_entropy", one_of(GRADIENT_LOSSES))  # fgsm, bim, pgd: cross_entropy or margin, from the logits
    random_start: bool = option(False, BOOLEAN)  # pgd: start from a random point of the eps-ball (False: pgd is bim)
    queries: int = option(10000, POSITIVE_INTEGER)  # square, sparse_rs: queries per image and th (the papers' 10,000)



@dataclasses.dataclass(frozen=True, kw_only=True)
class MetricOptions(Options):
    """Metrics (docs/metrics.md): DBM's power q, AM's distance and reduction, and whose soft labels are measured."""

    metric_q: float = option(2, POSITIVE_NUMBER)  # DBM's power q (docs/metrics.md)
    am_distance: str = option("l1", one_of(tuple(metrics.DISTANCE_ORDERS)))  # AM's distance: l1 or l2
    am_reduce: str = option("image", one_of(metrics.REDUCTIONS))  # AM's reduction: image or mean (docs/metrics.md)
    metric_images: str = option("test", one_of(METRIC_IMAGES))  # soft labels of the excluded class's test or train images
    calibration: str = option("none", one_of(CALIBRATIONS))  # none, or temperature: DBM, AM, embedded DBI also on calibrated soft labels



@dataclasses.dataclass(frozen=True, kw_only=True)
class DefenceOptions(Options):
    """Defences (rzs.defences): which, on which networks and against which attacks."""

    defences: list = option(default_factory=list, check=list_of(defences.list_defences, empty_allowed=True))  # any of rzs.defences.list_defences()
    # Which networks and attacks these may name depends on the study's (`rzs.study.Study.validate`).
    defence_networks: list | None = option(None, optional(NAMES))  # None: every network of the study
    defence_attacks: list | None = option(None, optional(NAMES))  # attacks run on the defended arms; None: every attack of attacks
    null_control: bool = option(True, BOOLEAN)  # defence tables also test vanilla retrained with seed + 1 (docs/analysis.md)



OPTION_GROUPS = (TrainingOptions, MetricOptions, AttackOptions, DefenceOptions)


def flattened(*groups):
    """A dataclass with every field of `groups`, each named `group.prefix + name`, with its check.

    `rzs.study.Study` derives from it, so that a study's flat parameters
    (`-p attack_images 50`) and the specs' fields are one declaration.
    """
    fields = []
    for group in groups:
        for field in dataclasses.fields(group):
            if field.default_factory is not dataclasses.MISSING:
                copy = dataclasses.field(default_factory=field.default_factory, metadata=field.metadata)
            else:
                copy = dataclasses.field(default=field.default, metadata=field.metadata)
            fields.append((group.prefix + field.name, field.type, copy))
    return dataclasses.make_dataclass("Options", fields, kw_only=True)


def project_path(path):
    """`path` as it is read: relative to the repository (`PROJECT_ROOT`) unless absolute."""
    return PROJECT_ROOT / Path(path).expanduser()
