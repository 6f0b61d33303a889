"""`load_dataset`: the canonical datasets and a user's own `.npz` arrays."""

import functools
import tarfile
from pathlib import Path

import numpy as np

from rzs.data import catalog, files, formats
from rzs.data.dataset import Dataset

DATASET_NAMES = tuple(catalog.DATASETS.choices())


def load_dataset(name):
    """Load a dataset by name: cifar10, cifar100, mnist, fashion_mnist, npz:PATH.

    Returns a `Dataset` with uint8 NHWC images, int64 labels and class names.
    An `npz:PATH` file must hold `x_train, y_train, x_test, y_test` (images
    NHW or NHWC with integer values in [0, 255], labels 0..N-1) and may hold
    `class_names`; it is read without pickle.
    """
    if not isinstance(name, str):
        raise ValueError(f"name must be a string, received {name!r}.")
    if name.startswith("npz:"):
        path = Path(name[4:]).expanduser().resolve()
        return _load_npz(path, path.stat().st_mtime_ns if path.exists() else None)
    return _load_canonical(name)


def num_classes(name):
    """N for a dataset name, without reading the images of canonical datasets."""
    if name in catalog.DATASETS:
        return catalog.get_source(name).num_classes
    return load_dataset(name).num_classes


@functools.lru_cache(maxsize=4)
def _load_canonical(name):
    source = catalog.get_source(name)
    if isinstance(source, catalog.IdxSource):
        return _load_idx(source)
    return _load_cifar(source)


def _load_idx(source):
    arrays = {
        role: formats.parse_idx(
            files.read_idx_verified(
                file_name, sha256, source.folders, source.system_folders, source.urls, source.name
            ),
            file_name,
        )
        for role, (file_name, sha256) in source.files.items()
    }
    return Dataset(
        source.name,
        arrays["x_train"][..., np.newaxis],
        arrays["y_train"].astype(np.int64),
        arrays["x_test"][..., np.newaxis],
        arrays["y_test"].astype(np.int64),
        source.class_names,
    )


def _load_cifar(source):
    extracted = files.candidate_paths([source.archive_folder], source.folders)
    folder = next((path for path in extracted if path.is_dir()), None)
    if folder is not None:
        members = {role: (folder / member).read_bytes() for role, (member, _) in source.members.items()}
        origin = folder
    else:
        archive = files.find_or_download([source.archive], source.folders, source.url, source.name)
        members = _read_tar_members(archive, source)
        origin = archive
    batches = {}
    for role, (member, md5) in source.members.items():
        files.verify_digest(members[role], md5, "md5", f"{origin}/{member}")
        batches[role] = formats.parse_cifar_batch(members[role])

    def images_and_labels(roles):
        images = np.concatenate([formats.cifar_images(batches[role]) for role in roles])
        labels = np.concatenate(
            [np.asarray(batches[role][source.label_key], dtype=np.int64) for role in roles]
        )
        return images, labels

    train_roles = [role for role in source.members if role.startswith("train")]
    class_names = tuple(name.decode() for name in batches["meta"][source.names_key])
    return Dataset(
        source.name, *images_and_labels(train_roles), *images_and_labels(["test"]), class_names
    )


def _read_tar_members(archive, source):
    # Members are read into memory, never extracted, so a crafted archive cannot
    # write outside the data directory.
    wanted = {f"{source.archive_folder}/{member}": role for role, (member, _) in source.members.items()}
    members = {}
    try:
        with tarfile.open(archive, "r:*") as tar:
            for info in tar:
                if info.name in wanted and info.isfile():
                    members[wanted[info.name]] = tar.extractfile(info).read()
    except (tarfile.TarError, OSError, EOFError) as error:
        raise files.ChecksumError(
            f"{archive} is not a readable tar archive ({error}); delete it and retry."
        ) from error
    missing = sorted(name for name, role in wanted.items() if role not in members)
    if missing:
        raise files.ChecksumError(f"{archive} lacks the members {missing}; delete it and retry.")
    return members


@functools.lru_cache(maxsize=4)
def _load_npz(path, _modified):
    if _modified is None:
        raise FileNotFoundError(f"No file at {path} (from name='npz:{path}').")
    with np.load(path, allow_pickle=False) as arrays:
        missing = {"x_train", "y_train", "x_test", "y_test"} - set(arrays.files)
        if missing:
            raise ValueError(f"{path} must contain arrays {sorted(missing)}; it has {arrays.files}.")
        splits = {key: arrays[key] for key in ("x_train", "y_train", "x_test", "y_test")}
        names = arrays["class_names"] if "class_names" in arrays.files else None
    for key in ("x_train", "x_test"):
        images = splits[key]
        if images.ndim == 3:
            images = images[..., np.newaxis]
        if images.ndim != 4 or (
            images.size and (images.min() < 0 or images.max() > 255 or np.any(images % 1))
        ):
            raise ValueError(
                f"{key} in {path} must hold integer pixel values in [0, 255] of shape "
                f"(n, height, width[, channels]); received {images.dtype} {images.shape}."
            )
        splits[key] = images.astype(np.uint8)
    for key in ("y_train", "y_test"):
        splits[key] = np.asarray(splits[key]).reshape(-1).astype(np.int64)
    num_classes = int(max(splits["y_train"].max(), splits["y_test"].max())) + 1
    class_names = tuple(str(n) for n in names) if names is not None else tuple(
        str(label) for label in range(num_classes)
    )
    return Dataset(
        f"npz:{path}",
        splits["x_train"],
        splits["y_train"],
        splits["x_test"],
        splits["y_test"],
        class_names,
    )
