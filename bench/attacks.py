"""Benchmark: rzs's pixel and threshold attacks against IBM ART's, same model and images.

Trains one small conv net on Fashion-MNIST, then attacks the first test images
with each configuration below, once with ART (`PixelAttack` / `ThresholdAttack`
on a `TensorFlowV2Classifier`) and once with rzs, at the same th and the same
search budget: ART's populations are fixed by its code (differential evolution:
`max(1, 400 // D) * D` candidates for D variables, an initial population plus
`max_iter` generations; CMA-ES: cma's default `4 + int(3 ln D)` candidates for
`max_iter` generations), so rzs is given exactly those. Prints a Markdown table
of success rates and images per second.

Run from the repository root (needs the `bench` extra and Fashion-MNIST, found
by `rzs.data` through RZS_DATA_DIR):

    RZS_DATA_DIR=../shared/data .venv/bin/python bench/attacks.py --images 100 \
        --art-threshold-images 20
"""

import argparse
import os
import platform
import time
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import art  # noqa: E402
import cma  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402
import recording  # noqa: E402
import tensorflow as tf  # noqa: E402
from art.attacks.evasion import PixelAttack, ThresholdAttack  # noqa: E402
from art.estimators.classification import TensorFlowV2Classifier  # noqa: E402

from rzs import data, testing  # noqa: E402
from rzs.attacks import pixel_attack, threshold_attack  # noqa: E402

ART_GENERATIONS = 100  # ART's max_iter


