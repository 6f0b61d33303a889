"""Where a leave-one-out model's fixed cost goes: tracing, instantiating, or neither.

Trains four leave-one-out models of one network in one process, one after
another, and prints the seconds of each (build + train + evaluate, and `fit`
alone), as a Markdown table and one benchmark record per row (`bench/recording.py`):

- *traced*: `train(..., reuse=False)`, the step traced for this model;
- *compiles the step to reuse*: `train` with nothing to reuse yet, which
  traces the step of a twin it keeps for the next model;
- *reused, caches cleared*: the previous model's compiled step, after
  `keras.utils.set_random_seed`, which clears TensorFlow's caches, so the
  step's function is instantiated (optimised, its kernels made) again;
- *reused*: the compiled step as `rzs.training.train` reuses it.

Run from the repository root:

    RZS_DATA_DIR=../shared/data .venv/bin/python bench/reused_step.py --network resnet
"""

import argparse
import os
import platform
import time

import recording


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--network", default="resnet")
    parser.add_argument("--width", type=float, default=0.25)
    parser.add_argument("--per-class-train", type=int, default=64)
    recording.add_record_option(parser)
    arguments = parser.parse_args()
    os.environ.update({"TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1"})

    import keras

    from rzs.training import TrainingSpec, train

    spec = TrainingSpec(
        arguments.network,
        "fashion_mnist",
        excluded=0,
        per_class_train=arguments.per_class_train,
        per_class_test=10,
        width=arguments.width,
        epochs=1,
        batch_size=64,
        precision="mixed_bfloat16",
        batch_norm_momentum=0.9,
        optimizer="adam",
        learning_rate=2e-3,
        schedule="cosine",
    )
    print(
        f"{arguments.network}, width {arguments.width}, {arguments.per_class_train} images per class, "
        f"1 epoch, batch 64, one thread; python {platform.python_version()}, keras {keras.__version__}"
    )
    recorder = recording.Recorder(arguments.record_dir, "reused_step")
    ways = [
        ("traced", dict(reuse=False), False),
        ("compiles the step to reuse", dict(), False),
        ("reused, caches cleared", dict(), True),
        ("reused", dict(), False),
    ]
    for excluded, (name, options, clear_caches) in enumerate(ways):
        if clear_caches:
            keras.utils.set_random_seed(spec.seed)
        start = time.perf_counter()
        trained = train(spec.with_excluded(excluded), verbose=0, **options)
        seconds = time.perf_counter() - start
        cells = {"way": name, "build + train + evaluate s": f"{seconds:.1f}", "of which fit s": f"{trained.train_seconds:.1f}"}
        numbers = {"seconds": seconds, "fit_seconds": trained.train_seconds, "spec": spec.config()}
        recorder.row(f"reused-step-{arguments.network}", cells, numbers)
    print(f"\nLoad average at end {os.getloadavg()}.")


if __name__ == "__main__":
    main()
