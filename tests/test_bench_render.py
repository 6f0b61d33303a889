"""BENCHMARKS.md's tables are what bench/records renders (bench/render.py), and the renderer's layouts."""

import importlib.util
import json
import pathlib
import subprocess
import sys

REPOSITORY = pathlib.Path(__file__).resolve().parent.parent
RENDER = REPOSITORY / "bench" / "render.py"


def load_render():
    """bench/render.py as a module: bench/ is scripts, not a package."""
    spec = importlib.util.spec_from_file_location("bench_render", RENDER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_benchmarks_match_their_records():
    completed = subprocess.run([sys.executable, str(RENDER), "--check"], capture_output=True, text=True)
    assert completed.returncode == 0, completed.stderr


def test_check_fails_on_a_hand_edited_cell(tmp_path):
    record_dir = tmp_path / "records"
    (record_dir / "demo").mkdir(parents=True)
    for row, seconds in enumerate(["1.5", "2.0"], start=1):
        record = {"table": "demo", "run": "2026-12-02T00:00:00Z", "row": row, "cells": {"way": f"w{row}", "s": seconds}}
        (record_dir / "demo" / f"demo-{row}.json").write_text(json.dumps(record))
    benchmarks = tmp_path / "BENCHMARKS.md"
    benchmarks.write_text("Prose.\n<!-- bench/render.py: demo begin -->\n<!-- bench/render.py: demo end -->\nMore.\n")
    render = load_render()
    arguments = ["--benchmarks", str(benchmarks), "--record-dir", str(record_dir)]
    assert render.main(["--check", *arguments]) == 1
    assert render.main(["--write", *arguments]) == 0
    assert "| way | s |\n|---|---|\n| w1 | 1.5 |\n| w2 | 2.0 |\n" in benchmarks.read_text()
    assert render.main(["--check", *arguments]) == 0
    benchmarks.write_text(benchmarks.read_text().replace("2.0", "1.9"))
    assert render.main(["--check", *arguments]) == 1


def test_check_reports_records_without_markers(tmp_path):
    render = load_render()
    records = {"orphan": [{"run": "", "row": 1, "cells": {"a": "1"}}]}
    _, problems = render.render("No tables.\n", records)
    assert problems == ["table 'orphan' has records but no markers"]


def test_padded_layout_matches_pandas_to_markdown():
    render = load_render()
    records = [
        {"cells": {"stage": "defences", "seconds": "1786"}, "alignment": ["left", "right"]},
        {"cells": {"stage": "vanilla", "seconds": "12027"}, "alignment": ["left", "right"]},
    ]
    assert render.render_table(records) == [
        "| stage    |   seconds |",
        "|:---------|----------:|",
        "| defences |      1786 |",
        "| vanilla  |     12027 |",
    ]
