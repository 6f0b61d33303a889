"""`Recipe`: how the authors train a network, with their common settings as defaults.

Each network module states only what its recipe changes, and where it comes from:

    RECIPE = Recipe(
        source="Authors' code (...): lr 0.01 for epoch < 100, ...",
        learning_rate=0.01,
        schedule=piecewise([100, 150], [0.01, 0.005, 0.001]),
    )

A recipe is checked when it is made, and `config()` is the dict that
`rzs.training.TrainingSpec` puts in every model's cache key.
"""

import dataclasses

from rzs import options

# What the authors' run.py passes to every network unless its model hard-codes another.
AUTHORS_AUGMENTATION = (
    "Augmentation (flip + 1/8 shifts) is the authors' optional --augmentation flag, switched on here."
)


def authors_sgd_source(file, details):
    """The `source` of an SGD recipe of the authors' code: their networks/cifar/`file`, `details`
    (learning rates and L2), and what every such recipe shares."""
    return (
        f"Authors' code (RepresentationMetrics, networks/cifar/{file} and networks/model.py): "
        f"SGD momentum 0.9 Nesterov; {details}; 200 epochs, batch 64 (run.py defaults). {AUTHORS_AUGMENTATION}"
    )


# The recipe of the SGD networks rzs adds (`{network}` names one), matched to the authors'.
RZS_SGD_SOURCE = (
    "rzs addition, not in the authors' code. Chosen to match the authors' "
    "SGD networks: SGD momentum 0.9 Nesterov, lr 0.1 divided by 10 at 50% "
    "and 75% of 200 epochs, batch 64. L2 2.5e-4 on Keras' sum-of-squares "
    "scale equals the weight decay 5e-4 common for CIFAR {network}."
)
LOSSES = ("categorical_crossentropy", "margin")
EPOCH_SCHEDULES = ("constant", "exponential", "piecewise")


def piecewise(boundaries, values):
    """A learning rate of `values[i]` from epoch `boundaries[i - 1]` on (the authors' epochs)."""
    return {"kind": "piecewise", "boundaries": list(boundaries), "values": list(values)}


def _default_schedule():
    return piecewise([100, 150], [0.1, 0.01, 0.001])


@dataclasses.dataclass(frozen=True, kw_only=True)
class Recipe:
    """A network's training recipe; the defaults are the authors' common settings.

    Attributes:
        source: where every value comes from (the authors' code, or why rzs chose it).
        optimizer: "sgd" or "adam".
        momentum, nesterov: SGD's (the authors': 0.9, Nesterov); Adam has neither,
            so an Adam recipe's `config()` leaves them out.
        learning_rate: the initial learning rate.
        schedule: {"kind": "constant"}, {"kind": "exponential", "decay_epochs": d}
            (lr x exp(-epoch / d)), `piecewise(...)`, or one of
            `rzs.options.SCHEDULES` (per step, set by a study, not by a network).
        epochs, batch_size: the authors' (run.py defaults: 200 and 64).
        weight_decay: L2 coefficient on kernels.
        loss: "categorical_crossentropy", or "margin" for CapsNet (its
            `training_setup` builds the loss; this names it in the cache key).
        augmentation: flips and 1/8 shifts during training.
    """

    source: str
    optimizer: str = "sgd"
    momentum: float = 0.9
    nesterov: bool = True
    learning_rate: float = 0.1
    schedule: dict = dataclasses.field(default_factory=_default_schedule)
    epochs: int = 200
    batch_size: int = 64
    weight_decay: float = 1e-4
    loss: str = "categorical_crossentropy"
    augmentation: bool = True

    def __post_init__(self):
        options.NAME(self.source, "source")
        options.one_of(options.OPTIMIZERS)(self.optimizer, "optimizer")
        options.number_in(0, 1)(self.momentum, "momentum")
        options.BOOLEAN(self.nesterov, "nesterov")
        options.POSITIVE_NUMBER(self.learning_rate, "learning_rate")
        options.POSITIVE_INTEGER(self.epochs, "epochs")
        options.POSITIVE_INTEGER(self.batch_size, "batch_size")
        options.number_in(0, 1)(self.weight_decay, "weight_decay")
        options.one_of(LOSSES)(self.loss, "loss")
        options.BOOLEAN(self.augmentation, "augmentation")
        _check_schedule(self.schedule)

    def config(self):
        """The recipe as the plain dict of a model's cache key (a fresh copy, safe to modify)."""
        fields = dataclasses.asdict(self)
        if self.optimizer != "sgd":
            del fields["momentum"], fields["nesterov"]
        return fields


def _check_schedule(schedule):
    kinds = EPOCH_SCHEDULES + options.SCHEDULES
    if not isinstance(schedule, dict) or schedule.get("kind") not in kinds:
        raise ValueError(f"schedule must be a dict whose kind is one of {list(kinds)}, received {schedule!r}.")
    if schedule["kind"] == "exponential":
        options.POSITIVE_NUMBER(schedule.get("decay_epochs"), "schedule's decay_epochs")
    if schedule["kind"] == "piecewise":
        boundaries, values = schedule.get("boundaries", []), schedule.get("values", [])
        if len(values) != len(boundaries) + 1 or list(boundaries) != sorted(set(boundaries)) or min(values) <= 0:
            raise ValueError(
                "schedule must be piecewise with increasing boundaries and one positive value more than "
                f"boundaries, received {schedule!r}."
            )
