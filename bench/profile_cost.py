"""Where a profile's compute goes, read from the timings its results stored in the run store.

    RZS_DATA_DIR=../shared/data .venv/bin/python bench/profile_cost.py --profile quick

Prints Markdown tables, and writes one benchmark record per row (`bench/recording.py`), of compute
seconds (one process each; the runner spreads them over `workers`) per network and kind of result: training, float32 predictions and each attack, for
the vanilla networks and the defended ones with the null control; and, from the task logs, each
network's task wall seconds (start of a task to its result's publication, summed over tasks). Nothing is computed: a result
missing from the store is counted as missing. The seconds are those of the runs that computed
each result, on whatever machine and load they had; the README and BENCHMARKS say which.
"""

import argparse
import collections
import datetime
import re

import pandas as pd
import recording
import yaml

from rzs import reproduce
from rzs.runner import worker
from rzs.store import RECORD, config_key

TIMINGS = ("train_seconds", "predict_seconds", "attack_seconds")
# The line a worker writes to a task's log as it starts an attempt (`rzs.runner.worker`).
ATTEMPT_START = re.compile(re.escape(worker.ATTEMPT_HEADER) + r".* (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)$")


def task_wall_seconds(store, spec):
    """Seconds from the start of the last attempt of `spec`'s task to its result's publication.

    None when the result was not computed as a task of its own (a model trained inside its
    predictions task has no log) or is missing. The log's start time has one-second resolution.
    """
    log = store.root / "logs" / f"{spec.kind}-{config_key(spec.config())}.log"
    record = store.directory(spec.kind, spec.config()) / RECORD
    if not (log.is_file() and record.is_file()):
        return None
    starts = [match.group(1) for match in map(ATTEMPT_START.match, log.read_text(errors="replace").splitlines()) if match]
    if not starts:
        return None
    started = datetime.datetime.strptime(starts[-1], "%Y-%m-%d %H:%M:%S").timestamp()
    return record.stat().st_mtime - started


def result_seconds(study):
    """(stage, network, kind) -> [seconds, results, missing, task wall seconds] over every result the study needs."""
    store = reproduce.results_store(study)
    totals = collections.defaultdict(lambda: [0.0, 0, 0, 0.0])
    for method, specs in study.planned_specs().items():
        stage = "defences" if "defences" in method else "vanilla"
        for spec in specs:
            kind = spec.attack if spec.kind == "attack" else spec.kind
            entry = totals[(stage, spec.network, kind)]
            if not store.has(spec.kind, spec.config()):
                entry[2] += 1
                continue
            timings = store.load(spec.kind, spec.config()).record.get("timings", {})
            entry[0] += sum(timings.get(name, 0.0) for name in TIMINGS)
            entry[1] += 1
            entry[3] += task_wall_seconds(store, spec) or 0.0
    return totals


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="quick")
    parser.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"))
    recording.add_record_option(parser)
    arguments = parser.parse_args(argv)
    parameters = reproduce.load_profile(arguments.profile)
    for name, value in arguments.parameter:
        parameters[name] = yaml.safe_load(value)
    study = reproduce.validate(parameters)
    rows = [
        {
            "stage": stage, "network": network, "kind": kind, "seconds": seconds, "results": done,
            "missing": missing, "task wall": wall,
        }
        for (stage, network, kind), (seconds, done, missing, wall) in result_seconds(study).items()
    ]
    frame = pd.DataFrame(rows)
    table = frame.pivot_table(index=["stage", "network"], columns="kind", values="seconds", aggfunc="sum", sort=False)
    table["all"] = table.sum(axis=1)
    # What the workers spent on the network's tasks, start to publication: the recorded seconds
    # plus building, saving and loading models, reading data and starting the task.
    table["task wall"] = frame.groupby(["stage", "network"], sort=False)["task wall"].sum()
    totals = frame.groupby("stage")[["seconds", "task wall", "results", "missing"]].sum()
    recorder = recording.Recorder(arguments.record_dir, "profile_cost")
    record_frame(recorder, f"profile-cost-{arguments.profile}", table)
    record_frame(recorder, f"profile-cost-{arguments.profile}-stages", totals)


def record_frame(recorder, name, frame):
    """One record per row of `frame`, its cells as pandas' `to_markdown(floatfmt=".0f")` prints them."""
    index_header = "" if isinstance(frame.index, pd.MultiIndex) else frame.index.name
    alignment = ["left"] + ["right"] * len(frame.columns)
    for index, values in frame.iterrows():
        cells = {index_header: str(index), **{column: f"{value:.0f}" for column, value in values.items()}}
        # A kind of result the network has none of is NaN in the pivot: null in JSON.
        numbers = {str(column): None if pd.isna(value) else float(value) for column, value in values.items()}
        recorder.row(name, cells, numbers, alignment)

if __name__ == "__main__":
    main()
