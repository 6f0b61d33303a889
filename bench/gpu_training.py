"""Training and inference throughput of every registered network on one accelerator.

Sizes the `cifar10` and `paper` profiles: each network is built at full width
on CIFAR-10-shaped inputs (32x32x3, 10 classes) under the profile's precision,
compiled by `rzs.training`'s own compile (the recipe's optimizer, Nesterov
momentum included; the CapsNet with its training model and margin loss), and
timed on random images:

- training images per second, steady steps after a warm-up epoch that
  compiles the step;
- inference images per second through `predict_on_batch`, the call the
  evolutionary attacks make, at the `cifar10` profile's population (400) and
  at a large batch.

It runs on any Keras backend, but needs TensorFlow installed: `rzs.training`
imports `rzs.pipeline`'s `tf.data` input pipeline. Augmentation (which that
pipeline runs on the host) is left out of the timing.
Run from the repository root, for example with JAX on a GPU:

    KERAS_BACKEND=jax python bench/gpu_training.py --networks lenet resnet
"""

import argparse
import platform
import time

import keras
import numpy as np
import recording

from rzs import models, training

INPUT_SHAPE = (32, 32, 3)
NUM_CLASSES = 10


def compiled_training_model(network, precision):
    """The network's inference model and compiled training model, as rzs trains it."""
    keras.backend.clear_session()
    keras.mixed_precision.set_global_policy(precision)
    recipe = training.TrainingSpec(network, "cifar10", precision=precision).recipe()
    model = models.build_model(network, INPUT_SHAPE, NUM_CLASSES)
    # rzs.training's own compile (private, used on purpose so the benchmark cannot drift from it)
    # with the recipe `train` compiles with: the optimizer with its Nesterov momentum, the network's
    # training model and loss, the optimizer built before `fit`. Every recipe decays per epoch.
    training_model, loss = training._training_model_and_loss(network, model, NUM_CLASSES)
    training._compile(training_model, loss, recipe, steps=None)
    return model, training_model, recipe


def training_inputs(training_model, images, targets):
    if isinstance(training_model.input, dict):
        return {"pixels": images, "labels": targets}
    return images


def images_per_second(run, images, repeats):
    run()  # compiles
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return images / float(np.median(times))


def measure(network, precision, steps, predict_batches):
    model, training_model, recipe = compiled_training_model(network, precision)
    batch_size = recipe["batch_size"]
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, (batch_size * steps, *INPUT_SHAPE)).astype("float32")
    targets = keras.utils.to_categorical(rng.integers(0, NUM_CLASSES, len(images)), NUM_CLASSES)
    inputs = training_inputs(training_model, images, targets)

    def train_epoch():
        training_model.fit(inputs, targets, batch_size=batch_size, epochs=1, verbose=0)

    row = {
        "network": network,
        "parameters": model.count_params(),
        "batch": batch_size,
        "train": images_per_second(train_epoch, len(images), repeats=2),
    }
    for predict_batch in predict_batches:
        batch = images[:predict_batch]

        def predict(batch=batch):
            keras.ops.convert_to_numpy(model.predict_on_batch(batch))

        row[f"predict {predict_batch}"] = images_per_second(predict, predict_batch, repeats=20)
    return row


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--networks", nargs="+", default=models.list_models())
    parser.add_argument("--precision", default="mixed_bfloat16")
    parser.add_argument("--steps", type=int, default=60, help="training steps per timed epoch")
    parser.add_argument("--predict-batches", nargs="+", type=int, default=[400, 4000])
    recording.add_record_option(parser)
    arguments = parser.parse_args()
    print(
        f"python {platform.python_version()}, keras {keras.__version__}, backend "
        f"{keras.backend.backend()}, {arguments.precision}, {arguments.steps} steps per epoch"
    )
    recorder = recording.Recorder(arguments.record_dir, "gpu_training")
    for network in arguments.networks:
        row = measure(network, arguments.precision, arguments.steps, arguments.predict_batches)
        cells = {"network": network, "parameters": f"{row['parameters']:,}", "batch": row["batch"]}
        cells["train img/s"] = f"{row['train']:,.0f}"
        for batch in arguments.predict_batches:
            cells[f"predict_on_batch({batch}) img/s"] = f"{row[f'predict {batch}']:,.0f}"
        recorder.row(f"gpu-training-{keras.backend.backend()}", cells, {**row, "precision": arguments.precision})


if __name__ == "__main__":
    main()
