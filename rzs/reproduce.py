"""Run every notebook of a profile with papermill: `python -m rzs.reproduce`.

    python -m rzs.reproduce --profile quick -p networks "[lenet, resnet]"
    python -m rzs.reproduce --profile quick --dry-run

Parameters come from notebooks/profiles/<profile>.yaml; `-p NAME VALUE`
overrides one (VALUE is read as YAML, so lists and numbers work). Everything is
validated before the first notebook starts, against the notebooks being run:
a parameter that only other notebooks read is not held against the run. When
`networks` is overridden and the profile names its `defence_networks`, the
defences go on those of them that are among the chosen networks, or, if none
is, the defences are left out; the run says which.

Before the first notebook the run prints its plan: per computing notebook,
how many results it needs, how many are cached in the run store and roughly
how long the rest takes, from the timings of the results the store holds.
`--dry-run` prints only that. While a notebook runs, its grids' progress lines
(`rzs.runner.GridProgress`) are printed on the console, and one line when the
notebook ends. TensorFlow's C++ start-up lines are kept off the console and
out of the notebooks (`rzs.runner.import_tensorflow_quietly`, imported by the
kernel's IPython start-up file before any cell runs).

Executed notebooks and an HTML rendering of each go to outputs/<profile>/,
with `run.json` (profile, parameters, commit, library versions, machine,
per-notebook times, cached and computed counts) and the report page
`index.html` (`rzs.report`). The first failing notebook stops the run, and
everything computed so far stays in the run store.
"""

import argparse
import ast
import contextlib
import dataclasses
import datetime
import fnmatch
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import yaml

from rzs import runner

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
PROFILES = NOTEBOOKS / "profiles"
RUN_RECORD = "run.json"
PROGRESS_FILE = "progress.log"
DEFENCE_NOTEBOOK = "05"
# Parameters that no notebook before the given one reads: a run that stops
# earlier (`--notebooks 01 02`) neither validates them nor passes them on, so
# that, say, defence networks left out of `-p networks` cannot stop it.
FIRST_READER = {
    "attacks": "03",
    "thresholds": "03",
    "attack_*": "03",
    "defences": DEFENCE_NOTEBOOK,
    "defence_networks": DEFENCE_NOTEBOOK,
    "null_control": DEFENCE_NOTEBOOK,
}
# The IPython start-up file of every kernel this module starts: TensorFlow is
# imported before the first cell, its C++ start-up lines sent to /dev/null.
KERNEL_STARTUP = """\
try:
    from rzs.runner import import_tensorflow_quietly
    import_tensorflow_quietly()
except ModuleNotFoundError:
    pass
"""


def available_profiles():
    return sorted(path.stem for path in PROFILES.glob("*.yaml"))


def load_profile(name):
    path = PROFILES / f"{name}.yaml"
    if not path.is_file():
        raise ValueError(f"Unknown profile {name!r}. Available: {available_profiles()}.")
    parameters = yaml.safe_load(path.read_text()) or {}
    parameters["profile"] = name
    return parameters


def notebooks(selected=None):
    """The numbered notebooks in order; only the numbers in `selected` if given."""
    paths = sorted(NOTEBOOKS.glob("[0-9][0-9]-*.ipynb"))
    return [path for path in paths if not selected or path.name[:2] in selected]


def declared_parameters(path):
    """The parameters of a notebook's `parameters` cell, name -> default value.

    A default that is not a Python literal maps to None.
    """
    import papermill

    declared = {}
    for name, spec in papermill.inspect_notebook(path).items():
        try:
            declared[name] = ast.literal_eval(spec["default"])
        except (ValueError, SyntaxError):
            declared[name] = None
    return declared


