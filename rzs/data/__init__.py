"""Datasets with leave-one-class-out splits.

    from rzs import data
    fashion = data.load_dataset("fashion_mnist")
    split = data.leave_one_out(fashion, excluded=3)
    data.list_datasets(filter="*mnist")  # ["mnist", "fashion_mnist"]
"""

from rzs.data.catalog import get_source, list_datasets
from rzs.data.dataset import Dataset, LeaveOneOut, leave_one_out, per_class_subset
from rzs.data.files import ChecksumError, data_directories
from rzs.data.loading import DATASET_NAMES, load_dataset, num_classes

__all__ = [
    "DATASET_NAMES",
    "ChecksumError",
    "Dataset",
    "LeaveOneOut",
    "data_directories",
    "get_source",
    "leave_one_out",
    "list_datasets",
    "load_dataset",
    "num_classes",
    "per_class_subset",
]
