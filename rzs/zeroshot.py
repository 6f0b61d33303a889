"""Raw Zero-Shot: N leave-one-class-out models plus one full model per network.

For an N-class dataset, the leave-one-out classifier C_-i never sees class i.
Its soft labels on class i's images (Q_i, shape (M, N-1)) say how it describes
an unseen class in terms of the classes it knows; the full classifier's soft
labels on the same images (P_i, shape (M, N)) give the amalgam proportions the
metrics compare against. Rows of Q_i and P_i refer to the same images, in
dataset order.
"""

import dataclasses
import time

import keras

from rzs import defences, pipeline, reproducibility, training
from rzs.store import RunStore

MODEL_FILE = "model.keras"


def compute_model(spec, verbose="auto", store=None):
    """Train `spec`'s model and package it for `RunStore.save`.

    Leave-one-out models store the soft labels of the excluded class's test
    and train images and their positions in the dataset; the full model stores
    its soft labels on every test and train image.

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
    start = time.perf_counter()
    if split is None:
        arrays = {
            "test_soft_labels": pipeline.predict_probabilities(model, dataset.x_test),
            "train_soft_labels": pipeline.predict_probabilities(model, dataset.x_train),
            "test_labels": dataset.y_test,
            "train_labels": dataset.y_train,
        }
        num_classes = dataset.num_classes
    else:
        arrays = {
            "excluded_test_soft_labels": pipeline.predict_probabilities(
                model, split.x_test_excluded
            ),
            "excluded_train_soft_labels": pipeline.predict_probabilities(
                model, split.x_train_excluded
            ),
            "excluded_test_indices": split.test_indices_excluded,
            "excluded_train_indices": split.train_indices_excluded,
        }
        num_classes = split.dataset.num_classes
    record["timings"]["predict_seconds"] = time.perf_counter() - start
    record.update(
        num_classes=num_classes,
        class_names=list(split.dataset.class_names if split else dataset.class_names),
        parameters=int(model.count_params()),
        **reproducibility.environment(),
    )
    return record, arrays, lambda directory: model.save(directory / MODEL_FILE)


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


def specs_for(network, dataset, excluded_classes, **options):
    """The leave-one-out specs for `excluded_classes` plus the full model's spec."""
    full = training.TrainingSpec(network=network, dataset=dataset, **options)
    return [full.with_excluded(int(excluded)) for excluded in excluded_classes] + [full]


@dataclasses.dataclass
class RawZeroShot:
    """The stored results of one network's Raw Zero-Shot models."""

    network: str
    full: object  # store.Result of the full model
    leave_one_out: dict  # excluded class -> store.Result

    def soft_label_pairs(self, images="test"):
        """{excluded class: (Q_i (M, N-1), P_i (M, N))} on the same images.

        `images` is "test" (default, as the paper) or "train".
        """
        if images not in ("test", "train"):
            raise ValueError(f"images must be 'test' or 'train', received {images!r}.")
        full_soft_labels = self.full.arrays[f"{images}_soft_labels"]
        pairs = {}
        for excluded, result in sorted(self.leave_one_out.items()):
            arrays = result.arrays
            indices = arrays[f"excluded_{images}_indices"]
            pairs[excluded] = (arrays[f"excluded_{images}_soft_labels"], full_soft_labels[indices])
        return pairs

    @property
    def class_names(self):
        return self.full.record["class_names"]


def raw_zero_shot(network, dataset, store, excluded_classes=None, runner=None, **options):
    """Train (or load) one network's Raw Zero-Shot models and return them.

    Args:
        network: a registered network name.
        dataset: a dataset name for `rzs.data.load_dataset`.
        store: a `RunStore` or a directory path.
        excluded_classes: which classes to leave out; default all N.
        runner: a callable(specs, store) computing missing specs (e.g.
            `functools.partial(rzs.runner.run_grid, workers=2)`); default
            trains them one after another in this process.
        **options: further `TrainingSpec` fields (epochs, width, seed, ...).
    """
    store = store if isinstance(store, RunStore) else RunStore(store)
    if excluded_classes is None:
        full_spec = training.TrainingSpec(network=network, dataset=dataset, **options)
        dataset_classes = full_spec.load_data()[0].num_classes
        excluded_classes = range(dataset_classes)
    specs = specs_for(network, dataset, excluded_classes, **options)
    if runner is None:
        for spec in specs:
            get_or_train(spec, store)
    else:
        runner(specs, store)
    results = [store.load(spec.kind, spec.config()) for spec in specs]
    return RawZeroShot(
        network=network,
        full=results[-1],
        leave_one_out={spec.excluded: result for spec, result in zip(specs, results[:-1])},
    )
