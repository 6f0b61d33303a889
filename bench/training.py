"""Training speed of rzs against the authors' way of feeding Keras, side by side.

rzs trains with `rzs.pipeline.training_dataset` (shuffling, batching and the
flip + 1/8-shift augmentation in the `tf.data` graph) and `model.fit`, as
`rzs.training.train` does. The authors fed `fit` from
`ImageDataGenerator(...).flow`, which augments every image in Python (SciPy
affine transforms), batch by batch. Keras 3 dropped `ImageDataGenerator` from
`keras.preprocessing.image`; it survives as
`tf.keras.preprocessing.image.ImageDataGenerator` (Keras 3's legacy tf.keras
namespace), which is what this benchmark uses.

Both ways train the same network (rzs's builder, compiled with the network's
recipe as rzs compiles it) on the same images with the same batch size. One
warm-up epoch (tracing, first-batch costs) is excluded; throughput is images
per second over the timed epochs. The measurements of a network alternate
between the ways so that a change in the machine's load hits all of them.
Two more rzs ways show what options buy: batch 256, and mixed bfloat16 (the
quick profile's precision) at batch 64. A last way, *step only*, trains on the
same batches without augmentation, made once and cached: the training step's
own speed, which no input pipeline at batch 64 can beat.

`--stacked` instead measures training the N+1 Raw Zero-Shot models of LeNet
in one compiled step against one model after another (see `train_stacked`).

Usage:
    RZS_DATA_DIR=../shared/data .venv/bin/python bench/training.py
    RZS_DATA_DIR=../shared/data .venv/bin/python bench/training.py --stacked
"""

import argparse
import json
import math
import os
import platform
import statistics
import time

import keras
import numpy as np
import recording
import tensorflow as tf

from rzs import data as rzs_data
from rzs import metrics, models, pipeline, training

NETWORKS = ("lenet", "allconv", "resnet")
BATCH_SIZE = 64
STACKED_PER_CLASS_TEST = 100
LARGE_BATCH_SIZE = 256
SHIFT = 1 / 8
DATASET_NAMES = {"cifar_shaped": "CIFAR-shaped", "fashion_mnist": "Fashion-MNIST"}
NETWORK_NAMES = {"lenet": "LeNet", "allconv": "AllConv", "resnet": "ResNet-32"}


class EpochTimer(keras.callbacks.Callback):
    """Wall-clock and process CPU seconds (all threads) of every epoch.

    CPU seconds per image measure the work a way of training does, which other
    processes on a shared machine disturb far less than the wall clock.
    """

    def __init__(self):
        super().__init__()
        self.seconds = []
        self.cpu_seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self.start = (time.perf_counter(), time.process_time())

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self.start[0])
        self.cpu_seconds.append(time.process_time() - self.start[1])


def cifar_shaped(num_images, seed=0):
    """Random 32x32x3 uint8 images and labels of 10 classes (CIFAR-10 is not offline)."""
    generator = np.random.default_rng(seed)
    images = generator.integers(0, 256, (num_images, 32, 32, 3), dtype=np.uint8)
    return images, generator.integers(0, 10, num_images)


def fashion_mnist(num_images):
    """The first `num_images / 10` Fashion-MNIST training images of each class."""
    dataset = rzs_data.per_class_subset(
        rzs_data.load_dataset("fashion_mnist"), per_class_train=num_images // 10, per_class_test=1
    )
    return dataset.x_train, dataset.y_train


def compiled_model(network, images, num_classes, seed=0, precision="float32"):
    """The network as `rzs.training.train` builds and compiles it, at `precision`."""
    keras.utils.set_random_seed(seed)
    keras.mixed_precision.set_global_policy(precision)
    pixels = images.reshape(-1, images.shape[-1]).astype(np.float64)
    model = models.build_model(
        network,
        images.shape[1:],
        num_classes,
        mean=pixels.mean(axis=0).tolist(),
        std=np.maximum(pixels.std(axis=0), 1e-3).tolist(),
    )
    # rzs.training's own compile (private, used on purpose so the benchmark cannot drift from it)
    # with the recipe `train` compiles with: the optimizer with its Nesterov momentum, the network's
    # loss, the optimizer built before `fit`. These recipes decay per epoch, so no step count.
    training_model, loss = training._training_model_and_loss(network, model, num_classes)
    training._compile(training_model, loss, training.TrainingSpec(network, "fashion_mnist").recipe(), steps=None)
    keras.mixed_precision.set_global_policy("float32")
    return training_model


def rzs_batches(images, labels, num_classes, batch_size, seed=0):
    """rzs's input pipeline, as `rzs.training.train` builds it."""
    return pipeline.training_dataset(
        images, labels, num_classes, batch_size, seed=seed, augment=True
    )


