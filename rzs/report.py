"""One page per profile: outputs/<profile>/index.html, and README's measured tables.

    python -m rzs.report --profile smoke          # regenerate outputs/smoke/index.html
    python -m rzs.report --readme                 # README's measured tables (run times, primary tests, accuracy)
    python -m rzs.report --readme --write         # ... written between README's two markers

The page is rendered from the Jinja2 template `rzs/templates/report.html.j2`
out of what a run left: its run record (`run.json`, written by
`rzs.reproduce`), the executed notebooks beside it, and the figures and
tables the notebooks wrote. Figures are linked by relative paths to the files
in figures/<profile>/, never copied, so the page shows exactly those files and
opens from disk as long as the folders keep their places; every table is read
from its CSV.
"""

import argparse
import json
import os
import re
from pathlib import Path

import jinja2
import numpy as np
import pandas as pd

from rzs import runner

ROOT = Path(__file__).resolve().parents[1]
TEMPLATES = Path(__file__).resolve().parent / "templates"
PAGE = "index.html"
RUN_RECORD = "run.json"
CLAIMS_TABLE = "claims"
CLAIMS_COLUMNS = ("claim", "analysis", "verdict", "finding")
# A caption per figure name, filled in from the run's parameters and the name's parts.
CAPTIONS = (
    (
        r"raw-zero-shot-illustration",
        "Raw Zero-Shot on {first_network}: test images of a class its leave-one-out model never saw, "
        "the soft labels that model gives them over the known classes, and the full model's amalgam proportions.",
    ),
    (
        r"zero-shot-class-(?P<part>\d+)",
        "Class {part} as each of the {network_count} networks' leave-one-out models see it: "
        "their soft labels over the classes they know, in two dimensions.",
    ),
    (
        r"zero-shot-(?P<part>.+)",
        "{part}: the soft labels of each leave-one-out model on the class it never saw, one panel per excluded class.",
    ),
    (
        r"amalgam-(?P<part>.+)",
        "{part}: the full model's amalgam proportions beside the Raw Zero-Shot soft labels, per excluded class.",
    ),
    (
        r"metrics-per-network",
        "DBM and AM (q = {metric_q}, {am_distance} distance) of each of the {network_count} networks, over its excluded classes.",
    ),
    (
        r"attack-accuracy",
        "Attack accuracy of the {attacks} attacks (th: {thresholds}) on the first {attack_images} test images, per "
        "network: over correctly classified images (filled, with Wilson intervals) and over all (open, the authors').",
    ),
    (
        r"(?P<part>dbm|am)-vs-attacks",
        "{part_upper} against the robustness outcome (attack accuracy on correctly classified images, mean over th) "
        "of the pixel and threshold attacks, one point per network with intervals on both axes; "
        "Pearson r with its two-level bootstrap interval and the Holm-adjusted p of the primary tests "
        "(table primary-tests, docs/analysis.md).",
    ),
    (
        r"metric-intervals",
        "DBM and AM of each of the {network_count} networks with 95% bootstrap intervals "
        "(test images resampled within each excluded class).",
    ),
    (
        r"predictors-of-robustness",
        "Exploratory: Spearman rho across the {network_count} networks between each predictor and each "
        "robustness outcome, with two-level bootstrap intervals; the dashed line is clean accuracy's rho.",
    ),
    (
        r"defence-comparison",
        "The {defences} defences and the null control (vanilla retrained with the next seed) against vanilla on "
        "{defended}: mean defended - vanilla difference over networks with its interval, one dot per network, "
        "p and Holm-adjusted p of the sign-flip test (table defence-tests).",
    ),
)


def caption(name, parameters):
    """A sentence describing figure `name` of a run with `parameters`."""
    networks = list(parameters.get("networks") or [])
    defended = parameters.get("defence_networks")
    values = {
        **parameters,
        "first_network": networks[0] if networks else "the first network",
        "network_count": len(networks),
        "defended": ", ".join(defended) if defended else ", ".join(networks),
        "defences": ", ".join(parameters.get("defences") or []),
        "attacks": " and ".join(parameters.get("attacks") or []),
        "thresholds": _thresholds_text(parameters.get("thresholds")),
    }
    for pattern, text in CAPTIONS:
        match = re.fullmatch(pattern, name)
        if match:
            part = match.groupdict().get("part", "")
            return text.format_map(_Recorded(values, part=part, part_upper=part.upper()))
    return name.replace("-", " ").capitalize() + "."


