"""Training one network by its recipe, with one class left out or none."""

import dataclasses
import json
import math
import random
import time

import keras
import numpy as np

from rzs import data as rzs_data
from rzs import defences, models, options, pipeline, reproducibility
from rzs.runner import worker

# Names kept here for the callers that read them from rzs.training; declared in rzs.options.
PRECISIONS, OPTIMIZERS, SCHEDULES = options.PRECISIONS, options.OPTIMIZERS, options.SCHEDULES
# The warm-up measured for AllConv (BENCHMARKS.md); linear warm-up over the first
# 5-10% of training is the usual choice since Goyal et al. (2017).
WARMUP_FRACTION = 0.1
# The fields of the first stored models' cache keys. Any field added since leaves its key out
# while at its default, so that the results stored before it keep their keys.
FIRST_KEY_FIELDS = (
    "network", "dataset", "excluded", "per_class_train", "per_class_test", "width",
    "epochs", "batch_size", "augmentation", "seed", "precision",
)


@dataclasses.dataclass(frozen=True)
class TrainingSpec(options.TrainingOptions):
    """Everything that determines one trained model, and so its cache key.

    The options (`rzs.options.TrainingOptions`, keyword only) are a study's;
    `excluded=None` trains the full N-class model; `defence` is a name from
    `rzs.defences.list_defences()`, or None for the vanilla network.

    `batch_norm_momentum` replaces the momentum of every BatchNormalization
    layer (None keeps Keras' 0.99, the authors' value). Short runs need a
    smaller one: after the ~100 steps of a CPU profile, moving statistics at
    0.99 still hold 0.99**100 = 37% of their initial (0, 1), so the trained
    network is evaluated with statistics it never had.

    `dropout_scale` multiplies the rate of every Dropout layer (0 turns
    dropout off; None keeps the network's). At width 0.25 the authors' VGG,
    with dropout 0.4 before batch normalisation in every block, stays at
    chance for a 3-epoch run, and reaches 86% without dropout.

    `optimizer`, `learning_rate` and `schedule` replace the recipe's (None
    keeps it); switching to SGD uses the recipe's default Nesterov momentum
    0.9, as every SGD recipe of the authors does. CPU profiles use them to
    reach a useful accuracy in a few epochs; see `rzs.options.SCHEDULES`.
    """

    network: str
    dataset: str
    excluded: int | None = None
    seed: int = 0
    defence: str | None = None

    kind = "model"

    def __post_init__(self):
        models.get_spec(self.network)  # raises a ValueError naming unknown networks
        self.validate()
        if not options.is_integer(self.seed):
            raise ValueError(f"seed must be an integer, received {self.seed!r}.")
        self.get_defence()  # raises a ValueError naming unknown defences

    def recipe(self):
        """The network's recipe with this spec's overrides applied, as the dict of the cache key."""
        recipe = models.get_spec(self.network).recipe
        overrides = {"epochs": self.epochs, "batch_size": self.batch_size, "augmentation": self.augmentation}
        overrides["optimizer"] = self.optimizer
        overrides["learning_rate"] = None if self.learning_rate is None else float(self.learning_rate)
        overrides["schedule"] = None if self.schedule is None else {"kind": self.schedule}
        return dataclasses.replace(
            recipe, **{name: value for name, value in overrides.items() if value is not None}
        ).config()

    def config(self):
        """The JSON config that names this model in the run store."""
        fields = dataclasses.asdict(self)
        fields["recipe"] = self.recipe()
        defence = self.get_defence()
        if defence is not None:
            fields["defence"] = defence.config()
        for field in dataclasses.fields(self):
            if field.name not in FIRST_KEY_FIELDS and getattr(self, field.name) == field.default:
                del fields[field.name]
        return fields

    def get_defence(self):
        """The `rzs.defences.Defence` named by `defence`, or None."""
        return None if self.defence is None else defences.get_defence(self.defence)

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
    reused_step: bool = False  # trained by the compiled step of the previous model (see `train`)


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
    if kind in SCHEDULES:
        raise ValueError(f"The {kind} schedule runs per step, in the optimizer: see `make_optimizer`.")
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