def authors_batches(images, labels, num_classes, batch_size):
    """The authors' input pipeline: per-image augmentation in Python."""
    generator = tf.keras.preprocessing.image.ImageDataGenerator(
        horizontal_flip=True,
        width_shift_range=SHIFT,
        height_shift_range=SHIFT,
        fill_mode="nearest",
    )
    return generator.flow(
        images.astype(np.float32),
        keras.utils.to_categorical(labels, num_classes),
        batch_size=batch_size,
        seed=0,
    )


def measure_ways(network, images, labels, ways, rounds):
    """Median images per second and CPU milliseconds per image of every way.

    Each way's model is warmed up by one epoch, then the ways take turns, one
    epoch each, for `rounds` rounds, so that load from other processes falls
    on all of them alike.
    """
    trained = {}
    for name, (batches, precision) in ways.items():
        model = compiled_model(network, images, 10, precision=precision)
        model.fit(batches, epochs=1, verbose=0)  # tracing and first-batch costs
        trained[name] = model
    timers = {name: EpochTimer() for name in ways}
    for _ in range(rounds):
        for name, (batches, _) in ways.items():
            trained[name].fit(batches, epochs=1, callbacks=[timers[name]], verbose=0)
    results = {}
    for name, timer in timers.items():
        results[name] = {
            "images_per_second": len(images) / statistics.median(timer.seconds),
            "images_per_second_range": [
                len(images) / max(timer.seconds),
                len(images) / min(timer.seconds),
            ],
            "cpu_ms_per_image": 1000 * statistics.median(timer.cpu_seconds) / len(images),
        }
    return results


def compare_pipelines(networks, images_per_network, rounds, recorder):
    """One row per (dataset, network): how fast each way trains."""
    rows = []
    for dataset_name in ("cifar_shaped", "fashion_mnist"):
        for network in networks:
            num_images = images_per_network[network]
            if dataset_name == "cifar_shaped":
                images, labels = cifar_shaped(num_images)
            else:
                images, labels = fashion_mnist(num_images)
            # name -> (batches, the model's dtype policy)
            ways = {
                "authors_64": (authors_batches(images, labels, 10, BATCH_SIZE), "float32"),
                "rzs_64": (rzs_batches(images, labels, 10, BATCH_SIZE), "float32"),
                f"rzs_{LARGE_BATCH_SIZE}": (
                    rzs_batches(images, labels, 10, LARGE_BATCH_SIZE), "float32"
                ),
                # The quick profile's precision: an rzs option, not the authors' numerics.
                "rzs_64_bfloat16": (rzs_batches(images, labels, 10, BATCH_SIZE), "mixed_bfloat16"),
                # No input pipeline at all: the same batches, unaugmented, made once and cached.
                # The training step's own speed, which bounds every way at batch 64.
                "step_only_64": (
                    pipeline.training_dataset(images, labels, 10, BATCH_SIZE, seed=0).cache(),
                    "float32",
                ),
            }
            load_before = os.getloadavg()[0]
            row = {"dataset": dataset_name, "network": network, "images": len(images)}
            row.update(measure_ways(network, images, labels, ways, rounds))
            row["load_average_1min"] = [load_before, os.getloadavg()[0]]
            rzs, authors = row["rzs_64"], row["authors_64"]
            row["speedup_64"] = rzs["images_per_second"] / authors["images_per_second"]
            row["cpu_ratio_64"] = authors["cpu_ms_per_image"] / rzs["cpu_ms_per_image"]
            row["step_only_over_authors_64"] = (
                row["step_only_64"]["images_per_second"] / authors["images_per_second"]
            )
            row["speedup_64_bfloat16"] = (
                row["rzs_64_bfloat16"]["images_per_second"] / authors["images_per_second"]
            )
            rows.append(row)
            recorder.row("training-pipelines", pipeline_cells(row), row)
    return rows


def pipeline_cells(row):
    """A row of `compare_pipelines` as BENCHMARKS.md's table shows it."""

    def speed(way):
        low, high = row[way]["images_per_second_range"]
        return f"{row[way]['images_per_second']:.0f} ({low:.0f}-{high:.0f})"

    def against_authors(way):
        ratio = row[way]["images_per_second"] / row["authors_64"]["images_per_second"]
        return f"{row[way]['images_per_second']:.0f} ({ratio:.2f}x)"

    authors_cpu, rzs_cpu = row["authors_64"]["cpu_ms_per_image"], row["rzs_64"]["cpu_ms_per_image"]
    return {
        "data": DATASET_NAMES[row["dataset"]],
        "network": NETWORK_NAMES[row["network"]],
        "images": row["images"],
        "authors, img/s (range)": speed("authors_64"),
        "rzs, img/s (range)": speed("rzs_64"),
        "rzs / authors": f"{row['speedup_64']:.2f}x",
        "CPU ms per image, authors / rzs": f"{authors_cpu:.2f} / {rzs_cpu:.2f}",
        "rzs bfloat16, img/s (/ authors)": against_authors("rzs_64_bfloat16"),
        "step only, img/s (/ authors)": against_authors("step_only_64"),
        f"rzs at batch {LARGE_BATCH_SIZE}, img/s": f"{row[f'rzs_{LARGE_BATCH_SIZE}']['images_per_second']:.0f}",
        "load": "{:.1f}-{:.1f}".format(*row["load_average_1min"]),
    }


