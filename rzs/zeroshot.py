"""Raw Zero-Shot: N leave-one-class-out models plus one full model per network.

For an N-class dataset, the leave-one-out classifier C_-i never sees class i.
Its soft labels on class i's images (Q_i, shape (M, N-1)) say how it describes
an unseen class in terms of the classes it knows; the full classifier's soft
labels on the same images (P_i, shape (M, N)) give the amalgam proportions the
metrics compare against. Rows of Q_i and P_i refer to the same images, in
dataset order.

The metrics read their soft labels from "predictions" results, not from the
"model" results that training stores: a `PredictionSpec` reloads a stored
model with every layer computing in float32 (`rzs.inference`), whatever the
precision it was trained in, and stores its log-scale scores (logits where
the network exposes them) and soft labels on every test image, and on the
train images the metrics may measure. Notebook 01 computes them right after
training (`rzs.study.Study.train`), notebook 05 for the defended networks.
"""

import dataclasses
import time

import keras
import numpy as np
from scipy import special

from rzs import defences, inference, metrics, pipeline, reproducibility, training
from rzs.store import RunStore

MODEL_FILE = "model.keras"


def compute_model(spec, verbose="auto", store=None):
    """Train `spec`'s model and package it for `RunStore.save`: its record and its weights.

    The model's outputs are not stored here: the metrics read the float32
    predictions of `compute_predictions`, whatever precision the model was
    trained in.

    A test-time-only defence trains nothing: it puts its input stage in front
    of the vanilla model of the same spec, taken from (or trained into)
    `store`, which it then needs.
    """
    defence = spec.get_defence()
    if defence is not None and defence.test_time_only:
        model, record = _defended_vanilla_model(spec, defence, store, verbose)
    else:
        trained = training.train(spec, verbose=verbose)
        model = trained.model
        images_seen = trained.train_images * trained.epochs
        record = {
            "test_accuracy": trained.test_accuracy,
            "history": trained.history,
            "timings": {
                "train_seconds": trained.train_seconds,
                "train_images_per_second": images_seen / trained.train_seconds,
                # Reused: the previous model's compiled step trained it, so no tracing was timed.
                "reused_compiled_step": trained.reused_step,
            },
        }
    dataset, split = spec.load_data()
    record.update(
        num_classes=(split.dataset if split else dataset).num_classes,
        class_names=list((split.dataset if split else dataset).class_names),
        parameters=int(model.count_params()),
        **reproducibility.environment(),
    )
    return record, {}, lambda directory: model.save(directory / MODEL_FILE)


def _defended_vanilla_model(spec, defence, store, verbose):
    """The stored vanilla model of `spec` behind `defence`'s input stage, and its record."""
    if store is None:
        raise ValueError(
            f"defence={spec.defence!r} is test-time only: it reuses the vanilla model's stored "
            "weights, so compute_model needs the store; received store=None."
        )
    vanilla = get_or_train(dataclasses.replace(spec, defence=None), store, verbose)
    network = keras.saving.load_model(vanilla.path(MODEL_FILE))
    # Seeds the stage's own randomness (total-variance minimisation's masks).
    reproducibility.seed_everything(spec.seed)
    model = defences.with_input_stage(network, defence.build_input_stage(), network.input_shape[1:])
    dataset, split = spec.load_data()
    record = {
        "test_accuracy": training.evaluate_accuracy(model, split.dataset if split else dataset),
        "history": vanilla.record["history"],
        "timings": {"train_seconds": 0.0},
        "vanilla_key": vanilla.record["key"],
    }
    return model, record


def get_or_train(spec, store, verbose="auto"):
    """The stored result of `spec`, training it only if it is missing."""
    return store.compute(spec.kind, spec.config(), lambda: compute_model(spec, verbose, store))


@dataclasses.dataclass(frozen=True)
class PredictionSpec:
    """A stored model's float32 outputs on the images the metrics need; its cache key.

    The key is the trained model's `TrainingSpec.config()` and the inference
    precision, so every trained model has exactly one predictions result.
    """

    model: dict  # the predicting model's TrainingSpec fields

    kind = "predictions"

    def __post_init__(self):
        self.training_spec  # validates the model fields

    @property
    def training_spec(self):
        return training.TrainingSpec(**self.model)

    @property
    def network(self):
        return self.model["network"]

    def config(self):
        return {"model": self.training_spec.config(), "precision": inference.INFERENCE_PRECISION}


