"""One small JSON record per benchmark result, which `bench/render.py` turns into BENCHMARKS.md's tables.

A record is one row of one table: its `cells` (column header -> the text the
table shows, in column order) beside the `numbers` behind them, and what the
row was measured with: machine, versions, command, date and commit. Numbers
typed by hand into BENCHMARKS.md drift from the runs they came from; records
written by the run itself, and tables rendered from them, do not.

Records live in `bench/records/<benchmark>/<table>-<run>-<row>.json`; rows of
one table sort by run (its start time), then row.
"""

import datetime
import json
import os
import pathlib
import platform
import subprocess
import sys

REPOSITORY = pathlib.Path(__file__).resolve().parent.parent
RECORDS = REPOSITORY / "bench" / "records"


def add_record_option(parser):
    """The `--record-dir` option every bench script shares."""
    parser.add_argument(
        "--record-dir",
        type=pathlib.Path,
        default=RECORDS,
        help="where to write one JSON record per table row (default bench/records)",
    )


def commit():
    """The checkout's short commit, with `+` when it has uncommitted changes; None outside git."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPOSITORY, capture_output=True, text=True, check=True
        ).stdout.strip()
        changed = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=REPOSITORY,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return head + ("+" if changed else "")


def cpu_model():
    """The processor's name from /proc/cpuinfo, or the platform's where there is none."""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment(**versions):
    """Machine and versions of this process, as `rzs.reproducibility` records them for results.

    Keyword arguments add the versions of libraries the library does not record
    (ART, cma).
    """
    from rzs import reproducibility  # imports Keras: only once a benchmark runs

    recorded = reproducibility.environment()
    machine = {**recorded["machine"], "cpu": cpu_model(), "load_average": list(os.getloadavg())}
    return {"machine": machine, "versions": {**recorded["versions"], **versions}}


class Recorder:
    """Writes and prints the rows of one benchmark run, all with its start time, command and environment.

    Each run's table is named `<table>-<start time>`, so a new run never mixes
    its rows into an older run's table: `bench/render.py --check` then asks for
    its markers, and the prose beside it says what the machine was doing.
    """

    def __init__(self, record_dir, benchmark, **versions):
        self.directory = pathlib.Path(record_dir) / benchmark
        self.benchmark = benchmark
        self.started = datetime.datetime.now(datetime.timezone.utc)
        self.command = " ".join(["python", *sys.argv])
        self.environment = environment(**versions)
        self.commit = commit()
        self.rows = {}

    def row(self, table, cells, numbers=None, alignment=None):
        """Write one row of `table` and print it as Markdown (after the header, for its first row).

        Args:
            table: the table's name, without the run's start time.
            cells: column header -> the text the table shows, in column order.
            numbers: name -> the unrounded number behind a cell (or any other).
            alignment: "left" or "right" per column, for a padded table.
        """
        cells = {header: str(cell) for header, cell in cells.items()}
        row = self.rows[table] = self.rows.get(table, 0) + 1
        if row == 1:
            print("\n| " + " | ".join(cells) + " |\n" + "|---" * len(cells) + "|")
        print("| " + " | ".join(cells.values()) + " |", flush=True)
        stamp = self.started.strftime("%Y-%m-%d-%H%M")
        record = {
            "benchmark": self.benchmark,
            "table": f"{table}-{stamp}",
            "run": self.started.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "row": row,
            "cells": cells,
            "numbers": numbers or {},
            **({"alignment": alignment} if alignment else {}),
            **self.environment,
            "command": self.command,
            "date": self.started.strftime("%Y-%m-%d %H:%M UTC"),
            "commit": self.commit,
        }
        self.directory.mkdir(parents=True, exist_ok=True)
        (self.directory / f"{table}-{stamp}-{row:03d}.json").write_text(json.dumps(record, indent=1) + "\n")
        return record