def raw_zero_shot_members(dataset):
    """The N leave-one-out training sets and the full one, each with its evaluation images.

    Returns a list of (train images, train labels, classes, evaluation images):
    for C_-i the test images of class i (its Raw Zero-Shot soft labels Q_i),
    for the full model every test image.
    """
    members = []
    for excluded in range(dataset.num_classes):
        split = rzs_data.leave_one_out(dataset, excluded)
        known = split.dataset
        members.append((known.x_train, known.y_train, known.num_classes, split.x_test_excluded))
    members.append((dataset.x_train, dataset.y_train, dataset.num_classes, dataset.x_test))
    return members


def schedule_callback(epochs):
    """LeNet's learning-rate schedule scaled to `epochs`, as rzs.training applies it."""
    recipe = training.TrainingSpec("lenet", "fashion_mnist", epochs=epochs).recipe()
    authors_epochs = training.TrainingSpec("lenet", "fashion_mnist").recipe()["epochs"]
    return keras.callbacks.LearningRateScheduler(training.learning_rate_schedule(recipe, authors_epochs))


def train_one_at_a_time(members, epochs, seed):
    """Each member trained on its own, as the grid runner does (but in one process)."""
    soft_labels, timings = [], []
    for images, labels, num_classes, evaluation_images in members:
        model = compiled_model("lenet", images, num_classes, seed=seed)
        batches = rzs_batches(images, labels, num_classes, BATCH_SIZE, seed=seed)
        timer = EpochTimer()
        model.fit(batches, epochs=epochs, callbacks=[timer, schedule_callback(epochs)], verbose=0)
        timings.append(timer.seconds)
        soft_labels.append(pipeline.predict_probabilities(model, evaluation_images))
    return soft_labels, [sum(epoch) for epoch in zip(*timings)]


def train_stacked(members, epochs, seed):
    """All members in one Functional model trained by one compiled step.

    Member k has its own input, fed its own batches (so its batch-normalisation
    statistics never see another member's images, and C_-i never sees class
    i); the loss is the sum of the members' losses, whose variables are
    disjoint, so each member's gradient is the one it would get alone. Every
    member starts from the weights and shuffling seed it gets when trained
    alone. A zipped dataset stops at its shortest part: the full model, with
    1/(N-1) more images than a leave-one-out model, gets as many steps per
    epoch as they do.
    """
    inputs, outputs, datasets = [], [], []
    for index, (images, labels, num_classes, _) in enumerate(members):
        member = compiled_model("lenet", images, num_classes, seed=seed)
        member = keras.Model(member.inputs, member.outputs, name=f"member_{index}")
        inputs.append(keras.Input(images.shape[1:], name=f"pixels_{index}"))
        outputs.append(member(inputs[-1]))
        datasets.append(rzs_batches(images, labels, num_classes, BATCH_SIZE, seed=seed))
    stacked = keras.Model(inputs, outputs)
    stacked.compile(
        optimizer=training.make_optimizer(training.TrainingSpec("lenet", "fashion_mnist").recipe()),
        loss=[keras.losses.CategoricalCrossentropy() for _ in members],
    )
    batches = tf.data.Dataset.zip(tuple(datasets)).map(
        lambda *pairs: (tuple(pair[0] for pair in pairs), tuple(pair[1] for pair in pairs))
    )
    timer = EpochTimer()
    stacked.fit(batches, epochs=epochs, callbacks=[timer, schedule_callback(epochs)], verbose=0)
    steps = min(math.ceil(len(member[0]) / BATCH_SIZE) for member in members)
    soft_labels = [
        pipeline.predict_probabilities(stacked.get_layer(f"member_{index}"), evaluation_images)
        for index, (_, _, _, evaluation_images) in enumerate(members)
    ]
    return soft_labels, timer.seconds, steps


def network_metrics(soft_labels, dataset):
    """DBM and AM per excluded class, and the full model's test accuracy."""
    full = soft_labels[-1]
    pairs = {
        excluded: (soft_labels[excluded], full[dataset.y_test == excluded])
        for excluded in range(dataset.num_classes)
    }
    table = metrics.metrics_table(pairs, "lenet")
    accuracy = float(np.mean(full.argmax(axis=1) == dataset.y_test))
    return table["dbm"].to_numpy(), table["am"].to_numpy(), accuracy