def follow_networks(parameters, profile, overridden):
    """Make the profile's defence networks follow an override of `networks`.

    Returns the adjusted parameters and a sentence saying what was chosen, or
    None when nothing changed. The defences go on the profile's defence
    networks that are among the chosen networks; if none is, the run has no
    defences.
    """
    profile_choice = profile.get("defence_networks")
    if "networks" not in overridden or "defence_networks" in overridden or profile_choice is None:
        return parameters, None
    networks = list(parameters["networks"])
    kept = [name for name in profile_choice if name in networks]
    adjusted = dict(parameters, defence_networks=kept)
    if kept:
        return adjusted, (
            f"defence_networks: {kept}, the profile's {profile_choice} that are among networks {networks}."
        )
    # No defended network, so no defences; None keeps defence_networks valid ("every network").
    adjusted.update(defences=[], defence_networks=None)
    return adjusted, (
        f"no defences: none of the profile's defence_networks {profile_choice} is among networks {networks}."
    )


def validate(parameters, paths=None):
    """The validated `Study` of the parameters the notebooks in `paths` read (default all).

    Raises ValueError naming any unknown parameter, or any invalid value of a
    parameter those notebooks read, before compute.
    """
    from rzs.study import Study

    known = {field.name for field in dataclasses.fields(Study)}
    unknown = sorted(set(parameters) - known)
    if unknown:
        raise ValueError(f"Unknown parameters {unknown}. Known parameters: {sorted(known)}.")
    paths = notebooks() if paths is None else paths
    read = {name for path in paths for name in declared_parameters(path) if reads(path, name)}
    return Study.from_parameters(**{name: value for name, value in parameters.items() if name in read | {"profile"}})


def reads(path, name):
    """Whether the notebook at `path` may read parameter `name` (see `FIRST_READER`)."""
    first = [number for pattern, number in FIRST_READER.items() if fnmatch.fnmatchcase(name, pattern)]
    return not first or path.name[:2] >= first[0]


# The notebooks that compute results, and the `Study.planned_specs` methods whose results each needs.
STAGES = {"01": ("train",), "03": ("attack",), DEFENCE_NOTEBOOK: ("train_defences", "attack_defences")}


def results_store(study):
    """The study's run store; a relative results_dir is relative to the repository (`rzs.options.project_path`)."""
    return study.store


def stored_seconds(store):
    """Compute time of every stored result: (kind, network) -> list of seconds."""
    seconds = {}
    for record in store.records():
        timings = record.get("timings", {})
        spent = sum(timings.get(name, 0.0) for name in ("train_seconds", "predict_seconds", "attack_seconds"))
        seconds.setdefault((record.get("kind"), _network(record.get("config", {}))), []).append(spent)
    return seconds


def _network(config):
    # Models name their network; attacks and predictions name it in the config of their model.
    return config.get("network") or config.get("model", {}).get("network")


def plan(study, paths):
    """Per computing notebook in `paths`: results needed, cached, and an estimate of the time left.

    The estimate of a missing result is the median compute time of the stored
    results of its kind and network, else of its kind; the stage's estimate
    is their sum shared by `study.workers` workers, leaving out worker
    start-up. Returns a list of dicts (notebook, needed, cached, missing,
    estimated_seconds, unestimated).
    """
    store = results_store(study)
    seconds = stored_seconds(store)
    by_kind = {}
    for (kind, _), values in seconds.items():
        by_kind.setdefault(kind, []).extend(values)
    planned = study.planned_specs()
    stages = []
    for path in paths:
        if path.name[:2] not in STAGES:
            continue
        specs = [spec for method in STAGES[path.name[:2]] for spec in planned[method]]
        missing = [spec for spec in specs if not store.has(spec.kind, spec.config())]
        estimated, unestimated = 0.0, 0
        for spec in missing:
            values = seconds.get((spec.kind, _network(spec.config()))) or by_kind.get(spec.kind)
            if values:
                estimated += statistics.median(values)
            else:
                unestimated += 1
        stages.append(
            {
                "notebook": path.stem,
                "needed": len(specs),
                "cached": len(specs) - len(missing),
                "missing": len(missing),
                "estimated_seconds": estimated / study.workers,
                "unestimated": unestimated,
            }
        )
    return stages