def compute_predictions(spec, store):
    """Predict with `spec`'s stored model (trained first if missing) in float32.

    Every model predicts every test image of the dataset (all N classes):
    `test_log_scores` (M, C) and `test_soft_labels` (M, C), with `test_labels`
    (M,) in the dataset's N-class numbering. A leave-one-out model also
    predicts the train images of the class it never saw
    (`excluded_train_log_scores`, `excluded_train_soft_labels`,
    `excluded_train_indices` into the train set); the full model predicts
    every train image (`train_log_scores`, `train_soft_labels`,
    `train_labels`). Soft labels are the softmax of the log-scale scores,
    which for a softmax network equals its own output to float32 rounding.
    """
    training_spec = spec.training_spec
    trained = get_or_train(training_spec, store)
    model = inference.load_float32_model(trained.path(MODEL_FILE))
    scores_model = inference.log_scores_model(model)
    dataset, split = training_spec.load_data()
    start = time.perf_counter()
    arrays = _predicted(scores_model, "test", dataset.x_test)
    arrays["test_labels"] = dataset.y_test
    if split is None:
        arrays.update(_predicted(scores_model, "train", dataset.x_train))
        arrays["train_labels"] = dataset.y_train
    else:
        arrays.update(_predicted(scores_model, "excluded_train", split.x_train_excluded))
        arrays["excluded_train_indices"] = split.train_indices_excluded
    record = {
        "precision": inference.INFERENCE_PRECISION,
        "training_precision": training_spec.precision,
        "log_scores": "logits" if inference.logits_model(model) is not None else "log_probabilities",
        "excluded": training_spec.excluded,
        "num_classes": dataset.num_classes,
        "class_names": list(dataset.class_names),
        "model_key": trained.record["key"],
        "timings": {"predict_seconds": time.perf_counter() - start},
        **reproducibility.environment(),
    }
    return record, arrays


def _predicted(scores_model, prefix, images):
    log_scores = pipeline.predict_probabilities(scores_model, images)
    soft_labels = special.softmax(log_scores.astype(np.float64), axis=1).astype(np.float32)
    return {f"{prefix}_log_scores": log_scores, f"{prefix}_soft_labels": soft_labels}


def get_or_predict(spec, store):
    """The stored predictions of `spec`, computing them only if they are missing."""
    return store.compute(spec.kind, spec.config(), lambda: compute_predictions(spec, store))


def prediction_specs(training_specs):
    """One `PredictionSpec` per `TrainingSpec`."""
    return [PredictionSpec(model=dataclasses.asdict(spec)) for spec in training_specs]


def specs_for(network, dataset, excluded_classes, **options):
    """The leave-one-out specs for `excluded_classes` plus the full model's spec."""
    full = training.TrainingSpec(network=network, dataset=dataset, **options)
    return [full.with_excluded(int(excluded)) for excluded in excluded_classes] + [full]


