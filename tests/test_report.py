"""The report page: every figure, table and notebook of a run, and where they came from."""

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib import pyplot

from rzs import report

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / ".ci"))

import check_report  # noqa: E402

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def _run(tmp_path):
    """A run folder as `rzs.reproduce` leaves it: run.json, executed notebooks, figures, tables."""
    output = tmp_path / "outputs" / "smoke"
    output.mkdir(parents=True)
    figures, tables = tmp_path / "figures" / "smoke", tmp_path / "tables" / "smoke"
    figures.mkdir(parents=True)
    tables.mkdir(parents=True)
    for name in ("zero-shot-lenet", "attack-accuracy", "dbm-vs-attacks"):
        pyplot.imsave(figures / f"{name}.png", np.zeros((4, 4)))
    (figures / "attack-accuracy.pdf").write_bytes(b"%PDF-1.4\n")
    pd.DataFrame({"network": ["lenet"], "test_accuracy": [0.81234]}).to_csv(tables / "full-model-accuracy.csv", index=False)
    pd.DataFrame({"claim": ["DBM tracks attacks"], "finding": ["r = 0.5 [0.1, 0.8]"], "verdict": ["supported"]}).to_csv(
        tables / "claims.csv", index=False
    )
    for stem in ("01-train-raw-zero-shot", "06-summary"):
        (output / f"{stem}.html").write_text("<html><body><p>executed</p></body></html>")
        (output / f"{stem}.ipynb").write_text(json.dumps({"cells": []}))
    run = {
        "profile": "smoke",
        "parameters": {
            "profile": "smoke", "networks": ["lenet"], "seeds": [1], "attacks": ["pixel"], "thresholds": [1, 10],
            "figures_dir": str(tmp_path / "figures"), "tables_dir": str(tmp_path / "tables"),
        },
        "overridden": {"seeds": [1]},
        "note": None,
        "notebooks": ["01-train-raw-zero-shot", "06-summary"],
        "commit": COMMIT,
        "dirty": True,
        "versions": {"python": "3.11.7", "keras": "3.15.1"},
        "machine": {"platform": "Linux", "processor": "x86_64", "cpu_count": 2, "devices": ["CPU"], "cores_used": 2},
        "started": "2026-12-01T10:00:00+00:00",
        "plan": [{"notebook": "01-train-raw-zero-shot", "needed": 22, "cached": 11, "missing": 11, "computed": 11}],
        "notebook_seconds": {"01-train-raw-zero-shot": 75.0, "06-summary": 4.0},
        "total_seconds": 79.0,
    }
    (output / "run.json").write_text(json.dumps(run))
    return output


def test_every_image_and_link_on_the_page_resolves_and_provenance_names_the_run(tmp_path, capsys):
    output = _run(tmp_path)
    report.main(["--output", str(output)])
    page_path = output / report.PAGE
    assert capsys.readouterr().out.strip() == str(page_path)

    problems, pages = check_report.check(output)
    assert problems == [] and len(pages) == 3  # the page and the two notebooks
    page = check_report.Page()
    page.feed(page_path.read_text())
    assert len(page.images) == 3
    assert {"01-train-raw-zero-shot.html", "06-summary.ipynb", "../../figures/smoke/attack-accuracy.pdf"} <= set(page.links)
    text = " ".join("".join(page.text).split())
    assert COMMIT in text and "with uncommitted changes" in text
    assert "seeds = [1]" in text and "keras 3.15.1" in text
    assert "01-train-raw-zero-shot: 1 min 15 s" in text and "22 needed, 11 cached before the run, 11 computed" in text
    # Every table is an HTML table; the claims table comes first.
    html = page_path.read_text()
    assert html.index("DBM tracks attacks") < html.index("full-model-accuracy")
    assert "<td>0.8123</td>" in html


def test_a_missing_figure_is_reported(tmp_path):
    output = _run(tmp_path)
    report.write_report(output)
    pyplot.imsave(tmp_path / "figures" / "smoke" / "late.png", np.zeros((4, 4)))
    problems, _ = check_report.check(output)
    assert len(problems) == 1 and "late.png is not on the page" in problems[0]


def test_raw_markdown_tables_and_stderr_blocks_are_reported(tmp_path):
    output = _run(tmp_path)
    report.write_report(output)
    (output / "06-summary.html").write_text(
        "<html><body><p>| claim | verdict | |:--|:--| | a | b |</p>"
        '<div class="jp-InputArea"><pre>print("|---|---|")</pre></div>'
        '<div data-mime-type="application/vnd.jupyter.stderr"><pre>oneDNN</pre></div></body></html>'
    )
    problems, _ = check_report.check(output)
    assert len(problems) == 2
    assert "Markdown table left as text" in problems[0] and "1 stderr blocks" in problems[1]


def test_captions_come_from_the_run(tmp_path):
    parameters = {"networks": ["lenet", "vit"], "attacks": ["pixel", "threshold"], "thresholds": [1, 10], "attack_images": 30}
    assert report.caption("zero-shot-vit", parameters).startswith("vit:")
    assert "pixel and threshold attacks (th: 1, 10) on the first 30 test images" in report.caption("attack-accuracy", parameters)
    per_attack = {**parameters, "thresholds": {"pixel": [3], "threshold": [10]}}
    assert "(th: pixel 3; threshold 10)" in report.caption("attack-accuracy", per_attack)
    assert "2 networks" in report.caption("zero-shot-class-3", parameters)
    assert report.caption("something-new", parameters) == "Something new."


