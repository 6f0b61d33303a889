"""What the Ray back end costs per task on one machine, against the local back end.

Computes one grid of `--tasks` tiny LeNet models (Fashion-MNIST, 20 images per
class, one epoch) through each back end, `--repeats` times, each time into a
fresh run store, one task at a time with every core (`workers=1`; Ray tasks
reserve every CPU), and prints seconds per task as a Markdown table, one
benchmark record per row (`bench/recording.py`):

- *local*: the default, one worker process computing every task;
- *local, fresh process per task*: `tasks_per_process=1`, what Ray's
  `max_calls=1` does;
- *ray*: one Ray task per result on a Ray cluster this script starts on this
  machine (the start is timed apart: a cluster outlives many grids).

A task's own work is the same on every back end, but for the compiled training
step, which only the first local row's worker keeps from one model to the
next: the second row against the first is what a fresh process per task costs
(start, TensorFlow import, tracing), the third against the second what Ray
adds to that (scheduling, its worker's start-up).

Run from the repository root:

    RZS_DATA_DIR=../shared/data .venv/bin/python bench/ray_overhead.py --tasks 3 --repeats 2
"""

import argparse
import statistics
import tempfile
import time

import ray
import recording

from rzs import runner, zeroshot

TINY = dict(per_class_train=20, per_class_test=5, epochs=1, augmentation=False, batch_size=32)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=3, help="tiny models per grid (default 3)")
    parser.add_argument("--repeats", type=int, default=2, help="grids per back end (default 2)")
    recording.add_record_option(parser)
    arguments = parser.parse_args()
    cores = runner.available_cores()
    recorder = recording.Recorder(arguments.record_dir, "ray_overhead", ray=ray.__version__)

    start = time.perf_counter()
    ray.init(
        num_cpus=cores,
        include_dashboard=False,
        log_to_driver=False,
        # A worker importing Ray on a busy machine can take over the default minute to register.
        _system_config={"worker_register_timeout_seconds": 300},
    )
    ray_start = time.perf_counter() - start
    print(f"Ray {ray.__version__}: a local cluster of {cores} CPUs started in {ray_start:.1f} s.")

    specs = zeroshot.specs_for("lenet", "fashion_mnist", range(arguments.tasks - 1), **TINY)
    back_ends = [
        ("local", dict(backend="local")),
        ("local, fresh process per task", dict(backend="local", tasks_per_process=1)),
        ("ray", dict(backend="ray", resources={"num_cpus": cores})),
    ]
    for name, options in back_ends:
        per_task = [_seconds_per_task(specs, options) for _ in range(arguments.repeats)]
        cells = {
            "back end": name,
            "tasks": len(specs),
            "s per task, mean": f"{statistics.mean(per_task):.1f}",
            "min": f"{min(per_task):.1f}",
            "max": f"{max(per_task):.1f}",
        }
        numbers = {"seconds_per_task": per_task, "ray_start_seconds": ray_start, "cores": cores}
        recorder.row("ray-overhead", cells, numbers)
    ray.shutdown()


def _seconds_per_task(specs, options):
    """Wall seconds per task of one grid of `specs` into a fresh store."""
    with tempfile.TemporaryDirectory() as store:
        start = time.perf_counter()
        report = runner.run_grid(specs, store, zeroshot.get_or_train, workers=1, progress=False, **options)
        seconds = time.perf_counter() - start
    report.raise_for_failures()
    return seconds / len(specs)


if __name__ == "__main__":
    main()
