"""Training one network by its recipe, with one class left out or none."""

import dataclasses
import math
import time

import keras
import numpy as np

from rzs import data as rzs_data
from rzs import models, pipeline, reproducibility

PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")


@dataclasses.dataclass(frozen=True)
class TrainingSpec:
    """Everything that determines one trained model, and so its cache key.

    `None` for `epochs`, `batch_size` and `augmentation` means the recipe's
    value; `excluded=None` trains the full N-class model.
    """

    network: str
    dataset: str
    excluded: int | None = None
    per_class_train: int | None = None
    per_class_test: int | None = None
    width: float = 1.0
    epochs: int | None = None
    batch_size: int | None = None
    augmentation: bool | None = None
    seed: int = 0
    precision: str = "float32"

    kind = "model"

    def __post_init__(self):
        models.get_spec(self.network)  # raises a ValueError naming unknown networks
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, received {self.precision!r}.")
        for name in ("epochs", "batch_size"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ValueError(f"{name} must be a positive integer or None, received {value!r}.")
        if not isinstance(self.seed, int):
            raise ValueError(f"seed must be an integer, received {self.seed!r}.")

    def recipe(self):
        """The network's recipe with this spec's overrides applied."""
        recipe = models.get_recipe(self.network)
        if self.epochs is not None:
            recipe["epochs"] = self.epochs
        if self.batch_size is not None:
            recipe["batch_size"] = self.batch_size
        if self.augmentation is not None:
            recipe["augmentation"] = self.augmentation
        return recipe

    def config(self):
        """The JSON config that names this model in the run store."""
        fields = dataclasses.asdict(self)
        fields["recipe"] = self.recipe()
        return fields

    def with_excluded(self, excluded):
        return dataclasses.replace(self, excluded=excluded)

    def load_data(self):
        """The (possibly subset) dataset and, when a class is excluded, its split."""
        dataset = rzs_data.per_class_subset(
            rzs_data.load_dataset(self.dataset), self.per_class_train, self.per_class_test
        )
        if self.excluded is None:
            return dataset, None
        return dataset, rzs_data.leave_one_out(dataset, self.excluded)


@dataclasses.dataclass
class TrainedModel:
    model: keras.Model
    history: dict
    test_accuracy: float
    train_seconds: float
    train_images: int
    epochs: int


def learning_rate_schedule(recipe, authors_epochs):
    """Epoch -> learning rate, following `recipe["schedule"]`.

    Piecewise boundaries are given in the authors' epochs; a run with fewer
    epochs scales them by `recipe["epochs"] / authors_epochs` so that the decay
    happens at the same fraction of training.
    """
    schedule = recipe["schedule"]
    initial = recipe["learning_rate"]
    kind = schedule["kind"]
    if kind == "constant":
        return lambda epoch: initial
    if kind == "exponential":
        return lambda epoch: initial * math.exp(-epoch / schedule["decay_epochs"])
    if kind == "piecewise":
        scale = recipe["epochs"] / authors_epochs
        boundaries = [boundary * scale for boundary in schedule["boundaries"]]
        values = schedule["values"]
        return lambda epoch: values[sum(epoch >= boundary for boundary in boundaries)]
    raise ValueError(
        f"schedule kind must be constant, exponential or piecewise, received {kind!r}."
    )


def make_optimizer(recipe):
    if recipe["optimizer"] == "sgd":
        return keras.optimizers.SGD(
            learning_rate=recipe["learning_rate"],
            momentum=recipe.get("momentum", 0.0),
            nesterov=recipe.get("nesterov", False),
        )
    if recipe["optimizer"] == "adam":
        return keras.optimizers.Adam(learning_rate=recipe["learning_rate"])
    raise ValueError(f"optimizer must be sgd or adam, received {recipe['optimizer']!r}.")


def train(spec, verbose="auto"):
    """Train the model `spec` describes; returns a `TrainedModel`.

    The model follows the package's contract (raw pixels in, probabilities
    out) and standardises with the statistics of its own training images.
    """
    reproducibility.seed_everything(spec.seed)
    keras.mixed_precision.set_global_policy(spec.precision)
    dataset, split = spec.load_data()
    train_data = split.dataset if split is not None else dataset
    recipe = spec.recipe()
    mean, std = train_data.channel_statistics()
    model = models.build_model(
        spec.network,
        train_data.input_shape,
        train_data.num_classes,
        width=spec.width,
        mean=mean,
        std=[max(s, 1e-3) for s in std],
    )
    training_model, loss = _training_model_and_loss(spec.network, model, train_data.num_classes)
    training_model.compile(
        optimizer=make_optimizer(recipe), loss=loss, metrics=["categorical_accuracy"]
    )
    batches = pipeline.training_dataset(
        train_data.x_train,
        train_data.y_train,
        train_data.num_classes,
        recipe["batch_size"],
        seed=spec.seed,
        augment=recipe["augmentation"],
    )
    if training_model is not model:
        batches = batches.map(lambda pixels, labels: ({"pixels": pixels, "labels": labels}, labels))
    start = time.perf_counter()
    history = training_model.fit(
        batches,
        epochs=recipe["epochs"],
        callbacks=[
            keras.callbacks.LearningRateScheduler(
                learning_rate_schedule(recipe, models.get_recipe(spec.network)["epochs"])
            )
        ],
        verbose=verbose,
        shuffle=False,  # the tf.data pipeline shuffles, with the spec's seed
    )
    train_seconds = time.perf_counter() - start
    predictions = pipeline.predict_probabilities(model, train_data.x_test).argmax(axis=1)
    return TrainedModel(
        model=model,
        history={name: [float(v) for v in values] for name, values in history.history.items()},
        test_accuracy=float(np.mean(predictions == train_data.y_test)),
        train_seconds=train_seconds,
        train_images=len(train_data.x_train),
        epochs=recipe["epochs"],
    )


def _training_model_and_loss(network, model, num_classes):
    spec = models.get_spec(network)
    if spec.training_setup is not None:
        return spec.training_setup(model, num_classes)
    return model, keras.losses.CategoricalCrossentropy()