def _thresholds_text(thresholds):
    if isinstance(thresholds, dict):
        return "; ".join(f"{attack} {', '.join(map(str, values))}" for attack, values in thresholds.items())
    return ", ".join(str(th) for th in thresholds or [])


class _Recorded(dict):
    # A run record from before a parameter existed lacks it; its caption says so instead of failing.
    def __missing__(self, name):
        return f"({name} not recorded)"


def output_folder(parameters, name, root=ROOT):
    """figures_dir or tables_dir of a run, /<profile>, for the run made in the repository `root`.

    Relative folders are relative to the repository; run records written before that rule held
    them relative to notebooks/ ("../tables"), which names the same folder.
    """
    folder = Path(parameters.get(name, f"{name[:-4]}s"))
    if not folder.is_absolute() and folder.parts[:1] == ("..",):
        folder = Path(*folder.parts[1:])
    return (Path(root) / folder / parameters["profile"]).resolve()


def _link(path, page_directory):
    return Path(os.path.relpath(path, page_directory)).as_posix()


def table_html(frame):
    return frame.to_html(index=False, na_rep="", float_format=lambda value: f"{value:.4g}", border=0)


def write_report(output_directory):
    """Render `output_directory`/index.html from its run record; returns the page's path."""
    output_directory = Path(output_directory).resolve()
    run = json.loads((output_directory / RUN_RECORD).read_text())
    parameters = run["parameters"]
    figures_directory = output_folder(parameters, "figures_dir")
    tables_directory = output_folder(parameters, "tables_dir")
    figures = []
    for png in sorted(figures_directory.glob("*.png")):
        pdf = png.with_suffix(".pdf")
        figures.append(
            {
                "name": png.stem,
                "png": _link(png, output_directory),
                "pdf": _link(pdf, output_directory) if pdf.is_file() else None,
                "caption": caption(png.stem, parameters),
            }
        )
    tables, claims = [], None
    for csv in sorted(tables_directory.glob("*.csv")):
        frame = pd.read_csv(csv)
        if csv.stem == CLAIMS_TABLE:
            # The sentence carries the estimate, interval and p; the full table is in the CSV.
            shown = [column for column in CLAIMS_COLUMNS if column in frame]
            claims = {"html": table_html(frame[shown]), "csv": _link(csv, output_directory)}
            continue
        tables.append(
            {"name": csv.stem, "rows": len(frame), "csv": _link(csv, output_directory), "html": table_html(frame)}
        )
    seconds = run.get("notebook_seconds", {})
    notebooks = [
        {
            "name": stem,
            "html": f"{stem}.html",
            "ipynb": f"{stem}.ipynb",
            "seconds": seconds.get(stem),
            "time": runner.format_seconds(seconds[stem]) if stem in seconds else None,
        }
        # Notebooks executed by earlier runs into the same folder (`--notebooks 02`) are listed too.
        for stem in sorted(path.stem for path in output_directory.glob("[0-9][0-9]-*.html"))
    ]
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True, undefined=jinja2.StrictUndefined
    )
    page = environment.get_template("report.html.j2").render(
        profile=run["profile"],
        run=run,
        claims=claims,
        notebooks=notebooks,
        figures=figures,
        tables=tables,
        figures_directory=figures_directory,
        tables_directory=tables_directory,
        total_time=runner.format_seconds(run.get("total_seconds", 0)),
    )
    path = output_directory / PAGE
    path.write_text(page)
    return path


def run_records(outputs):
    """The run records under `outputs` (one folder per profile), oldest first."""
    records = [json.loads(path.read_text()) for path in Path(outputs).glob(f"*/{RUN_RECORD}")]
    return sorted(records, key=lambda record: record["started"])


def run_label(run):
    """The command-line profile and overrides of a run, e.g. ``quick -p seeds [1]``.

    Overridden folders (results_dir, tables_dir, figures_dir) are left out: they say where a run
    wrote, not what it computed.
    """
    overrides = [
        f"-p {name} {json.dumps(value).replace(chr(34), '')}"
        for name, value in (run.get("overridden") or {}).items()
        if not name.endswith("_dir")
    ]
    return " ".join([run["profile"], *overrides])


def _interval(row):
    return f"{row.value:+.2f} [{row.ci_low:+.2f}, {row.ci_high:+.2f}]" if pd.notna(row.value) else "undefined"


