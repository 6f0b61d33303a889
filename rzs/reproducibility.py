"""Seeding and the record of what produced a result."""

import os
import platform

import keras


def seed_everything(seed):
    """Seed Python, NumPy and the backend, and make backend ops deterministic.

    Same seed on the same machine then gives the same weights and soft labels.
    Op determinism costs nothing measurable on CPU.
    """
    keras.utils.set_random_seed(seed)
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()


def environment():
    """Library versions and machine facts stored with every result."""
    import numpy

    versions = {"python": platform.python_version(), "keras": keras.__version__}
    versions["numpy"] = numpy.__version__
    versions["backend"] = keras.backend.backend()
    if versions["backend"] == "tensorflow":
        import tensorflow as tf

        versions["tensorflow"] = tf.__version__
        devices = [device.device_type for device in tf.config.list_logical_devices()]
    else:
        devices = []
    return {
        "versions": versions,
        "machine": {
            "platform": platform.platform(),
            "processor": platform.machine(),
            "cpu_count": os.cpu_count(),
            "devices": devices,
        },
    }
