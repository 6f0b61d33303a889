"""Parsers for the canonical file formats (already verified bytes in)."""

import io
import pickle

import numpy as np

_IDX_DTYPES = {0x08: np.uint8}


def parse_idx(content, path):
    """Decode an idx file (the MNIST format) into a NumPy array.

    Header: two zero bytes, a dtype code, the number of dimensions, then one
    big-endian uint32 per dimension, then the values in C order.
    """
    if len(content) < 4 or content[:2] != b"\x00\x00" or content[2] not in _IDX_DTYPES:
        raise ValueError(f"{path} is not an idx file of unsigned bytes.")
    num_dimensions = content[3]
    header_end = 4 + 4 * num_dimensions
    shape = tuple(np.frombuffer(content[4:header_end], dtype=">u4").astype(int))
    values = np.frombuffer(content, dtype=np.uint8, offset=header_end)
    if values.size != int(np.prod(shape)):
        raise ValueError(
            f"{path}: header says shape {shape} but holds {values.size} values."
        )
    return values.reshape(shape)


class _CifarUnpickler(pickle.Unpickler):
    """An unpickler that can build only what the CIFAR batches contain.

    The batches are dicts of bytes, lists and NumPy arrays. Refusing every
    other global means a tampered file cannot run code, even though it was
    checksum-verified first.
    """

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        # Python 3 pickles bytes with protocol 2 through codecs.encode.
        ("_codecs", "encode"),
    }

    def find_class(self, module, name):
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(
                f"CIFAR batch refers to {module}.{name}, which a CIFAR batch never "
                "contains; refusing to load it."
            )
        return super().find_class(module, name)


def parse_cifar_batch(content):
    """A CIFAR batch (a pickled dict with bytes keys) from verified bytes."""
    return _CifarUnpickler(io.BytesIO(content), encoding="bytes").load()


def cifar_images(batch):
    """CIFAR rows of 3072 values (channel-major) as uint8 NHWC images."""
    data = np.asarray(batch[b"data"], dtype=np.uint8)
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1).copy()
