"""The cost of one model's training step: first (traced) step and steady steps, three ways.

Builds each network on Fashion-MNIST-shaped inputs at the given width and
precision, then times `fit` over random images fed by rzs's `tf.data`
pipeline:

- `keras`: Keras's element-wise batch normalisation (rzs's fused path switched
  off; the same variables), the optimizer left for `fit` to build;
- `fused`: rzs's `BatchNormalization` with TensorFlow's fused kernel;
- `fused, built`: as `fused`, with the optimizer built before `fit`, as
  `rzs.training.train` does, so that the first step is traced once, not twice.

Every way compiles the network with its recipe's optimizer (Nesterov
momentum and all) and loss, through `rzs.training`.
The first step, which traces the graph, is timed on its own.

Run from the repository root, one thread:

    .venv/bin/python bench/training_step.py --networks resnet densenet --width 0.25 1.0
"""

import argparse
import os
import platform
import time

import recording

from rzs import runner

os.environ.update(runner.thread_environment(1))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from rzs import models, pipeline, training  # noqa: E402
from rzs.models import normalization  # noqa: E402

INPUT_SHAPE = (28, 28, 1)


def time_training(network, width, precision, batch_size, steps, build_optimizer):
    keras.backend.clear_session()
    keras.mixed_precision.set_global_policy(precision)
    model = models.build_model(network, INPUT_SHAPE, 10, width=width)
    model, loss = training._training_model_and_loss(network, model, 10)
    recipe = training.TrainingSpec(network, "fashion_mnist", precision=precision).recipe()
    if build_optimizer:
        # rzs.training's own compile (private, used on purpose so the benchmark cannot drift from it).
        training._compile(model, loss, recipe, steps=None)
    else:
        # The same optimizer (the recipe's, Nesterov and all), loss and metric, but the slot
        # variables left for `fit` to create inside the first traced step: what `_compile` avoids.
        model.compile(optimizer=training.make_optimizer(recipe), loss=loss, metrics=["categorical_accuracy"])
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, (batch_size * 8, *INPUT_SHAPE)).astype("float32")
    labels = rng.integers(0, 10, len(images))
    batches = pipeline.training_dataset(images, labels, 10, batch_size, seed=0).repeat()
    start = time.perf_counter()
    model.fit(batches, steps_per_epoch=1, epochs=1, verbose=0)
    first_step = time.perf_counter() - start
    start = time.perf_counter()
    model.fit(batches, steps_per_epoch=steps, epochs=1, verbose=0)
    return first_step, (time.perf_counter() - start) / steps


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--networks", nargs="+", default=["lenet", "resnet", "densenet"])
    parser.add_argument("--width", nargs="+", type=float, default=[0.25])
    parser.add_argument("--precision", default="mixed_bfloat16")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=30)
    recording.add_record_option(parser)
    arguments = parser.parse_args()
    print(
        f"python {platform.python_version()}, keras {keras.__version__}, tensorflow "
        f"{tf.__version__}, {arguments.precision}, batch {arguments.batch_size}, 1 thread"
    )
    recorder = recording.Recorder(arguments.record_dir, "training_step")
    fusable = normalization.BatchNormalization._fusable
    ways = {
        "keras": (lambda *_: False, False),
        "fused": (fusable, False),
        "fused, built": (fusable, True),
    }
    for network in arguments.networks:
        for width in arguments.width:
            first, step = {}, {}
            for way, (check, build_optimizer) in ways.items():
                normalization.BatchNormalization._fusable = check
                first[way], step[way] = time_training(
                    network,
                    width,
                    arguments.precision,
                    arguments.batch_size,
                    arguments.steps,
                    build_optimizer,
                )
            normalization.BatchNormalization._fusable = fusable
            cells = {
                "network": network,
                "width": width,
                "ms/step: Keras BN / fused": f"{step['keras'] * 1000:.0f} / {step['fused'] * 1000:.0f}",
                "speed-up": f"{step['keras'] / step['fused']:.2f}x",
                "first step s: Keras BN / fused / fused, optimizer built": (
                    f"{first['keras']:.1f} / {first['fused']:.1f} / {first['fused, built']:.1f}"
                ),
            }
            numbers = {"step_seconds": step, "first_step_seconds": first, "precision": arguments.precision}
            recorder.row("training-step", cells, numbers)


if __name__ == "__main__":
    main()