def agreement_table(runs):
    """The primary tests of several runs of one profile side by side, and whether their verdicts agree.

    runs: [(label, primary-tests frame)], two or more. One row per metric and attack: each run's
    r [95% interval], Holm-adjusted p and verdict, then "agree" (yes / no).
    """
    merged = None
    for label, frame in runs:
        columns = frame.assign(**{
            f"r [95% interval], {label}": [_interval(row) for row in frame.itertuples()],
            f"p_adjusted, {label}": frame["p_adjusted"].map(lambda p: f"{p:.3g}"),
            f"verdict, {label}": frame["verdict"],
        }).drop(columns=[column for column in frame.columns if column not in ("metric", "attack")])
        merged = columns if merged is None else merged.merge(columns, on=["metric", "attack"], how="outer")
    verdicts = merged[[f"verdict, {label}" for label, _ in runs]]
    return merged.assign(agree=np.where(verdicts.nunique(axis=1, dropna=False) == 1, "yes", "no"))


def null_control_rows(tests, label):
    """The null control's rows of a run's defence tests, for README: it must not be significant."""
    rows = tests[tests["null_control"].astype(bool)]
    return pd.DataFrame({
        "run": label, "quantity": rows["quantity"], "n": rows["n"],
        "difference [95% interval]": [_interval(row) for row in rows.itertuples()],
        "p_adjusted": rows["p_adjusted"].map(lambda p: f"{p:.3g}"), "significant": rows["significant"],
    })


def full_model_accuracy(tables_directory):
    """Each full model's test accuracy as Markdown, or None when the run wrote neither table.

    From the hygiene table where there is one: the float32 accuracy on the `images` test images
    with its 95% Wilson interval. Otherwise (runs before it existed) the accuracy the training
    recorded, without an interval.
    """
    hygiene = tables_directory / "hygiene.csv"
    if hygiene.is_file():
        frame = pd.read_csv(hygiene)
        frame = frame[frame["model"] == "full"]
        frame = frame.assign(**{
            "accuracy [95% interval]": [
                f"{row.accuracy_seen:.3f} [{row.accuracy_ci_low:.3f}, {row.accuracy_ci_high:.3f}]"
                for row in frame.itertuples()
            ],
        })
        columns = ["network", "defence", "seed", "images", "accuracy [95% interval]"]
        if frame["seed"].nunique() == 1:
            columns.remove("seed")
        return frame[columns].to_markdown(index=False)
    accuracy = tables_directory / "full-model-accuracy.csv"
    if accuracy.is_file():
        frame = pd.read_csv(accuracy)
        columns = [column for column in ("network", "defence", "test_accuracy") if column in frame]
        return frame[columns].to_markdown(index=False, floatfmt=".3f")
    return None


def seed_reliability(tables_directory):
    """The run's seed reliability as Markdown, or None without a table or with fewer than two seeds.

    Notebook 04's table (every metric, test accuracy and every attack outcome) holds notebook
    02's (the metrics and test accuracy), so the latter is read only for runs without the former.
    """
    paths = [tables_directory / "reliability-outcomes.csv", tables_directory / "reliability-metrics.csv"]
    path = next((path for path in paths if path.is_file()), None)
    if path is None:
        return None
    frame = pd.read_csv(path)
    frame = frame[frame["seeds"] >= 2]
    if frame.empty:
        return None
    columns = ["quantity", "networks", "seeds", "icc", "kendall_w", "mean_spearman"]
    return frame[columns].to_markdown(index=False, floatfmt=".2f")


