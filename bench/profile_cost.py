"""Where a profile's compute goes, read from the timings its results stored in the run store.

    RZS_DATA_DIR=../shared/data .venv/bin/python bench/profile_cost.py --profile quick

Prints Markdown tables, and writes one benchmark record per row (`bench/recording.py`), of compute
seconds (one process each; the runner spreads them over `workers`) per network and kind of result: training, float32 predictions and each attack, for
the vanilla networks and the defended ones with the null control. Nothing is computed: a result
missing from the store is counted as missing. The seconds are those of the runs that computed
each result, on whatever machine and load they had; the README and BENCHMARKS say which.
"""

import argparse
import collections

import pandas as pd
import recording
import yaml

from rzs import reproduce

TIMINGS = ("train_seconds", "predict_seconds", "attack_seconds")


def result_seconds(study):
    """(stage, network, kind) -> [seconds, results, missing] over every result the study needs."""
    store = reproduce.results_store(study)
    totals = collections.defaultdict(lambda: [0.0, 0, 0])
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
        {"stage": stage, "network": network, "kind": kind, "seconds": seconds, "results": done, "missing": missing}
        for (stage, network, kind), (seconds, done, missing) in result_seconds(study).items()
    ]
    table = pd.DataFrame(rows).pivot_table(
        index=["stage", "network"], columns="kind", values="seconds", aggfunc="sum", sort=False
    )
    table["all"] = table.sum(axis=1)
    totals = pd.DataFrame(rows).groupby("stage")[["seconds", "results", "missing"]].sum()
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
