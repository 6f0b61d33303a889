"""Seeding and the record of what produced a result."""

import os
import platform
import random

import keras
import numpy

from rzs.runner import worker


def seed_everything(seed):
    """Seed Python, NumPy and the backend, and make backend ops deterministic.

    Same seed on the same machine then gives the same weights and soft labels.
    Op determinism costs nothing measurable on CPU.

    When the previous call in this process set the same seed (the process's
    `rzs.runner.worker.WorkerState`), the backend's global seed has that value
    still (unless other code set another in between, which this function
    cannot see), and only Python's and NumPy's generators are re-seeded:
    setting TensorFlow's seed again would clear its caches, and every compiled
    function (the training step `rzs.training` reuses for the next
    leave-one-out model) would be instantiated anew, 2-3 s for a ResNet-32
    step on one core. What that skips, resetting stateful random kernels and
    the eager operation-seed counter, touches nothing rzs draws from: its
    random operations are stateless, with explicit seeds.
    """
    state = worker.PROCESS_STATE
    if seed == state.backend_seed:
        random.seed(seed)
        numpy.random.seed(seed)
    else:
        keras.utils.set_random_seed(seed)
        state.backend_seed = seed
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()


def environment():
    """Library versions and machine facts stored with every result."""
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
