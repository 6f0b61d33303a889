"""`tf.data` input pipelines and batched inference under the model contract.

Keras consumes `tf.data` on every backend, and it lets augmentation run in the
input graph instead of in Python per batch. Autotuning is switched off: with
it, `fit` and `predict` often idle for seconds after the last batch on small
CPU machines.
"""

import keras
import numpy as np
import tensorflow as tf
from keras import layers


def _options():
    options = tf.data.Options()
    options.autotune.enabled = False
    options.deterministic = True
    return options


def augmentation_layers(seed, shift=1 / 8):
    """Horizontal flips and shifts of up to `shift` of the image size.

    The authors' `ImageDataGenerator(horizontal_flip=True,
    width_shift_range=0.125, height_shift_range=0.125)`, with its default
    nearest-pixel fill.
    """
    return keras.Sequential(
        [
            layers.RandomFlip("horizontal", seed=seed),
            layers.RandomTranslation(shift, shift, fill_mode="nearest", seed=seed + 1),
        ],
        name="augmentation",
    )


def training_dataset(
    images, labels, num_classes, batch_size, seed, augment=False, label_transform=None
):
    """Shuffled, batched (pixels float32 in [0, 255], one-hot labels) pairs.

    `label_transform`, if given, maps a batch of one-hot labels to training
    targets (label smoothing, for example).
    """
    dataset = tf.data.Dataset.from_tensor_slices((images, labels))
    dataset = dataset.shuffle(len(images), seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.batch(batch_size)
    augmentation = augmentation_layers(seed) if augment else None

    def prepare(batch_images, batch_labels):
        pixels = tf.cast(batch_images, tf.float32)
        if augmentation is not None:
            pixels = augmentation(pixels, training=True)
        targets = tf.one_hot(batch_labels, num_classes)
        if label_transform is not None:
            targets = label_transform(targets)
        return pixels, targets

    return dataset.map(prepare).prefetch(2).with_options(_options())


def predict_probabilities(model, images, batch_size=512):
    """The model's soft labels for uint8 or float images, shape (n, classes)."""
    if len(images) == 0:
        return np.zeros((0, model.output_shape[-1]), dtype=np.float32)
    dataset = (
        tf.data.Dataset.from_tensor_slices(images)
        .batch(batch_size)
        .map(lambda batch: tf.cast(batch, tf.float32))
        .with_options(_options())
    )
    return np.asarray(model.predict(dataset, verbose=0), dtype=np.float32)