def make_optimizer(recipe, steps=None):
    """The recipe's optimizer; `steps` (the run's total) sizes a per-step schedule."""
    learning_rate = recipe["learning_rate"]
    kind = recipe["schedule"]["kind"]
    if kind in SCHEDULES and steps is None:
        raise ValueError(f"A {kind} schedule needs the run's number of steps, received steps=None.")
    if kind == "cosine":
        learning_rate = keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps=steps)
    if kind == "warmup_cosine":
        warmup_steps = max(1, round(WARMUP_FRACTION * steps))
        learning_rate = keras.optimizers.schedules.CosineDecay(
            0.0,
            decay_steps=max(1, steps - warmup_steps),
            warmup_target=learning_rate,
            warmup_steps=warmup_steps,
        )
    if recipe["optimizer"] == "sgd":
        return keras.optimizers.SGD(
            learning_rate=learning_rate,
            momentum=recipe.get("momentum", 0.0),
            nesterov=recipe.get("nesterov", False),
        )
    if recipe["optimizer"] == "adam":
        return keras.optimizers.Adam(learning_rate=learning_rate)
    raise ValueError(f"optimizer must be sgd or adam, received {recipe['optimizer']!r}.")


def train(spec, verbose="auto", reuse=True):
    """Train the model `spec` describes; returns a `TrainedModel`.

    The model follows the package's contract (raw pixels in, probabilities
    out) and standardises with the statistics of its own training images.
    A defence's input stage is part of the model; its training hooks change
    the training set, the targets or the training step.

    With `reuse` (the default), a model whose training step would be traced
    exactly as the previous one's in this process (the leave-one-out models
    of one network: same graph, other weights and data) is trained by that
    compiled step, which saves the trace, 0.2-28 s per model on one CPU core
    (BENCHMARKS.md, "One compiled step per network"). The weights, the fresh
    optimizer state and the shuffling are the spec's own, so the result is the
    one a fresh process gives (tested); the returned model is a model of its
    own either way.
    """
    defence = spec.get_defence()
    if defence is not None and defence.test_time_only:
        raise ValueError(
            f"defence={spec.defence!r} is test-time only and trains no network of its own; "
            "`rzs.zeroshot.get_or_train` puts it in front of the stored vanilla model."
        )
    reproducibility.seed_everything(spec.seed)
    keras.mixed_precision.set_global_policy(spec.precision)
    dataset, split = spec.load_data()
    train_data = split.dataset if split is not None else dataset
    recipe = spec.recipe()
    model, training_model, loss = _build_models(spec, train_data, defence)
    images, labels = train_data.x_train, train_data.y_train
    if defence is not None:
        images, labels = defence.transform_training_set(images, labels, spec.seed)
    steps = recipe["epochs"] * math.ceil(len(images) / recipe["batch_size"])
    reused_step = False
    if reuse:
        fitted, reused_step = _compiled_for(
            spec, training_model, lambda: _build_models(spec, train_data, defence)[1:], recipe, steps
        )
    else:
        _compile(training_model, loss, recipe, steps)
        fitted = training_model
    batches = pipeline.training_dataset(
        images,
        labels,
        train_data.num_classes,
        recipe["batch_size"],
        seed=spec.seed,
        augment=recipe["augmentation"],
        label_transform=defence.label_transform() if defence is not None else None,
    )
    if models.get_spec(spec.network).training_setup is not None:
        batches = batches.map(lambda pixels, labels: ({"pixels": pixels, "labels": labels}, labels))
    callbacks = []
    if recipe["schedule"]["kind"] not in SCHEDULES:  # per-step ones live in the optimizer
        authors_epochs = models.get_recipe(spec.network)["epochs"]
        callbacks.append(
            keras.callbacks.LearningRateScheduler(learning_rate_schedule(recipe, authors_epochs))
        )
    start = time.perf_counter()
    history = fitted.fit(
        batches,
        epochs=recipe["epochs"],
        callbacks=callbacks,
        verbose=verbose,
        shuffle=False,  # the tf.data pipeline shuffles, with the spec's seed
    )
    train_seconds = time.perf_counter() - start
    if fitted is not training_model:
        _copy_variables(fitted, training_model)
    return TrainedModel(
        model=model,
        history={name: [float(v) for v in values] for name, values in history.history.items()},
        test_accuracy=evaluate_accuracy(model, train_data),
        train_seconds=train_seconds,
        train_images=len(images),
        epochs=recipe["epochs"],
        reused_step=reused_step,
    )


@dataclasses.dataclass
class _CompiledStep:
    """A compiled training model kept for the next model with the same trace."""

    key: str
    training_model: keras.Model
    initial_optimizer_values: list


