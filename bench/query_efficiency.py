"""Benchmark: success rate against queries per image, random search beside evolution.

Attacks one network's first correctly classified test images at `--budgets`
queries per image with each attack of the two threat models:

- L-inf at th = `--threshold-th` (0-255 scale): Square Attack
  (`rzs.attacks.square`) beside the threshold attack with CMA-ES and with DE;
- L0 at th = `--pixel-th` pixels: Sparse-RS (`rzs.attacks.sparse_rs`) beside
  the pixel attack with CMA-ES and with DE.

The network is either a small LeNet trained here as the library trains
(`rzs.training.train`: 400 Fashion-MNIST images per class, 2 epochs, Adam at
2e-3 on a cosine, float32), or, with `--results-dir`, a profile's stored full
model (`--network`, default LeNet), attacked on its float32 copy
(`rzs.inference.load_float32_model`) with the profile's test images: the
networks the study's tables are made of.

The evolutionary attacks get the same budget as `population * generations`
with `population = min(400, budget // 10)` (at least ten generations; the
authors' 400 where the budget allows). Every attack runs once per budget (the
random searches' schedules are rescaled to their budget, so a small budget is
not a prefix of a large one). Prints a Markdown table, and writes a record per
row (`bench/recording.py`): success rate over the attacked images, mean
queries of the successful ones, and wall seconds.

Run from the repository root (Fashion-MNIST found by `rzs.data` through
RZS_DATA_DIR):

    RZS_DATA_DIR=../shared/data .venv/bin/python bench/query_efficiency.py --images 50
    RZS_DATA_DIR=../shared/data .venv/bin/python bench/query_efficiency.py --images 30 \\
        --results-dir results --profile quick --network lenet
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import recording  # noqa: E402

from rzs import attacks, inference, reproduce, store, training, zeroshot  # noqa: E402
from rzs.attacks.sparse_rs import sparse_rs  # noqa: E402
from rzs.attacks.square import square_attack  # noqa: E402
from rzs.study import Study  # noqa: E402


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
    print(f"LeNet trained here: test accuracy {trained.test_accuracy:.3f} after {trained.train_seconds:.0f} s")
    return trained.model, dataset


def stored_model(results_dir, profile, network):
    """The profile's stored full model of `network` (float32 copy), and its dataset.

    Reads only: a model the store lacks is an error, not a training run, so that
    the benchmark attacks the very model the profile's tables describe.
    """
    study = Study.from_parameters(**reproduce.load_profile(profile))
    if network not in study.networks:
        raise ValueError(f"--network must be one of the {profile} profile's {study.networks}, received {network!r}.")
    spec = study.full_spec(network)
    run_store = store.RunStore(results_dir)
    if not run_store.has(spec.kind, spec.config()):
        raise ValueError(
            f"--results-dir must hold the {profile} profile's full {network} model "
            f"({run_store.directory(spec.kind, spec.config())}), received {str(results_dir)!r}."
        )
    result = run_store.load(spec.kind, spec.config())
    model = inference.load_float32_model(result.path(zeroshot.MODEL_FILE))
    dataset, _ = spec.load_data()
    print(
        f"{profile} profile's stored {network}: test accuracy {result.record['test_accuracy']:.3f} "
        f"({result.directory})"
    )
    return model, dataset


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
    parser.add_argument("--budgets", "--queries", type=int, nargs="+", default=[100, 1000, 10000])
    parser.add_argument("--threshold-th", type=int, default=10)
    parser.add_argument("--pixel-th", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--results-dir", help="a run store: attack its stored full model instead of training one")
    parser.add_argument("--profile", default="quick", help="the profile whose stored model to attack")
    parser.add_argument("--network", default="lenet", help="the network whose stored model to attack")
    recording.add_record_option(parser)
    arguments = parser.parse_args()

    if arguments.results_dir is None:
        model, dataset = train_lenet(arguments.seed)
        source = "lenet-trained-here"
    else:
        model, dataset = stored_model(arguments.results_dir, arguments.profile, arguments.network)
        source = f"{arguments.profile}-{arguments.network}"
    predictions = np.argmax(model.predict_on_batch(dataset.x_test.astype("float32")), axis=1)
    chosen = np.flatnonzero(predictions == dataset.y_test)[: arguments.images]
    images, labels = dataset.x_test[chosen], dataset.y_test[chosen]
    print(f"attacking the first {len(chosen)} correctly classified test images")
    recorder = recording.Recorder(arguments.record_dir, "query_efficiency")
    for budget in arguments.budgets:
        population = min(400, budget // 10)
        search = {"population": population, "generations": budget // population}
        configurations = [
            ("L-inf", arguments.threshold_th, "square", square_attack, {"queries": budget}),
            ("L-inf", arguments.threshold_th, "threshold CMA-ES", attacks.threshold_attack, search),
            ("L-inf", arguments.threshold_th, "threshold DE", attacks.threshold_attack, {**search, "strategy": "de"}),
            ("L0", arguments.pixel_th, "sparse_rs", sparse_rs, {"queries": budget}),
            ("L0", arguments.pixel_th, "pixel CMA-ES", attacks.pixel_attack, search),
            ("L0", arguments.pixel_th, "pixel DE", attacks.pixel_attack, {**search, "strategy": "de"}),
        ]
        for threat, th, name, function, options in configurations:
            table, seconds = run(name, function, model, images, labels, th, seed=arguments.seed, **options)
            successful = table["success"]
            mean_queries = float(table.loc[successful, "queries"].mean()) if successful.any() else float("nan")
            cells = {
                "threat": threat,
                "th": th,
                "queries per image": f"{budget:,}",
                "attack": name,
                "success rate": f"{successful.mean():.2f}",
                "mean queries (successes)": f"{mean_queries:.0f}",
                "seconds": f"{seconds:.1f}",
            }
            numbers = {
                "images": len(chosen),
                "budget": budget,
                "successes": int(successful.sum()),
                "success_rate": float(successful.mean()),
                # JSON has no NaN: no success, no mean.
                "mean_queries_of_successes": None if np.isnan(mean_queries) else mean_queries,
                "seconds": seconds,
            }
            recorder.row(f"query-efficiency-{source}", cells, numbers)


if __name__ == "__main__":
    main()