def test_readme_tables_come_from_run_records(tmp_path):
    _run(tmp_path)
    tables = report.readme_tables(tmp_path / "outputs")
    assert "| `smoke -p seeds [1]`" in tables and "2026-12-01" in tables and "0123456 (dirty)" in tables
    assert "01 1 min 15 s / 06 4 s" in tables and "| lenet" in tables and "0.812" in tables
    assert "No run records" in report.readme_tables(tmp_path / "nothing")


def test_readme_accuracy_has_its_interval_and_n_from_the_hygiene_table(tmp_path):
    _run(tmp_path)
    pd.DataFrame({
        "network": ["lenet", "lenet"], "seed": [0, 0], "defence": ["vanilla", "vanilla"],
        "model": ["full", "without 0"], "images": [500, 450], "accuracy_seen": [0.8, 0.9],
        "accuracy_ci_low": [0.763, 0.87], "accuracy_ci_high": [0.833, 0.92],
    }).to_csv(tmp_path / "tables" / "smoke" / "hygiene.csv", index=False)
    tables = report.readme_tables(tmp_path / "outputs")
    row = next(line for line in tables.splitlines() if line.startswith("| lenet"))
    assert "500" in row and "0.800 [0.763, 0.833]" in row
    assert "450" not in tables  # leave-one-out models are not full models


def test_run_labels_leave_out_overridden_folders():
    run = {"profile": "quick", "overridden": {"seeds": [0, 1], "tables_dir": "/elsewhere/tables"}}
    assert report.run_label(run) == "quick -p seeds [0, 1]"


def test_readme_has_seed_reliability_only_with_two_seeds(tmp_path):
    _run(tmp_path)
    columns = {"networks": [9], "icc": [0.93], "kendall_w": [0.97], "mean_spearman": [0.93]}
    tables = tmp_path / "tables" / "smoke"
    pd.DataFrame({"quantity": ["AM"], "seeds": [1], **columns}).to_csv(tables / "reliability-metrics.csv", index=False)
    assert "Seed reliability" not in report.readme_tables(tmp_path / "outputs")
    pd.DataFrame({"quantity": ["AM"], "seeds": [2], **columns}).to_csv(tables / "reliability-metrics.csv", index=False)
    pd.DataFrame({"quantity": ["AM", "pixel th=3"], "seeds": [2, 2], **{name: value * 2 for name, value in columns.items()}}).to_csv(
        tables / "reliability-outcomes.csv", index=False
    )
    text = report.readme_tables(tmp_path / "outputs")
    section = text[text.index("Seed reliability"):]
    assert "| AM " in section and "| pixel th=3 " in section and "0.93" in section
    assert section.count("| AM ") == 1  # notebook 04's table holds notebook 02's rows


def test_readme_tables_are_written_between_the_markers(tmp_path):
    _run(tmp_path)
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{report.README_BEGIN}\nold numbers\n{report.README_END}\nrest\n")
    report.write_readme_tables(readme, tmp_path / "outputs")
    text = readme.read_text()
    assert "old numbers" not in text and "| `smoke -p seeds [1]`" in text
    assert text.startswith("intro\n") and text.endswith(f"{report.README_END}\nrest\n")
    readme.write_text("no markers")
    with pytest.raises(ValueError, match="must hold the lines"):
        report.write_readme_tables(readme, tmp_path / "outputs")


def _primary_and_defence_tables(tables, verdict, null_p):
    pd.DataFrame({
        "metric": ["DBM", "AM"], "attack": ["pixel", "pixel"], "n": [12, 12], "value": [0.5, 0.2],
        "ci_low": [0.1, -0.3], "ci_high": [0.8, 0.6], "p": [0.01, 0.3], "p_adjusted": [0.02, 0.3],
        "verdict": [verdict, "inconclusive"],
    }).to_csv(tables / "primary-tests.csv", index=False)
    pd.DataFrame({
        "defence": ["label_smoothing", "null_control"], "quantity": ["DBM", "DBM"], "n": [2, 2],
        "value": [-0.1, 0.01], "ci_low": [-0.2, -0.05], "ci_high": [0.0, 0.06], "p": [0.5, null_p],
        "p_adjusted": [0.5, null_p], "significant": [False, False], "null_control": [False, True],
    }).to_csv(tables / "defence-tests.csv", index=False)


def test_readme_sets_runs_of_one_profile_side_by_side_with_their_null_controls(tmp_path):
    first, second = tmp_path / "seed0", tmp_path / "seed1"
    _run(first), _run(second)
    _primary_and_defence_tables(first / "tables" / "smoke", "supported", 0.75)
    _primary_and_defence_tables(second / "tables" / "smoke", "inconclusive", 0.5)
    record = json.loads((first / "outputs" / "smoke" / "run.json").read_text())
    record["overridden"], record["started"] = {}, "2026-11-30T10:00:00+00:00"
    (first / "outputs" / "smoke" / "run.json").write_text(json.dumps(record))
    tables = report.readme_tables([first / "outputs", second / "outputs"])
    assert tables.index("| `smoke` ") < tables.index("| `smoke -p seeds [1]` ")  # oldest first
    side_by_side = tables[tables.index("side by side"):]
    dbm = next(line for line in side_by_side.splitlines() if line.startswith("| DBM"))
    assert "+0.50 [+0.10, +0.80]" in dbm and "supported" in dbm and dbm.rstrip(" |").endswith("no")
    am = next(line for line in side_by_side.splitlines() if line.startswith("| AM"))
    assert am.rstrip(" |").endswith("yes")
    null_rows = [line for line in tables.splitlines() if "+0.01 [-0.05, +0.06]" in line]
    assert len(null_rows) == 2 and all("False" in line for line in null_rows)
