"""The in-memory dataset and its leave-one-class-out and per-class splits."""

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True, eq=False)
class Dataset:
    """Images as uint8 NHWC (grey images keep one channel), labels as int64.

    Arrays are read-only so that one loaded copy can be shared safely.
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple

    def __post_init__(self):
        for split in ("train", "test"):
            images = getattr(self, f"x_{split}")
            labels = getattr(self, f"y_{split}")
            if images.dtype != np.uint8 or images.ndim != 4:
                raise ValueError(
                    f"x_{split} must be uint8 of shape (n, height, width, channels), "
                    f"received {images.dtype} of shape {images.shape}."
                )
            if labels.shape != (len(images),):
                raise ValueError(
                    f"y_{split} must have shape ({len(images)},), received {labels.shape}."
                )
            if labels.size and (labels.min() < 0 or labels.max() >= self.num_classes):
                raise ValueError(
                    f"y_{split} must lie in [0, {self.num_classes - 1}] "
                    f"(one per class name), received [{labels.min()}, {labels.max()}]."
                )
            images.flags.writeable = False
            labels.flags.writeable = False

    @property
    def num_classes(self):
        return len(self.class_names)

    @property
    def input_shape(self):
        return tuple(self.x_train.shape[1:])

    def channel_statistics(self):
        """Per-channel mean and standard deviation of the training images (0-255)."""
        pixels = self.x_train.reshape(-1, self.x_train.shape[-1]).astype(np.float64)
        return pixels.mean(axis=0).tolist(), pixels.std(axis=0).tolist()

    def __repr__(self):
        return (
            f"Dataset({self.name!r}, train={len(self.x_train)}, test={len(self.x_test)}, "
            f"input_shape={self.input_shape}, classes={self.num_classes})"
        )


@dataclasses.dataclass(frozen=True, eq=False)
class LeaveOneOut:
    """A dataset with one class removed, and that class's images kept aside.

    `dataset` is the (N-1)-class problem the leave-one-out classifier C_-i is
    trained on: labels above `excluded` are shifted down by one. The excluded
    class's images are kept in dataset order, with their positions in the
    original arrays, so their Raw Zero-Shot soft labels pair row by row with
    the full model's soft labels on the same images.
    """

    dataset: Dataset
    excluded: int
    excluded_name: str
    x_train_excluded: np.ndarray
    x_test_excluded: np.ndarray
    train_indices_excluded: np.ndarray
    test_indices_excluded: np.ndarray


def leave_one_out(dataset, excluded):
    """Remove class `excluded` from train and test; relabel the rest to 0..N-2."""
    if not isinstance(excluded, (int, np.integer)) or not 0 <= excluded < dataset.num_classes:
        raise ValueError(
            f"excluded must be a class index in [0, {dataset.num_classes - 1}] for "
            f"{dataset.name!r}, received {excluded!r}."
        )
    excluded = int(excluded)

    def split(images, labels):
        is_excluded = labels == excluded
        kept_labels = labels[~is_excluded]
        kept_labels = kept_labels - (kept_labels > excluded)
        return images[~is_excluded], kept_labels, images[is_excluded], np.flatnonzero(is_excluded)

    x_train, y_train, x_train_excluded, train_indices = split(dataset.x_train, dataset.y_train)
    x_test, y_test, x_test_excluded, test_indices = split(dataset.x_test, dataset.y_test)
    class_names = dataset.class_names[:excluded] + dataset.class_names[excluded + 1 :]
    return LeaveOneOut(
        dataset=Dataset(
            f"{dataset.name}-without-{excluded}", x_train, y_train, x_test, y_test, class_names
        ),
        excluded=excluded,
        excluded_name=dataset.class_names[excluded],
        x_train_excluded=x_train_excluded,
        x_test_excluded=x_test_excluded,
        train_indices_excluded=train_indices,
        test_indices_excluded=test_indices,
    )


def per_class_subset(dataset, per_class_train=None, per_class_test=None):
    """The first `per_class_*` images of every class, in dataset order.

    Deterministic (no sampling), so small profiles always see the same images;
    None keeps a split whole.
    """
    return Dataset(
        dataset.name,
        *_first_per_class(dataset.x_train, dataset.y_train, per_class_train, "per_class_train"),
        *_first_per_class(dataset.x_test, dataset.y_test, per_class_test, "per_class_test"),
        dataset.class_names,
    )


def _first_per_class(images, labels, count, parameter):
    if count is None:
        return images, labels
    if not isinstance(count, (int, np.integer)) or count < 1:
        raise ValueError(f"{parameter} must be a positive integer or None, received {count!r}.")
    keep = np.zeros(len(labels), dtype=bool)
    for label in np.unique(labels):
        keep[np.flatnonzero(labels == label)[:count]] = True
    return images[keep], labels[keep]
