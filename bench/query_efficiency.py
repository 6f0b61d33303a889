"""Benchmark: success rate against queries per image, random search beside evolution.

Trains one small LeNet as the library does (`rzs.training.train`: 400
Fashion-MNIST images per class, 2 epochs, Adam at 2e-3 on a cosine, float32),
takes the first test images it classifies correctly, and attacks them at
`--budgets` queries per image with each attack of the two threat models:

- L-inf at th = `--threshold-th` (0-255 scale): Square Attack
  (`rzs.attacks.square`) beside the threshold attack with CMA-ES and with DE;
- L0 at th = `--pixel-th` pixels: Sparse-RS (`rzs.attacks.sparse_rs`) beside
  the pixel attack with CMA-ES and with DE.

The evolutionary attacks get the same budget as `population * generations`
with `population = min(400, budget // 10)` (at least ten generations; the
authors' 400 where the budget allows). Every attack runs once per budget (the
random searches' schedules are rescaled to their budget, so a small budget is
not a prefix of a large one). Prints a Markdown table: success rate over the
attacked images, mean queries of the successful ones, and wall seconds.

Run from the repository root (Fashion-MNIST found by `rzs.data` through
RZS_DATA_DIR):

    RZS_DATA_DIR=../shared/data .venv/bin/python bench/query_efficiency.py --images 50
"""

import argparse
import datetime
import os
import platform
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
import numpy as np
import tensorflow as tf

from rzs import attacks, training
from rzs.attacks.sparse_rs import sparse_rs
from rzs.attacks.square import square_attack


def train_lenet(seed):
    """LeNet on 400 Fashion-MNIST images per class for 2 epochs, and its test set."""
    spec = training.TrainingSpec(
        network="lenet",
        dataset="fashion_mnist",
        per_class_train=400,
        epochs=2,
        batch_size=64,
        optimizer="adam",
        learning_rate=0.002,
        schedule="cosine",
        seed=seed,
    )
    trained = training.train(spec, verbose=0)
    dataset, _ = spec.load_data()
    return trained, dataset


def cpu_model():
    """The processor's name from /proc/cpuinfo, or the platform's where there is none."""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def run(name, function, *arguments, **options):
    """One attack: its table and wall seconds."""
    start = time.perf_counter()
    table = function(*arguments, progress=False, **options)
    seconds = time.perf_counter() - start
    # No attack may end a failed image before its budget.
    early = (~table["success"] & (table["stop_reason"] != "budget")).sum()
    if early:
        print(f"warning: {name}: {early} failed rows ended before their budget")
    return table, seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=50, help="correctly classified images")
    parser.add_argument("--budgets", type=int, nargs="+", default=[100, 1000, 10000])
    parser.add_argument("--threshold-th", type=int, default=10)
    parser.add_argument("--pixel-th", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    arguments = parser.parse_args()

    trained, dataset = train_lenet(arguments.seed)
    model = trained.model
    predictions = np.argmax(model.predict_on_batch(dataset.x_test.astype("float32")), axis=1)
    chosen = np.flatnonzero(predictions == dataset.y_test)[: arguments.images]
    images, labels = dataset.x_test[chosen], dataset.y_test[chosen]
    print(
        f"LeNet test accuracy {trained.test_accuracy:.3f} after {trained.train_seconds:.0f} s; "
        f"attacking the first {len(chosen)} correctly classified test images"
    )
    rows = []
    for budget in arguments.budgets:
        population = min(400, budget // 10)
        search = {"population": population, "generations": budget // population}
        configurations = [
            ("L-inf", arguments.threshold_th, "square", square_attack, {"queries": budget}),
            ("L-inf", arguments.threshold_th, "threshold CMA-ES", attacks.threshold_attack, search),
            (
                "L-inf",
                arguments.threshold_th,
                "threshold DE",
                attacks.threshold_attack,
                {**search, "strategy": "de"},
            ),
            ("L0", arguments.pixel_th, "sparse_rs", sparse_rs, {"queries": budget}),
            ("L0", arguments.pixel_th, "pixel CMA-ES", attacks.pixel_attack, search),
            (
                "L0",
                arguments.pixel_th,
                "pixel DE",
                attacks.pixel_attack,
                {**search, "strategy": "de"},
            ),
        ]
        for threat, th, name, function, options in configurations:
            table, seconds = run(
                name, function, model, images, labels, th, seed=arguments.seed, **options
            )
            successful = table["success"]
            mean_queries = table.loc[successful, "queries"].mean() if successful.any() else np.nan
            rows.append(
                f"| {threat} | {th} | {budget:,} | {name} | {successful.mean():.2f} | "
                f"{mean_queries:.0f} | {seconds:.1f} |"
            )
            print(rows[-1], flush=True)

    print()
    print(f"date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC")
    print(f"machine: {platform.platform()}, {os.cpu_count()} CPUs, {cpu_model()}")
    print(
        f"versions: Python {platform.python_version()}, TensorFlow {tf.__version__}, "
        f"Keras {keras.__version__}, NumPy {np.__version__}"
    )
    print()
    print(
        "| threat | th | queries per image | attack | success rate | mean queries (successes) | seconds |"
    )
    print("|---|---|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
