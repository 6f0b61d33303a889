"""A small trained classifier for the attack tests and benchmarks.

The attacks need a model that follows rzs's model contract (raw pixels in
[0, 255] in, float32 probabilities out, a softmax layer of its own so the
margin fitness can read the logits) and that is cheap enough to train in
seconds on a CPU; the tests and `bench/attacks.py` share this one.
"""

import keras
from keras import layers


def small_conv_net(images, labels, epochs=2, seed=0):
    """A two-layer conv net (about 5k weights) fitted to `images` (M, 28, 28, 1) and `labels` (M,).

    Args:
        images: uint8 or float images in [0, 255], shape (M, 28, 28, 1).
        labels: integer class labels in [0, 10), shape (M,).
        epochs: passes of Adam over the images, in batches of 64.
        seed: the seed of the weights and the batch order.
    """
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((28, 28, 1))
    x = layers.Rescaling(1 / 255)(inputs)
    x = layers.Conv2D(8, 3, activation="relu")(x)
    x = layers.MaxPooling2D()(x)
    x = layers.Conv2D(16, 3, activation="relu")(x)
    x = layers.MaxPooling2D()(x)
    x = layers.Flatten()(x)
    logits = layers.Dense(10)(x)
    outputs = layers.Activation("softmax", dtype="float32")(logits)
    model = keras.Model(inputs, outputs)
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(images.astype("float32"), labels, epochs=epochs, batch_size=64, verbose=0)
    return model