@dataclasses.dataclass
class RawZeroShot:
    """The stored predictions of one network's Raw Zero-Shot models.

    `full` and `leave_one_out` (excluded class -> result) are "predictions"
    results (`PredictionSpec`): float32 soft labels and log-scale scores.
    """

    network: str
    full: object  # store.Result of the full model's predictions
    leave_one_out: dict  # excluded class -> store.Result of that model's predictions

    def soft_label_pairs(self, images="test"):
        """{excluded class: (Q_i (M, N-1), P_i (M, N))} on the same images, in float32.

        `images` is "test" (default, as the paper) or "train".
        """
        return self._pairs(images, "soft_labels")

    def log_score_pairs(self, images="test"):
        """{excluded class: (log-scale scores of C_-i (M, N-1), of C (M, N))}, as `soft_label_pairs`."""
        return self._pairs(images, "log_scores")

    def calibrated_soft_label_pairs(self, images="test"):
        """Temperature-calibrated `soft_label_pairs`, and the temperatures.

        For excluded class i, C_-i's and C's temperatures are each fitted
        (`rzs.metrics.fit_temperature`) on the test images of the N-1 classes
        other than i: in distribution for both models, never trained on, and
        disjoint from the class-i images the metrics measure.

        Returns ({i: (Q_i, P_i) calibrated}, {i: (T of C_-i, T of C)}).
        """
        full_arrays = self.full.arrays
        labels = full_arrays["test_labels"]
        pairs, temperatures = {}, {}
        for excluded, (zero_shot_scores, full_scores) in self.log_score_pairs(images).items():
            seen = labels != excluded
            zero_shot_temperature = metrics.fit_temperature(
                self.leave_one_out[excluded].arrays["test_log_scores"][seen],
                seen_class_labels(labels[seen], excluded),
            )
            full_temperature = metrics.fit_temperature(full_arrays["test_log_scores"][seen], labels[seen])
            pairs[excluded] = (
                metrics.softmax_at_temperature(zero_shot_scores, zero_shot_temperature),
                metrics.softmax_at_temperature(full_scores, full_temperature),
            )
            temperatures[excluded] = (zero_shot_temperature, full_temperature)
        return pairs, temperatures

    def hygiene(self):
        """{excluded class (None: the full model): `rzs.metrics.classifier_hygiene` on its own classes' test images}."""
        labels = self.full.arrays["test_labels"]
        table = {None: metrics.classifier_hygiene(self.full.arrays["test_soft_labels"], labels)}
        for excluded, result in sorted(self.leave_one_out.items()):
            seen = labels != excluded
            table[excluded] = metrics.classifier_hygiene(
                result.arrays["test_soft_labels"][seen], seen_class_labels(labels[seen], excluded)
            )
        return table

    def _pairs(self, images, name):
        if images not in ("test", "train"):
            raise ValueError(f"images must be 'test' or 'train', received {images!r}.")
        full_arrays = self.full.arrays
        pairs = {}
        for excluded, result in sorted(self.leave_one_out.items()):
            arrays = result.arrays
            if images == "test":
                is_excluded = arrays["test_labels"] == excluded
                pairs[excluded] = (arrays[f"test_{name}"][is_excluded], full_arrays[f"test_{name}"][is_excluded])
            else:
                indices = arrays["excluded_train_indices"]
                pairs[excluded] = (arrays[f"excluded_train_{name}"], full_arrays[f"train_{name}"][indices])
        return pairs

    @property
    def class_names(self):
        return self.full.record["class_names"]

    @property
    def precision(self):
        """The precision the soft labels were computed in ("float32")."""
        return self.full.record["precision"]


def seen_class_labels(labels, excluded):
    """Labels of classes other than `excluded` in C_-i's numbering: j for j < i, j - 1 for j > i."""
    labels = np.asarray(labels)
    return labels - (labels > excluded)


def raw_zero_shot(network, dataset, store, excluded_classes=None, runner=None, **options):
    """Train (or load) one network's Raw Zero-Shot models and their predictions.

    Args:
        network: a registered network name.
        dataset: a dataset name for `rzs.data.load_dataset`.
        store: a `RunStore` or a directory path.
        excluded_classes: which classes to leave out; default all N.
        runner: a callable(specs, store, compute) computing missing specs with
            the module-level `compute` (e.g. `functools.partial(
            rzs.runner.run_grid, workers=2)`); default computes them one after
            another in this process.
        **options: further `TrainingSpec` fields (epochs, width, seed, ...).
    """
    store = store if isinstance(store, RunStore) else RunStore(store)
    if excluded_classes is None:
        full_spec = training.TrainingSpec(network=network, dataset=dataset, **options)
        dataset_classes = full_spec.load_data()[0].num_classes
        excluded_classes = range(dataset_classes)
    specs = specs_for(network, dataset, excluded_classes, **options)
    predictions = prediction_specs(specs)
    # Computing a prediction trains its model first when the model is missing.
    if runner is None:
        for spec in predictions:
            get_or_predict(spec, store)
    else:
        runner(predictions, store, compute=get_or_predict)
    return load_raw_zero_shot(network, predictions, store)


def load_raw_zero_shot(network, predictions, store):
    """The `RawZeroShot` of stored `predictions` (PredictionSpecs, the full model's last)."""
    results = [store.load(spec.kind, spec.config()) for spec in predictions]
    return RawZeroShot(
        network=network,
        full=results[-1],
        leave_one_out={spec.training_spec.excluded: result for spec, result in zip(predictions, results[:-1])},
    )