def readme_tables(outputs):
    """README's measured tables, in Markdown, from the run records under `outputs`.

    outputs: one outputs/ folder, or a list of them (each in the checkout that made its runs,
    whose tables/ is read). Writes the run times, each run's primary tests, full models'
    accuracy and, with two or more seeds, seed reliability, and, where two or more runs share a profile, their primary tests side by side and
    the null control of every run's defence tests (docs/analysis.md).
    """
    folders = [Path(outputs)] if isinstance(outputs, (str, Path)) else [Path(folder) for folder in outputs]
    runs = sorted(
        ((run, folder.resolve().parent) for folder in folders for run in run_records(folder)),
        key=lambda pair: pair[0]["started"],
    )
    time_rows, sections, primaries, null_controls = [], [], {}, []
    for run, root in runs:
        machine, label = run["machine"], run_label(run)
        time_rows.append(
            {
                "run": f"`{label}`",
                "machine": f"{machine['processor']}, {machine['cores_used']} cores, devices {', '.join(machine['devices'])}",
                "date": run["started"][:10],
                "commit": (run["commit"] or "unknown")[:7] + (" (dirty)" if run["dirty"] else ""),
                "notebooks": " / ".join(
                    f"{stem[:2]} {runner.format_seconds(seconds)}" for stem, seconds in run["notebook_seconds"].items()
                ),
                "all notebooks": runner.format_seconds(run["total_seconds"]),
                "computed / cached": (
                    f"{sum(stage.get('computed', 0) for stage in run['plan'])} / "
                    f"{sum(stage['cached'] for stage in run['plan'])}"
                ),
            }
        )
        tables_directory = output_folder(run["parameters"], "tables_dir", root)
        primary = tables_directory / "primary-tests.csv"
        if primary.is_file():
            frame = pd.read_csv(primary)
            primaries.setdefault(run["profile"], []).append((label, frame))
            frame = frame.assign(**{"r [95% interval]": [_interval(row) for row in frame.itertuples()]})
            columns = ["metric", "attack", "n", "r [95% interval]", "p", "p_adjusted", "verdict"]
            sections.append(
                f"Primary tests (docs/analysis.md), `{label}` run of {run['started'][:10]}:\n\n"
                + frame[columns].to_markdown(index=False, floatfmt=".3g")
            )
        defence_tests = tables_directory / "defence-tests.csv"
        if defence_tests.is_file():
            null_controls.append(null_control_rows(pd.read_csv(defence_tests), f"`{label}`"))
        accuracy = full_model_accuracy(tables_directory)
        if accuracy is not None:
            sections.append(f"Full models' test accuracy, `{label}` run of {run['started'][:10]}:\n\n" + accuracy)
        reliability = seed_reliability(tables_directory)
        if reliability is not None:
            sections.append(
                f"Seed reliability, `{label}` run of {run['started'][:10]} (is the spread between networks "
                "more than retraining's? ICC near 1 and Kendall's W near 1 say yes):\n\n" + reliability
            )
    if not time_rows:
        return f"No run records under {', '.join(str(folder) for folder in folders)}: run `make reproduce` first."
    for profile, tests in primaries.items():
        if len(tests) > 1:
            sections.append(
                f"The `{profile}` runs' primary tests side by side (do their verdicts agree?):\n\n"
                + agreement_table(tests).to_markdown(index=False)
            )
    if null_controls:
        sections.append(
            "The null control (vanilla retrained with the next seed, through the defence tests; it must "
            "not be significant):\n\n" + pd.concat(null_controls, ignore_index=True).to_markdown(index=False)
        )
    return "\n\n".join([pd.DataFrame(time_rows).to_markdown(index=False), *sections]) + "\n"


README_BEGIN = "<!-- rzs.report --readme: begin -->"
README_END = "<!-- rzs.report --readme: end -->"


def write_readme_tables(readme, outputs):
    """Replace the text between README's two markers with `readme_tables(outputs)`."""
    text = Path(readme).read_text()
    if README_BEGIN not in text or README_END not in text:
        raise ValueError(f"{readme} must hold the lines {README_BEGIN!r} and {README_END!r}.")
    head, rest = text.split(README_BEGIN, 1)
    _, tail = rest.split(README_END, 1)
    Path(readme).write_text(f"{head}{README_BEGIN}\n{readme_tables(outputs)}{README_END}{tail}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", help="regenerate outputs/<profile>/index.html")
    parser.add_argument("--output", type=Path, help="the run's output folder; default outputs/<profile>")
    parser.add_argument("--readme", action="store_true", help="print README's tables from the run records")
    parser.add_argument("--outputs", type=Path, nargs="+", default=[ROOT / "outputs"],
                        help="where --readme looks for runs: one or more outputs/ folders")
    parser.add_argument("--write", action="store_true", help="with --readme: write the tables into README.md")
    arguments = parser.parse_args(argv)
    if arguments.readme and arguments.write:
        write_readme_tables(ROOT / "README.md", arguments.outputs)
        return
    if arguments.readme:
        print(readme_tables(arguments.outputs), end="")
        return
    if not arguments.profile and not arguments.output:
        parser.error("give --profile, --output or --readme")
    output = arguments.output or ROOT / "outputs" / arguments.profile
    if not (output / RUN_RECORD).is_file():
        parser.exit(2, f"rzs.report: no {RUN_RECORD} in {output}; run `make reproduce` first.\n")
    print(write_report(output))


if __name__ == "__main__":
    main()