def compare_stacked(per_class_train, per_class_test, epochs, recorder):
    """N+1 LeNets one at a time (two seeds) against all in one step (one seed)."""
    dataset = rzs_data.per_class_subset(
        rzs_data.load_dataset("fashion_mnist"), per_class_train, per_class_test
    )
    members = raw_zero_shot_members(dataset)
    load_before = os.getloadavg()[0]
    runs = {}
    plan = (("one_at_a_time_seed_0", 0), ("stacked_seed_0", 0), ("one_at_a_time_seed_1", 1))
    for name, seed in plan:
        if name.startswith("stacked"):
            soft_labels, epoch_seconds, steps = train_stacked(members, epochs, seed)
            images_per_epoch = sum(min(len(member[0]), steps * BATCH_SIZE) for member in members)
        else:
            soft_labels, epoch_seconds = train_one_at_a_time(members, epochs, seed)
            images_per_epoch = sum(len(member[0]) for member in members)
        dbm, am, accuracy = network_metrics(soft_labels, dataset)
        summary = {
            "seconds_all_epochs": sum(epoch_seconds),
            "seconds_first_epoch": epoch_seconds[0],
            "images_per_second_after_first_epoch": (
                images_per_epoch * (epochs - 1) / sum(epoch_seconds[1:])
            ),
            "dbm_mean": float(dbm.mean()),
            "am_mean": float(am.mean()),
            "full_test_accuracy": accuracy,
        }
        runs[name] = {**summary, "dbm": dbm.tolist(), "am": am.tolist()}
        cells = {
            "run": name.replace("_seed_", ", seed ").replace("_", " "),
            f"all {epochs} epochs, s": f"{summary['seconds_all_epochs']:.1f}",
            "first epoch (tracing), s": f"{summary['seconds_first_epoch']:.1f}",
            "img/s after the first epoch": f"{summary['images_per_second_after_first_epoch']:.0f}",
            "DBM mean": f"{summary['dbm_mean']:.4f}",
            "AM mean": f"{summary['am_mean']:.3f}",
            "full model accuracy": f"{accuracy:.3f}",
        }
        recorder.row("training-stacked", cells, runs[name])
    reference = runs["one_at_a_time_seed_0"]
    summary = {
        "members": len(members),
        "train_images_per_class": per_class_train,
        "epochs": epochs,
        "load_average_1min": [load_before, os.getloadavg()[0]],
        "speedup": (
            runs["stacked_seed_0"]["images_per_second_after_first_epoch"]
            / reference["images_per_second_after_first_epoch"]
        ),
    }
    for other in ("stacked_seed_0", "one_at_a_time_seed_1"):
        for metric in ("dbm", "am"):
            difference = np.abs(np.subtract(runs[other][metric], reference[metric]))
            summary[f"{metric}_mean_absolute_difference_{other}"] = float(difference.mean())
    print(json.dumps(summary), flush=True)
    return {"runs": runs, "summary": summary}


def environment():
    """The machine and library versions the numbers were taken with."""
    return {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "devices": [device.device_type for device in tf.config.list_logical_devices()],
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "numpy": np.__version__,
        "load_average": os.getloadavg(),
    }


def main():
    # Predicting with eleven models retraces once per model, by design.
    tf.get_logger().setLevel("ERROR")
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--networks", nargs="+", choices=NETWORKS, default=list(NETWORKS)
    )
    parser.add_argument("--rounds", type=int, default=3, help="timed epochs of each way")
    parser.add_argument("--lenet-images", type=int, default=2000)
    parser.add_argument("--resnet-images", type=int, default=320)
    parser.add_argument("--allconv-images", type=int, default=192)
    parser.add_argument(
        "--stacked", action="store_true", help="measure N+1 LeNets in one step instead"
    )
    parser.add_argument(
        "--stacked-per-class", type=int, default=200, help="training images per class"
    )
    parser.add_argument("--stacked-epochs", type=int, default=4)
    parser.add_argument("--output", help="also write the results to this JSON file")
    recording.add_record_option(parser)
    arguments = parser.parse_args()
    results = {"environment": environment()}
    recorder = recording.Recorder(arguments.record_dir, "training")
    images_per_network = {
        network: getattr(arguments, f"{network}_images") for network in arguments.networks
    }
    if arguments.stacked:
        results["stacked"] = compare_stacked(
            arguments.stacked_per_class, STACKED_PER_CLASS_TEST, arguments.stacked_epochs, recorder
        )
    else:
        results["pipelines"] = compare_pipelines(
            arguments.networks, images_per_network, arguments.rounds, recorder
        )
    results["environment"]["load_average_after"] = os.getloadavg()
    if arguments.output:
        with open(arguments.output, "w") as file:
            json.dump(results, file, indent=2)


if __name__ == "__main__":
    main()
