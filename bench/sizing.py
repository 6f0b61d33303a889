"""Size a profile: train each network's full model once, as the profile would, and time it.

For every network of the profile (or `--networks`), trains the full N-class
model with the profile's settings (its `network_options` included), in this
process and with the threads each of the profile's `workers` would get, and
prints its test accuracy, how many classes it ever predicts on the test set
(fewer than N: a class the short run never learnt), its seconds, and the
profile's estimated training time: N + 1 models per network, shared by the
workers. Nothing is stored in the run store; each row is written as a
benchmark record (`bench/recording.py`).

With `--leave-one-out`, each network's full model is followed by two
leave-one-out models (classes 0 and 1): the first traces its training step,
the second reuses it (`rzs.training.train`). The estimate then counts one
traced and N - 1 reused leave-one-out models per network; the grid runner's
workers trace a network once each, so slightly more.

Run from the repository root:

    RZS_DATA_DIR=../shared/data .venv/bin/python bench/sizing.py --profile quick
    RZS_DATA_DIR=../shared/data .venv/bin/python bench/sizing.py --profile quick \\
        -p epochs 4 --networks lenet resnet
"""

import argparse
import os
import platform
import time

import recording
import yaml

from rzs import reproduce, runner
from rzs.study import Study


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="quick", choices=reproduce.available_profiles())
    parser.add_argument("--networks", nargs="*", default=None)
    parser.add_argument(
        "--leave-one-out", action="store_true",
        help="also time a traced and a reused leave-one-out model per network",
    )
    parser.add_argument(
        "-p", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
        help="override a profile parameter (YAML value), as make reproduce does",
    )
    recording.add_record_option(parser)
    arguments = parser.parse_args()
    parameters = reproduce.load_profile(arguments.profile)
    parameters.update({name: yaml.safe_load(value) for name, value in arguments.p})
    study = Study.from_parameters(**parameters)
    threads = max(1, runner.available_cores() // study.workers)
    # TensorFlow reads its thread counts once, when it is imported by the first training.
    os.environ.update(runner.thread_environment(threads))

    import keras

    from rzs import pipeline, training  # imports TensorFlow

    print(
        f"profile {arguments.profile}, {threads} thread(s) per worker, {study.workers} worker(s); "
        f"python {platform.python_version()}, keras {keras.__version__}; "
        f"load average {os.getloadavg()}"
    )
    recorder = recording.Recorder(arguments.record_dir, "sizing")
    total = estimate = 0.0
    for network in arguments.networks or study.networks:
        spec = study.full_spec(network)
        keras.backend.clear_session()
        trained, seconds = _timed_training(training, spec)
        total += seconds
        # A low training accuracy means the run is too short; a high one over a low test
        # accuracy means it overfits or its BN statistics lag.
        train_accuracy = trained.history["categorical_accuracy"][-1]
        dataset, _ = spec.load_data()
        predicted = pipeline.predict_probabilities(trained.model, dataset.x_test).argmax(axis=1)
        classes_predicted = len(set(predicted.tolist()))
        cells = {
            "network": network,
            "full-model test accuracy": f"{trained.test_accuracy:.3f}",
            "last-epoch train accuracy": f"{train_accuracy:.3f}",
            "classes predicted": f"{classes_predicted} of {dataset.num_classes}",
            "train s": f"{trained.train_seconds:.1f}",
            "build + train + evaluate s": f"{seconds:.1f}",
        }
        numbers = {
            "test_accuracy": trained.test_accuracy,
            "train_accuracy": train_accuracy,
            "classes_predicted": classes_predicted,
            "train_seconds": trained.train_seconds,
            "seconds": seconds,
            "spec": spec.config(),
        }
        if arguments.leave_one_out:
            traced, traced_seconds = _timed_training(training, spec.with_excluded(0))
            reused, reused_seconds = _timed_training(training, spec.with_excluded(1))
            assert reused.reused_step and not traced.reused_step
            cells["leave-one-out, traced s"] = f"{traced_seconds:.1f}"
            cells["leave-one-out, reused s"] = f"{reused_seconds:.1f}"
            numbers.update(traced_seconds=traced_seconds, reused_seconds=reused_seconds)
            estimate += seconds + traced_seconds + reused_seconds * (len(study.classes) - 1)
        else:
            estimate += seconds * (len(study.classes) + 1)
        recorder.row(f"sizing-{arguments.profile}", cells, numbers)
    models_per_network = len(study.classes) + 1
    print(
        f"\nOne full model each: {total:.0f} s. Training the profile's {models_per_network} models "
        f"per network on {study.workers} worker(s): about {estimate / study.workers / 60:.0f} "
        f"min (leave-one-out models train on 1/N fewer images). Load average at end {os.getloadavg()}."
    )


def _timed_training(training, spec):
    start = time.perf_counter()
    trained = training.train(spec, verbose=0)
    return trained, time.perf_counter() - start


if __name__ == "__main__":
    main()