def _compiled_for(spec, training_model, build_twin, recipe, steps):
    """(A compiled model holding `training_model`'s initial state, whether it was reused).

    The previous call's compiled model, with `training_model`'s variables and a
    fresh optimizer state copied in, when its traced step would be the same
    graph: same spec apart from the class left out, same variable shapes, same
    number of steps (a per-step schedule's length is part of the graph).
    Otherwise a twin from `build_twin()` (a (training model, loss) pair like
    `training_model`'s), compiled and kept for the next call: never
    `training_model` itself, whose variables the caller keeps. The compiled
    model is this process's `rzs.runner.worker.WorkerState.compiled_step`.
    """
    state = worker.PROCESS_STATE
    config = spec.config()
    del config["excluded"]
    key = json.dumps(
        {
            "spec": config,
            "steps": steps,
            "variables": [(tuple(v.shape), str(v.dtype)) for v in training_model.variables],
        },
        sort_keys=True,
    )
    previous = state.compiled_step
    reused = previous is not None and previous.key == key
    if not reused:
        state.compiled_step = None  # frees the previous graph before the next is built
        # The twin's initialisers draw seeds from Python's and NumPy's global generators;
        # restoring them leaves the rest of the run as it would be without the twin.
        python_state, numpy_state = random.getstate(), np.random.get_state()
        twin, twin_loss = build_twin()
        random.setstate(python_state)
        np.random.set_state(numpy_state)
        _compile(twin, twin_loss, recipe, steps)
        initial_values = [keras.ops.convert_to_numpy(v) for v in twin.optimizer.variables]
        previous = state.compiled_step = _CompiledStep(key, twin, initial_values)
    _copy_variables(training_model, previous.training_model)
    optimizer = previous.training_model.optimizer
    for variable, value in zip(optimizer.variables, previous.initial_optimizer_values, strict=True):
        variable.assign(value)
    return previous.training_model, reused


def _compile(training_model, loss, recipe, steps):
    training_model.compile(
        optimizer=make_optimizer(recipe, steps), loss=loss, metrics=["categorical_accuracy"]
    )
    # Left to `fit`, the optimizer creates its slot variables inside the first traced step,
    # which makes TensorFlow trace the whole step twice: 7-17 s more per model on one core
    # (BENCHMARKS.md, "Where a short run's time goes").
    training_model.optimizer.build(training_model.trainable_variables)


def _copy_variables(source, target):
    """Assign every variable of `source` (weights, statistics, seeds) to `target`'s twin."""
    for source_variable, target_variable in zip(source.variables, target.variables, strict=True):
        target_variable.assign(source_variable)


def evaluate_accuracy(model, dataset):
    """Share of `dataset`'s test images that `model` classifies correctly."""
    predictions = pipeline.predict_probabilities(model, dataset.x_test).argmax(axis=1)
    return float(np.mean(predictions == dataset.y_test))


def _build_models(spec, train_data, defence):
    """The inference model, the model to fit, and its loss.

    With a defence, its input stage sits in front of the network in both
    models, and its training wrapper (adversarial training) wraps the second.
    """
    stage = defence.build_input_stage() if defence is not None else None
    mean, std = train_data.channel_statistics()
    std = [max(s, 1e-3) for s in std]
    network_input_shape = train_data.input_shape
    if stage is not None:
        network_input_shape = stage.compute_output_shape((None, *network_input_shape))[1:]
        if defence.network_statistics is not None:
            mean, std = defence.network_statistics
    network = models.build_model(
        spec.network,
        network_input_shape,
        train_data.num_classes,
        width=spec.width,
        mean=mean,
        std=std,
    )
    if spec.batch_norm_momentum is not None:
        set_batch_norm_momentum(network, spec.batch_norm_momentum)
    if spec.dropout_scale is not None:
        scale_dropout(network, spec.dropout_scale)
    training_model, loss = _training_model_and_loss(spec.network, network, train_data.num_classes)
    model = network
    if stage is not None:
        model = defences.with_input_stage(network, stage, train_data.input_shape)
        training_model = (
            model
            if training_model is network
            else defences.with_input_stage(training_model, stage, train_data.input_shape)
        )
    if defence is not None:
        training_model = defence.wrap_training_model(training_model, model, spec.seed)
    return model, training_model, loss


def set_batch_norm_momentum(model, momentum):
    """Give every BatchNormalization layer in `model` (nested ones too) `momentum`.

    The layer reads the attribute when its update is traced and writes it to
    its config, so the saved model records the value it was trained with.
    """
    for layer in _all_layers(model):
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = float(momentum)


def scale_dropout(model, scale):
    """Multiply the rate of every Dropout layer in `model` (nested ones too) by `scale`.

    As for `set_batch_norm_momentum`, the traced call and the saved config
    both see the new rate.
    """
    for layer in _all_layers(model):
        if isinstance(layer, keras.layers.Dropout):
            layer.rate = layer.rate * float(scale)


def _all_layers(model):
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from _all_layers(layer)
        else:
            yield layer


def _training_model_and_loss(network, model, num_classes):
    spec = models.get_spec(network)
    if spec.training_setup is not None:
        return spec.training_setup(model, num_classes)
    return model, keras.losses.CategoricalCrossentropy()