def format_plan(stages, store_root):
    lines = [f"Plan (run store {store_root}):"]
    for stage in stages:
        line = (
            f"  {stage['notebook']}: {stage['needed']} results, {stage['cached']} cached, "
            f"{stage['missing']} to compute"
        )
        if stage["missing"] == 0:
            pass
        elif stage["unestimated"] == stage["missing"]:
            line += ", time left unknown: the run store has no timings of such results yet"
        else:
            line += f", about {runner.format_seconds(stage['estimated_seconds'])}"
            if stage["unestimated"]:
                line += f" plus {stage['unestimated']} results with no stored timings to go on"
        lines.append(line)
    if not stages:
        lines.append("  the notebooks chosen compute nothing; they read the run store.")
    return "\n".join(lines)


class ProgressTail(threading.Thread):
    """Prints the lines appended to a progress file, as they come, until stopped."""

    def __init__(self, path, stream=None, interval=0.2):
        super().__init__(daemon=True)
        self.path, self.stream, self.interval = Path(path), stream or sys.stdout, interval
        self.stopping = threading.Event()

    def run(self):
        self.path.touch()
        with open(self.path) as progress:
            while True:
                line = progress.readline()
                if line:
                    print(f"    {line.rstrip()}", file=self.stream, flush=True)
                elif self.stopping.is_set():
                    return
                else:
                    time.sleep(self.interval)

    def stop(self):
        self.stopping.set()
        self.join()


@contextlib.contextmanager
def quiet_kernels():
    """Kernels started meanwhile import TensorFlow quietly, before their first cell runs."""
    with tempfile.TemporaryDirectory(prefix="rzs-ipython-") as directory:
        startup = Path(directory) / "profile_default" / "startup"
        startup.mkdir(parents=True)
        (startup / "00-quiet-tensorflow.py").write_text(KERNEL_STARTUP)
        saved = os.environ.get("IPYTHONDIR")
        os.environ["IPYTHONDIR"] = directory
        try:
            yield
        finally:
            if saved is None:
                os.environ.pop("IPYTHONDIR", None)
            else:
                os.environ["IPYTHONDIR"] = saved


def html_exporter():
    """nbconvert's HTML exporter with each notebook's own parameters cell folded away.

    The cell papermill injects, which states what the profile changed, stays.
    """
    import nbconvert
    from traitlets.config import Config

    config = Config()
    config.TagRemovePreprocessor.enabled = True
    config.TagRemovePreprocessor.remove_input_tags = {"parameters"}
    return nbconvert.HTMLExporter(config=config)


def execute(parameters, output_directory, selected=None, stream=None):
    """Execute the notebooks in order; returns {notebook stem: seconds}."""
    import nbformat
    import papermill

    stream = stream or sys.stdout
    output_directory.mkdir(parents=True, exist_ok=True)
    chosen = notebooks(selected)
    progress_path = output_directory / PROGRESS_FILE
    progress_path.write_text("")
    times = {}
    with quiet_kernels():
        os.environ[runner.PROGRESS_FILE_VARIABLE] = str(progress_path)
        try:
            for number, path in enumerate(chosen, 1):
                label = f"[{number}/{len(chosen)}] {path.name}"
                if path.name[:2] == DEFENCE_NOTEBOOK and not parameters.get("defences"):
                    print(f"{label} skipped: no defences", file=stream, flush=True)
                    continue
                # Only what differs from the notebook's own defaults goes into papermill's injected cell.
                declared = declared_parameters(path)
                changed = {
                    name: value
                    for name, value in parameters.items()
                    if name in declared and declared[name] != value and reads(path, name)
                }
                notebook = nbformat.read(path, as_version=4)
                for cell in notebook.cells:
                    if "parameters" in cell.metadata.get("tags", []):
                        cell.metadata.setdefault("jupyter", {})["source_hidden"] = True
                output = output_directory / path.name
                print(f"{label} ...", file=stream, flush=True)
                start = time.perf_counter()
                tail = ProgressTail(progress_path, stream)
                tail.start()
                try:
                    papermill.execute_notebook(
                        notebook,
                        output,
                        parameters=changed,
                        kernel_name="python3",
                        cwd=NOTEBOOKS,
                        progress_bar=False,
                        extra_arguments=["--IPKernelApp.log_level=ERROR"],
                    )
                except papermill.PapermillExecutionError as error:
                    tail.stop()
                    print(
                        f"FAILED {path.name} after {runner.format_seconds(time.perf_counter() - start)}: "
                        f"{error.ename}: {error.evalue}\nThe executed notebook is {output}; results "
                        "computed so far are kept in the run store.",
                        file=sys.stderr,
                    )
                    raise SystemExit(1) from None
                finally:
                    tail.stop()
                html, _ = html_exporter().from_notebook_node(nbformat.read(output, as_version=4))
                output.with_suffix(".html").write_text(html)
                times[path.stem] = time.perf_counter() - start
                print(f"{label} done in {runner.format_seconds(times[path.stem])}", file=stream, flush=True)
        finally:
            os.environ.pop(runner.PROGRESS_FILE_VARIABLE, None)
    return times


