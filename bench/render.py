"""Render BENCHMARKS.md's tables from the benchmark records in bench/records.

Every table of BENCHMARKS.md sits between two marker comments,

    <!-- bench/render.py: <table> begin -->
    ...
    <!-- bench/render.py: <table> end -->

and is rendered from the records (`bench/recording.py`) whose `table` is that
name: one row per record, ordered by run and row, columns as the first row
names them. Records with an `alignment` (one of "left" or "right" per column)
render padded, as pandas' `to_markdown` prints them; the others as plain pipe
tables. The prose around the markers is left alone.

    python bench/render.py --check   # exit 1 if BENCHMARKS.md differs from its records
    python bench/render.py --write   # rewrite the tables between the markers

Only the standard library: the check runs in the test suite without Keras.
"""

import argparse
import collections
import json
import pathlib
import re
import sys

REPOSITORY = pathlib.Path(__file__).resolve().parent.parent
MARKER = re.compile(r"^<!-- bench/render\.py: (?P<table>[\w.-]+) (?P<end>begin|end) -->$")


def load_records(record_dir):
    """table -> its records in row order (by run, then row)."""
    tables = collections.defaultdict(list)
    for path in sorted(pathlib.Path(record_dir).glob("*/*.json")):
        record = json.loads(path.read_text())
        tables[record["table"]].append(record)
    for records in tables.values():
        records.sort(key=lambda record: (record["run"], record["row"]))
    return dict(tables)


def render_table(records):
    """The Markdown lines of one table."""
    headers = list(records[0]["cells"])
    rows = [[record["cells"].get(header, "") for header in headers] for record in records]
    alignment = records[0].get("alignment")
    if alignment is None:
        return ["| " + " | ".join(headers) + " |", "|---" * len(headers) + "|", *("| " + " | ".join(row) + " |" for row in rows)]
    return _padded(headers, rows, alignment)


def _padded(headers, rows, alignment):
    """Columns padded to their widest cell, as tabulate's "pipe" format (pandas' `to_markdown`) pads them."""
    if len(alignment) != len(headers):
        raise ValueError(f"alignment must name one side per column ({len(headers)}), received {alignment!r}.")
    # tabulate keeps two spaces of room beside every header.
    widths = [max([len(header) + 2, *(len(row[index]) for row in rows)]) for index, header in enumerate(headers)]

    def line(cells):
        justified = [
            cell.ljust(width) if side == "left" else cell.rjust(width)
            for cell, width, side in zip(cells, widths, alignment)
        ]
        return "| " + " | ".join(justified) + " |"

    separator = [
        ":" + "-" * (width + 1) if side == "left" else "-" * (width + 1) + ":"
        for width, side in zip(widths, alignment)
    ]
    return [line(headers), "|" + "|".join(separator) + "|", *(line(row) for row in rows)]


def render(text, tables):
    """`text` with every marked table replaced by its rendering; (new text, problems)."""
    output, problems, open_table, seen = [], [], None, set()
    for number, line in enumerate(text.splitlines(keepends=True), start=1):
        marker = MARKER.match(line.rstrip("\n"))
        if marker is None:
            if open_table is None:
                output.append(line)
            continue
        table, end = marker["table"], marker["end"] == "end"
        if end != (open_table is not None) or (end and table != open_table):
            problems.append(f"line {number}: unexpected marker for {table!r}")
            continue
        output.append(line)
        if end:
            open_table = None
            continue
        open_table = table
        if table in seen:
            problems.append(f"line {number}: table {table!r} is marked twice")
        seen.add(table)
        if table not in tables:
            problems.append(f"line {number}: no records for table {table!r}")
            continue
        output.extend(row + "\n" for row in render_table(tables[table]))
    if open_table is not None:
        problems.append(f"table {open_table!r} has no end marker")
    problems += [f"table {table!r} has records but no markers" for table in sorted(set(tables) - seen)]
    return "".join(output), problems


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--check", action="store_true", help="exit 1 if the file differs from its records")
    action.add_argument("--write", action="store_true", help="rewrite the marked tables")
    parser.add_argument("--benchmarks", type=pathlib.Path, default=REPOSITORY / "BENCHMARKS.md")
    parser.add_argument("--record-dir", type=pathlib.Path, default=REPOSITORY / "bench" / "records")
    arguments = parser.parse_args(argv)
    text = arguments.benchmarks.read_text()
    rendered, problems = render(text, load_records(arguments.record_dir))
    for problem in problems:
        print(f"{arguments.benchmarks.name}: {problem}", file=sys.stderr)
    if problems:
        return 1
    if arguments.write:
        arguments.benchmarks.write_text(rendered)
        return 0
    if rendered != text:
        print(
            f"{arguments.benchmarks.name} differs from what bench/records renders; run bench/render.py --write",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
