"""Where each dataset comes from and what its files must hash to.

The idx files of MNIST and Fashion-MNIST are checked by the SHA-256 of their
*decompressed* bytes, so a mirror that recompresses the `.gz` (or a copy that
was gunzipped) still verifies. CIFAR members are checked by the MD5 of each
member of the tarball, the values the CIFAR authors and torchvision publish.
"""

import dataclasses

from rzs import registry


@dataclasses.dataclass(frozen=True)
class IdxSource:
    """A dataset distributed as four idx files (MNIST layout)."""

    name: str
    folders: tuple[str, ...]  # folder names under a data directory to look in
    system_folders: tuple[str, ...]  # where distribution packages install it
    urls: tuple[str, ...]  # mirrors, tried in order; each ends with "/"
    files: dict  # role -> (file name without .gz, sha256 of decompressed bytes)
    class_names: tuple[str, ...]

    @property
    def num_classes(self):
        return len(self.class_names)


@dataclasses.dataclass(frozen=True)
class CifarSource:
    """A dataset distributed as the CIFAR python-pickle tarball."""

    name: str
    folders: tuple[str, ...]
    archive: str
    archive_folder: str  # the folder inside the tarball
    url: str
    members: dict  # role -> (member name, md5)
    label_key: bytes  # key of the labels in a batch dict
    names_key: bytes  # key of the class names in the meta dict
    num_classes: int


MNIST = IdxSource(
    name="mnist",
    folders=("mnist", "MNIST"),
    system_folders=("/usr/share/datasets/mnist",),
    urls=(
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
    ),
    files={
        "x_train": (
            "train-images-idx3-ubyte",
            "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
        ),
        "y_train": (
            "train-labels-idx1-ubyte",
            "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
        ),
        "x_test": (
            "t10k-images-idx3-ubyte",
            "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        ),
        "y_test": (
            "t10k-labels-idx1-ubyte",
            "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
        ),
    },
    class_names=tuple(str(digit) for digit in range(10)),
)

FASHION_MNIST = IdxSource(
    name="fashion_mnist",
    folders=("fashion_mnist", "fashion-mnist", "FashionMNIST"),
    # Debian's dataset-fashion-mnist package.
    system_folders=("/usr/share/datasets/fashion-mnist",),
    urls=(
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "https://storage.googleapis.com/tensorflow/tf-keras-datasets/",
    ),
    files={
        "x_train": (
            "train-images-idx3-ubyte",
            "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
        ),
        "y_train": (
            "train-labels-idx1-ubyte",
            "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
        ),
        "x_test": (
            "t10k-images-idx3-ubyte",
            "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
        ),
        "y_test": (
            "t10k-labels-idx1-ubyte",
            "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
        ),
    },
    class_names=(
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    ),
)

CIFAR10 = CifarSource(
    name="cifar10",
    folders=("cifar10", "cifar-10", "CIFAR10"),
    archive="cifar-10-python.tar.gz",
    archive_folder="cifar-10-batches-py",
    url="https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
    members={
        "train_1": ("data_batch_1", "c99cafc152244af753f735de768cd75f"),
        "train_2": ("data_batch_2", "d4bba439e000b95fd0a9bffe97cbabec"),
        "train_3": ("data_batch_3", "54ebc095f3ab1f0389bbae665268c751"),
        "train_4": ("data_batch_4", "634d18415352ddfa80567beed471001a"),
        "train_5": ("data_batch_5", "482c414d41f54cd18b22e5b47cb7c3cb"),
        "test": ("test_batch", "40351d587109b95175f43aff81a1287e"),
        "meta": ("batches.meta", "5ff9c542aee3614f3951f8cda6e48888"),
    },
    label_key=b"labels",
    names_key=b"label_names",
    num_classes=10,
)

CIFAR100 = CifarSource(
    name="cifar100",
    folders=("cifar100", "cifar-100", "CIFAR100"),
    archive="cifar-100-python.tar.gz",
    archive_folder="cifar-100-python",
    url="https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
    members={
        "train": ("train", "16019d7e3df5f24257cddd939b257f8d"),
        "test": ("test", "f0ef6b0ae62326f3e7ffdfab6717acfc"),
        "meta": ("meta", "7973b15100ade9c7d40fb424638fde48"),
    },
    label_key=b"fine_labels",
    names_key=b"fine_label_names",
    num_classes=100,
)

# A user's own arrays are loaded from a path (`rzs.data.load_dataset("npz:PATH")`), not registered.
DATASETS = registry.Registry("dataset", also_accepted=("npz:PATH",))
DATASETS.register(MNIST.name, MNIST)
DATASETS.register(FASHION_MNIST.name, FASHION_MNIST)
DATASETS.register(CIFAR10.name, CIFAR10)
DATASETS.register(CIFAR100.name, CIFAR100)


def list_datasets(filter=None, exclude_filters=None):
    """Names of the canonical datasets, optionally narrowed by glob patterns (`Registry.list`)."""
    return DATASETS.list(filter, exclude_filters)


def get_source(name):
    """The `IdxSource` or `CifarSource` of a canonical dataset; ValueError listing the choices otherwise."""
    return DATASETS.get(name)
