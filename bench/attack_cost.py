"""Queries and time of the quick profile's attacks, the authors' stopping against rzs's defaults.

Attacks the first `--images` test images of one stored model (a run-store
`model/<key>/` folder holding `model.keras` and `record.json`) with the pixel
and threshold attacks at the quick profile's settings, twice: with the
authors' probability fitness and cma's own stops (`fitness="probability"`,
`stop_on_convergence=True`), and with rzs's defaults (log-margin fitness, every
search to success or budget). Both run on the float32 copy of the model.

    RZS_DATA_DIR=../shared/data .venv/bin/python bench/attack_cost.py results/model/<key>
"""

import argparse
import json
import pathlib
import time

import numpy as np
import recording

from rzs import attacks, inference
from rzs.training import TrainingSpec

SETTINGS = {
    "before": {"fitness": "probability", "stop_on_convergence": True},
    "defaults": {},
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_folder", type=pathlib.Path)
    parser.add_argument("--images", type=int, default=30)
    parser.add_argument("--population", type=int, default=40)
    parser.add_argument("--generations", type=int, default=15)
    parser.add_argument("--thresholds", type=int, nargs="+", default=[1, 3, 5, 10])
    recording.add_record_option(parser)
    arguments = parser.parse_args()

    record = json.loads((arguments.model_folder / "record.json").read_text())
    spec = TrainingSpec(**{k: v for k, v in record["config"].items() if k != "recipe"})
    dataset, _ = spec.load_data()
    images = dataset.x_test[: arguments.images]
    labels = dataset.y_test[: arguments.images]
    model = inference.load_float32_model(arguments.model_folder / "model.keras")
    probabilities = np.asarray(model.predict_on_batch(images.astype("float32")))
    rows = np.arange(len(labels))
    print(
        f"{spec.network}: accuracy {np.mean(probabilities.argmax(axis=1) == labels):.2f} on "
        f"{len(labels)} images, {int(np.sum(probabilities[rows, labels] == 1.0))} with a "
        "true-class probability of exactly 1.0"
    )
    recorder = recording.Recorder(arguments.record_dir, "attack_cost")
    for name, options in SETTINGS.items():
        for attack in (attacks.pixel_attack, attacks.threshold_attack):
            start = time.perf_counter()
            table = attack(
                model, images, labels, arguments.thresholds, population=arguments.population,
                generations=arguments.generations, progress=False, **options,
            )
            seconds = time.perf_counter() - start
            failed = ~table["success"]
            early = int((failed & (table["stop_reason"] != "budget")).sum())
            on_correct = attacks.summarize(table)["attack_accuracy_on_correct"].mean()
            cells = {
                "setting": name,
                "attack": attack.__name__,
                "wall s": f"{seconds:.1f}",
                "queries": table["queries"].sum(),
                "success": f"{table['success'].mean():.3f}",
                "on correct": f"{on_correct:.3f}",
                "failed rows stopped early": f"{early} of {int(failed.sum())}",
            }
            numbers = {
                "seconds": seconds,
                "queries": int(table["queries"].sum()),
                "success_rate": float(table["success"].mean()),
                "success_rate_on_correct": float(on_correct),
                "failed_stopped_early": early,
                "failed": int(failed.sum()),
                "model": record["key"],
            }
            recorder.row(f"attack-cost-{spec.network}", cells, numbers)


if __name__ == "__main__":
    main()
