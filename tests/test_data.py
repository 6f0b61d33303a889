import dataclasses
import gzip
import hashlib
import io
import pickle
import shutil
import tarfile

import numpy as np
import pytest

from rzs import data, registry
from rzs.data import catalog


def _replace_source(monkeypatch, source):
    """Point the dataset registry at `source` in place of the canonical entry of its name."""
    datasets = registry.Registry("dataset", also_accepted=catalog.DATASETS.also_accepted)
    for name in catalog.list_datasets():
        datasets.register(name, source if name == source.name else catalog.get_source(name))
    monkeypatch.setattr(catalog, "DATASETS", datasets)


def _idx_bytes(array):
    header = bytes([0, 0, 0x08, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    return header + array.astype(np.uint8).tobytes()


def _write_idx_dataset(directory, monkeypatch, num_train=30, num_test=20, gzipped=True):
    """A tiny MNIST-layout dataset, registered under the real file names."""
    rng = np.random.default_rng(0)
    arrays = {
        "x_train": rng.integers(0, 256, (num_train, 6, 5)),
        "y_train": np.arange(num_train) % 10,
        "x_test": rng.integers(0, 256, (num_test, 6, 5)),
        "y_test": (np.arange(num_test) * 3) % 10,
    }
    files = {}
    directory.mkdir(parents=True, exist_ok=True)
    for role, (name, _) in catalog.MNIST.files.items():
        content = _idx_bytes(arrays[role])
        path = directory / (name + (".gz" if gzipped else ""))
        path.write_bytes(gzip.compress(content) if gzipped else content)
        files[role] = (name, hashlib.sha256(content).hexdigest())
    _replace_source(monkeypatch, dataclasses.replace(catalog.MNIST, files=files))
    return arrays


def _cifar_batch(images, labels, label_key):
    rows = images.transpose(0, 3, 1, 2).reshape(len(images), -1)
    return pickle.dumps({b"data": rows, label_key: list(map(int, labels))}, protocol=2)


def _write_cifar_archive(path, monkeypatch, per_batch=4):
    """A tiny CIFAR-10 tarball in the canonical layout, with its checksums registered."""
    rng = np.random.default_rng(1)
    members, expected = {}, {}
    for role, (member, _) in catalog.CIFAR10.members.items():
        if role == "meta":
            names = [name.encode() for name in ("airplane", "automobile", "bird", "cat", "deer",
                                                 "dog", "frog", "horse", "ship", "truck")]
            content = pickle.dumps({b"label_names": names}, protocol=2)
        else:
            images = rng.integers(0, 256, (per_batch, 32, 32, 3), dtype=np.uint8)
            content = _cifar_batch(images, rng.integers(0, 10, per_batch), b"labels")
            expected[role] = images
        members[member] = content
        expected_md5 = hashlib.md5(content).hexdigest()
        expected.setdefault("md5", {})[role] = (member, expected_md5)
    with tarfile.open(path, "w:gz") as tar:
        for member, content in members.items():
            info = tarfile.TarInfo(f"cifar-10-batches-py/{member}")
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    _replace_source(monkeypatch, dataclasses.replace(catalog.CIFAR10, members=expected.pop("md5")))
    return expected


def test_idx_loader_reads_canonical_layout(empty_data_dir, monkeypatch):
    arrays = _write_idx_dataset(empty_data_dir / "MNIST" / "raw", monkeypatch)
    dataset = data.load_dataset("mnist")
    assert dataset.x_train.dtype == np.uint8 and dataset.x_train.shape == (30, 6, 5, 1)
    np.testing.assert_array_equal(dataset.x_test[..., 0], arrays["x_test"])
    np.testing.assert_array_equal(dataset.y_train, arrays["y_train"])
    assert dataset.y_train.dtype == np.int64
    assert dataset.class_names == tuple("0123456789")


def test_idx_loader_accepts_uncompressed_copies(empty_data_dir, monkeypatch):
    arrays = _write_idx_dataset(empty_data_dir / "mnist", monkeypatch, gzipped=False)
    np.testing.assert_array_equal(data.load_dataset("mnist").x_train[..., 0], arrays["x_train"])


def test_corrupted_idx_file_is_refused_naming_it(empty_data_dir, monkeypatch):
    _write_idx_dataset(empty_data_dir, monkeypatch)
    path = empty_data_dir / "train-labels-idx1-ubyte.gz"
    content = bytearray(gzip.decompress(path.read_bytes()))
    content[-1] ^= 0xFF
    path.write_bytes(gzip.compress(bytes(content)))
    with pytest.raises(data.ChecksumError, match="train-labels-idx1-ubyte.gz"):
        data.load_dataset("mnist")


def test_cifar_tarball_loader(empty_data_dir, monkeypatch):
    expected = _write_cifar_archive(empty_data_dir / "cifar-10-python.tar.gz", monkeypatch)
    dataset = data.load_dataset("cifar10")
    assert dataset.x_train.shape == (20, 32, 32, 3) and dataset.x_test.shape == (4, 32, 32, 3)
    np.testing.assert_array_equal(dataset.x_train[:4], expected["train_1"])
    np.testing.assert_array_equal(dataset.x_test, expected["test"])
    assert dataset.class_names[0] == "airplane" and dataset.num_classes == 10


def test_cifar_extracted_folder_loader(empty_data_dir, monkeypatch, tmp_path):
    expected = _write_cifar_archive(tmp_path / "archive.tar.gz", monkeypatch)
    with tarfile.open(tmp_path / "archive.tar.gz") as tar:
        tar.extractall(empty_data_dir / "cifar10", filter="data")
    np.testing.assert_array_equal(data.load_dataset("cifar10").x_test, expected["test"])


def test_corrupted_cifar_member_is_refused(empty_data_dir, monkeypatch):
    _write_cifar_archive(empty_data_dir / "cifar-10-python.tar.gz", monkeypatch)
    source = catalog.get_source("cifar10")
    name, _ = source.members["test"]
    members = {**source.members, "test": (name, "0" * 32)}
    _replace_source(monkeypatch, dataclasses.replace(source, members=members))
    with pytest.raises(data.ChecksumError, match="test_batch"):
        data.load_dataset("cifar10")


def test_cifar_unpickler_refuses_foreign_globals(empty_data_dir, monkeypatch):
    class Exploit:
        def __reduce__(self):
            return (shutil.rmtree, ("/nonexistent",))

    _write_cifar_archive(empty_data_dir / "cifar-10-python.tar.gz", monkeypatch)
    from rzs.data import formats

    with pytest.raises(pickle.UnpicklingError, match="shutil"):
        formats.parse_cifar_batch(pickle.dumps({b"data": Exploit()}, protocol=2))


def test_missing_files_offline_say_where_to_put_them(empty_data_dir):
    with pytest.raises(FileNotFoundError, match=r"Put the file .* at .*cifar-10-python\.tar\.gz"):
        data.load_dataset("cifar10")


def test_unknown_dataset_name_lists_the_choices():
    with pytest.raises(ValueError, match=r"dataset must be one of \[.*'cifar10'.*'npz:PATH'\], received 'imagenet'\."):
        data.load_dataset("imagenet")


def test_npz_loader(tmp_path):
    rng = np.random.default_rng(2)
    path = tmp_path / "mine.npz"
    np.savez(
        path,
        x_train=rng.integers(0, 256, (12, 8, 8)),
        y_train=np.arange(12) % 3,
        x_test=rng.integers(0, 256, (6, 8, 8)),
        y_test=np.arange(6) % 3,
        class_names=np.array(["a", "b", "c"]),
    )
    dataset = data.load_dataset(f"npz:{path}")
    assert dataset.input_shape == (8, 8, 1) and dataset.class_names == ("a", "b", "c")
    np.savez(path, x_train=np.full((2, 4, 4), 300), y_train=[0, 1], x_test=np.zeros((2, 4, 4)), y_test=[0, 1])
    with pytest.raises(ValueError, match="x_train"):
        data.load_dataset(f"npz:{path}")


TEST_CLASS_COUNTS = {
    "mnist": [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009],
    "fashion_mnist": [1000] * 10,
}


@pytest.mark.parametrize("name", sorted(TEST_CLASS_COUNTS))
def test_real_canonical_files(shared_data, name):
    dataset = data.load_dataset(name)
    assert dataset.x_train.shape == (60000, 28, 28, 1)
    assert dataset.x_test.shape == (10000, 28, 28, 1)
    assert np.bincount(dataset.y_test).tolist() == TEST_CLASS_COUNTS[name]


def test_corrupted_real_file_is_refused(shared_data, tmp_path, monkeypatch):
    copy = tmp_path / "FashionMNIST" / "raw"
    shutil.copytree(shared_data / "FashionMNIST" / "raw", copy)
    target = copy / "t10k-labels-idx1-ubyte.gz"
    content = bytearray(gzip.decompress(target.read_bytes()))
    content[100] = (content[100] + 1) % 10
    target.write_bytes(gzip.compress(bytes(content)))
    monkeypatch.setenv("RZS_DATA_DIR", str(tmp_path))
    from rzs.data import loading

    loading._load_canonical.cache_clear()
    try:
        with pytest.raises(data.ChecksumError, match="t10k-labels"):
            data.load_dataset("fashion_mnist")
    finally:
        loading._load_canonical.cache_clear()


def _toy_dataset(num_classes=5, per_class=7):
    rng = np.random.default_rng(3)
    labels = np.tile(np.arange(num_classes), per_class)
    rng.shuffle(labels)
    # Each image encodes its own label and position, so leaks are visible.
    def images(labels):
        pixels = np.zeros((len(labels), 4, 4, 1), dtype=np.uint8)
        pixels[:, 0, 0, 0] = labels
        pixels[:, 0, 1, 0] = np.arange(len(labels))
        return pixels
    test_labels = labels[::-1].copy()
    names = tuple(f"class{label}" for label in range(num_classes))
    return data.Dataset("toy", images(labels), labels, images(test_labels), test_labels, names)


@pytest.mark.parametrize("excluded", range(5))
def test_leave_one_out_removes_and_relabels_exactly(excluded):
    dataset = _toy_dataset()
    split = data.leave_one_out(dataset, excluded)
    for subset in ("train", "test"):
        images = getattr(split.dataset, f"x_{subset}")
        labels = getattr(split.dataset, f"y_{subset}")
        original = images[:, 0, 0, 0].astype(int)
        assert excluded not in original
        np.testing.assert_array_equal(labels, original - (original > excluded))
        excluded_images = getattr(split, f"x_{subset}_excluded")
        indices = getattr(split, f"{subset}_indices_excluded")
        assert np.all(excluded_images[:, 0, 0, 0] == excluded)
        assert np.all(np.diff(indices) > 0)  # dataset order
        np.testing.assert_array_equal(getattr(dataset, f"x_{subset}")[indices], excluded_images)
    assert split.dataset.num_classes == 4
    assert split.excluded_name == f"class{excluded}"
    assert split.dataset.class_names == tuple(n for n in dataset.class_names if n != f"class{excluded}")


@pytest.mark.parametrize("excluded", [-1, 5, 1.0, "2", None])
def test_leave_one_out_rejects_bad_classes(excluded):
    with pytest.raises(ValueError, match="excluded"):
        data.leave_one_out(_toy_dataset(), excluded)


def test_per_class_subset_is_deterministic_first_images():
    dataset = _toy_dataset()
    subset = data.per_class_subset(dataset, per_class_train=3, per_class_test=2)
    assert np.bincount(subset.y_train).tolist() == [3] * 5
    assert np.bincount(subset.y_test).tolist() == [2] * 5
    for label in range(5):
        first = np.flatnonzero(dataset.y_train == label)[:3]
        np.testing.assert_array_equal(subset.x_train[subset.y_train == label], dataset.x_train[first])
    with pytest.raises(ValueError, match="per_class_train"):
        data.per_class_subset(dataset, per_class_train=0)


def test_dataset_arrays_are_read_only():
    with pytest.raises(ValueError):
        _toy_dataset().x_train[0, 0, 0, 0] = 1