def art_population(strategy, dimension):
    """Candidates per generation in ART's pixel_threshold.py for `dimension` variables."""
    if strategy == "de":
        return max(1, 400 // dimension) * dimension
    return 4 + int(3 * np.log(dimension))  # cma's default popsize


def run_art(model, attack, strategy, th, images, labels):
    classifier = TensorFlowV2Classifier(
        model, nb_classes=10, input_shape=images.shape[1:], clip_values=(0, 255)
    )
    attack_class = PixelAttack if attack == "pixel" else ThresholdAttack
    es = 0 if strategy == "cmaes" else 1
    attacker = attack_class(classifier, th=th, es=es, max_iter=ART_GENERATIONS, verbose=False)
    start = time.perf_counter()
    adversarials = attacker.generate(images.astype("float32"), labels)
    seconds = time.perf_counter() - start
    predictions = np.argmax(model.predict_on_batch(adversarials.astype("float32")), axis=1)
    return predictions != labels, seconds


def run_rzs(model, attack, strategy, th, images, labels, population, generations, seeds, fitness):
    """Success per image and wall seconds of each seed's run."""
    attack_function = pixel_attack if attack == "pixel" else threshold_attack
    successes, seconds = [], []
    for seed in range(seeds):
        start = time.perf_counter()
        table = attack_function(
            model, images, labels, th, strategy=strategy, population=population,
            generations=generations, seed=seed, progress=False, fitness=fitness,
        )
        seconds.append(time.perf_counter() - start)
        # The default search never gives up before its budget; say so if it ever does.
        stopped_early = ((table["stop_reason"] != "budget") & ~table["success"]).sum()
        if stopped_early:
            print(f"warning: {stopped_early} failed rows stopped before their budget")
        successes.append(table["success"].to_numpy())
    return np.array(successes), np.array(seconds)


def success_cell(successes, mask):
    """Success rate over the images in `mask`: mean over runs, with the range when several."""
    rates = successes[:, mask].mean(axis=1)
    if len(rates) == 1:
        return f"{rates[0]:.2f}"
    return f"{rates.mean():.2f} ({rates.min():.2f}-{rates.max():.2f})"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=100, help="test images attacked")
    parser.add_argument(
        "--art-threshold-images", type=int, default=10,
        help="images ART's threshold attacks get (5 to 35 s per image here)",
    )
    parser.add_argument("--pixel-th", type=int, default=3)
    parser.add_argument("--threshold-th", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument(
        "--seeds", type=int, default=3,
        help="rzs runs (seeds 0, 1, ...) on the images ART attacked; ART itself is unseeded",
    )
    parser.add_argument(
        "--fitness", default="margin", choices=["margin", "probability"],
        help="rzs's fitness: the log-margin (default) or the authors' probability",
    )
    parser.add_argument(
        "--only", nargs="*", default=None, metavar="ATTACK:STRATEGY",
        help="run only these configurations, e.g. threshold:cmaes",
    )
    recording.add_record_option(parser)
    arguments = parser.parse_args()
    warnings.filterwarnings("ignore")

    print(
        f"python {platform.python_version()}, keras {keras.__version__}, "
        f"tensorflow {tf.__version__}, numpy {np.__version__}, cma {cma.__version__}, "
        f"adversarial-robustness-toolbox {art.__version__}"
    )
    print(f"rzs fitness: {arguments.fitness}; rzs searches run to success or budget")
    print(f"cpu: {os.cpu_count()} cores, {platform.processor() or platform.machine()}; "
          f"load average at start {os.getloadavg()}")
    fashion = data.load_dataset("fashion_mnist")
    model = testing.small_conv_net(fashion.x_train, fashion.y_train, epochs=arguments.epochs)
    images, labels = fashion.x_test[: arguments.images], fashion.y_test[: arguments.images]
    clean = np.argmax(model.predict_on_batch(images.astype("float32")), axis=1) == labels
    print(f"model accuracy on the {len(images)} images: {clean.mean():.2f}")

    pixel_th, threshold_th = arguments.pixel_th, arguments.threshold_th
    pixel_dimension = pixel_th * (2 + images.shape[-1])
    threshold_dimension = images[0].size
    every, few = arguments.images, arguments.art_threshold_images
    # ART's DE scores its initial population and then `max_iter` generations.
    de_generations = ART_GENERATIONS + 1
    # (attack, strategy, th, population, generations, images for ART (0: no ART
    # run), images for rzs).
    pixel_de, pixel_cmaes = (art_population(name, pixel_dimension) for name in ("de", "cmaes"))
    threshold_de = art_population("de", threshold_dimension)
    threshold_cmaes = art_population("cmaes", threshold_dimension)
    configurations = [
        ("pixel", "de", pixel_th, pixel_de, de_generations, every, every),
        ("pixel", "cmaes", pixel_th, pixel_cmaes, ART_GENERATIONS, every, every),
        ("threshold", "cmaes", threshold_th, threshold_cmaes, ART_GENERATIONS, few, every),
        ("threshold", "de", threshold_th, threshold_de, de_generations, few, every),
        # The authors' CMA-ES budget; ART's CMA-ES uses cma's small default population instead.
        ("pixel", "cmaes", pixel_th, 400, 100, 0, every),
        ("threshold", "cmaes", threshold_th, 400, 100, 0, few),
    ]
    recorder = recording.Recorder(
        arguments.record_dir, "attacks", cma=cma.__version__, **{"adversarial-robustness-toolbox": art.__version__}
    )
    if arguments.only is not None:
        configurations = [
            configuration for configuration in configurations
            if f"{configuration[0]}:{configuration[1]}" in arguments.only
        ]
    for attack, strategy, th, population, generations, art_images, rzs_images in configurations:
        runs = []
        if art_images:
            success, seconds = run_art(
                model, attack, strategy, th, images[:art_images], labels[:art_images]
            )
            runs.append(("ART", success[None], np.array([seconds]), art_images))
        # rzs on ART's images (several seeds) and, where ART attacked fewer, on all.
        for count in sorted({art_images, rzs_images} - {0}):
            seeds = arguments.seeds if count == art_images else 1
            success, seconds = run_rzs(
                model, attack, strategy, th, images[:count], labels[:count], population,
                generations, seeds, arguments.fitness,
            )
            runs.append((f"rzs ({seeds} seeds)" if seeds > 1 else "rzs", success, seconds, count))
        art_rate = art_images / runs[0][2][0] if art_images else None
        for tool, success, seconds, count in runs:
            rate = count / seconds.mean()
            speed_up = f"{rate / art_rate:.1f}x" if art_rate and tool != "ART" else ""
            cells = {
                "attack": attack,
                "strategy": strategy,
                "th": th,
                "population x generations": f"{population} x {generations}",
                "tool": tool,
                "images": count,
                "success (all)": success_cell(success, slice(None)),
                "success (correct)": success_cell(success, clean[:count]),
                "wall s": f"{seconds.mean():.1f}",
                "images/s": f"{rate:.3f}",
                "rzs speed-up": speed_up,
            }
            numbers = {
                "success_per_seed": success.mean(axis=1).tolist(),
                "seconds_per_seed": seconds.tolist(),
                "images_per_second": rate,
                "speed_up": rate / art_rate if art_rate and tool != "ART" else None,
                "fitness": arguments.fitness,
            }
            recorder.row("attacks", cells, numbers)
    print(f"\nload average at end {os.getloadavg()}")


if __name__ == "__main__":
    main()