def git_state():
    """The commit of the working tree and whether it has uncommitted changes (None outside git)."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=ROOT, capture_output=True, text=True, check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return {"commit": None, "dirty": None}
    return {"commit": commit, "dirty": bool(status.strip())}


def library_versions():
    from importlib import metadata

    from rzs import reproducibility

    facts = reproducibility.environment()
    versions = dict(facts["versions"])
    for package in ("rzs", "pandas", "scipy", "matplotlib", "papermill", "nbconvert"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return versions, dict(facts["machine"], cores_used=runner.available_cores())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="quick", help=f"one of {available_profiles()}")
    parser.add_argument(
        "-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
        help="override one parameter (VALUE is YAML)",
    )
    parser.add_argument("--notebooks", nargs="*", help="run only these numbers, e.g. 01 02")
    parser.add_argument("--output", type=Path, help="default outputs/<profile>")
    parser.add_argument("--dry-run", action="store_true", help="print the plan only; compute nothing")
    arguments = parser.parse_args(argv)
    # Level 3 keeps TensorFlow's C++ warnings after start-up (no CUDA driver, say) off the
    # console and out of the notebooks; the kernels and their workers inherit it.
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    runner.import_tensorflow_quietly()
    chosen = notebooks(arguments.notebooks)
    try:
        profile = load_profile(arguments.profile)
        overridden = {name: yaml.safe_load(value) for name, value in arguments.parameter}
        parameters, note = follow_networks({**profile, **overridden}, profile, overridden)
        study = validate(parameters, chosen)
    except ValueError as error:
        parser.exit(2, f"rzs.reproduce: {error}\n")
    if note and any(reads(path, "defence_networks") for path in chosen):
        print(note, flush=True)
    stages = plan(study, chosen)
    print(format_plan(stages, results_store(study).root.resolve()), flush=True)
    if arguments.dry_run:
        return
    # Absolute: the notebooks' kernels run in notebooks/, and the progress file is passed to them by path.
    output_directory = (arguments.output or ROOT / "outputs" / arguments.profile).resolve()
    started = datetime.datetime.now(datetime.timezone.utc)
    versions, machine = library_versions()
    from rzs.study import Study

    record = {
        "profile": arguments.profile,
        # Every parameter, the notebooks' defaults included, as the notebooks ran with them.
        "parameters": {**dataclasses.asdict(Study()), **parameters},
        "overridden": overridden,
        "note": note,
        "notebooks": [path.stem for path in chosen],
        **git_state(),
        "versions": versions,
        "machine": machine,
        "started": started.isoformat(timespec="seconds"),
        "plan": stages,
    }
    start = time.perf_counter()
    try:
        record["notebook_seconds"] = execute(parameters, output_directory, arguments.notebooks)
    except KeyboardInterrupt:
        print("Interrupted. What the run store keeps:", file=sys.stderr)
        print(format_plan(plan(study, chosen), results_store(study).root.resolve()), file=sys.stderr)
        raise SystemExit(130) from None
    record["total_seconds"] = time.perf_counter() - start
    after = {stage["notebook"]: stage for stage in plan(study, chosen)}
    for stage in record["plan"]:
        stage["computed"] = after[stage["notebook"]]["cached"] - stage["cached"]
    (output_directory / RUN_RECORD).write_text(json.dumps(record, indent=2, default=str) + "\n")
    from rzs import report

    page = report.write_report(output_directory)
    print(f"Report: {page}", flush=True)


if __name__ == "__main__":
    main()
