"""Run every notebook of a profile with papermill: `python -m rzs.reproduce`.

    python -m rzs.reproduce --profile quick -p networks "[lenet, resnet]"

Parameters come from notebooks/profiles/<profile>.yaml; `-p NAME VALUE`
overrides one (VALUE is read as YAML, so lists and numbers work). Everything is
validated before the first notebook starts. Executed notebooks and an HTML
rendering of each go to outputs/<profile>/; the first failing notebook stops
the run, and everything computed so far stays in the run store.
"""

import argparse
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
PROFILES = NOTEBOOKS / "profiles"


def available_profiles():
    return sorted(path.stem for path in PROFILES.glob("*.yaml"))


def load_profile(name):
    path = PROFILES / f"{name}.yaml"
    if not path.is_file():
        raise ValueError(f"Unknown profile {name!r}. Available: {available_profiles()}.")
    parameters = yaml.safe_load(path.read_text()) or {}
    parameters["profile"] = name
    return parameters


def notebooks():
    return sorted(NOTEBOOKS.glob("[0-9][0-9]-*.ipynb"))


def validate(parameters):
    """Raise ValueError naming any unknown or invalid parameter, before compute."""
    from rzs.study import Study

    Study.from_parameters(**parameters)


def execute(parameters, output_directory, selected=None):
    """Execute the notebooks in order; returns the list of executed paths."""
    import nbconvert
    import nbformat
    import papermill

    output_directory.mkdir(parents=True, exist_ok=True)
    chosen = [path for path in notebooks() if not selected or path.name[:2] in selected]
    executed = []
    for number, path in enumerate(chosen, 1):
        declared = papermill.inspect_notebook(path)
        notebook_parameters = {k: v for k, v in parameters.items() if k in declared}
        output = output_directory / path.name
        print(f"[{number}/{len(chosen)}] {path.name} ...", flush=True)
        start = time.perf_counter()
        try:
            papermill.execute_notebook(
                path,
                output,
                parameters=notebook_parameters,
                kernel_name="python3",
                cwd=NOTEBOOKS,
                progress_bar=False,
            )
        except papermill.PapermillExecutionError as error:
            print(
                f"FAILED {path.name} after {time.perf_counter() - start:.0f} s: "
                f"{error.ename}: {error.evalue}\nThe executed notebook is {output}; results "
                "computed so far are kept in the run store.",
                file=sys.stderr,
            )
            raise SystemExit(1) from None
        html, _ = nbconvert.HTMLExporter().from_notebook_node(nbformat.read(output, as_version=4))
        output.with_suffix(".html").write_text(html)
        print(f"[{number}/{len(chosen)}] {path.name} done in {time.perf_counter() - start:.0f} s", flush=True)
        executed.append(output)
    return executed


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="quick", help=f"one of {available_profiles()}")
    parser.add_argument(
        "-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
        help="override one parameter (VALUE is YAML)",
    )
    parser.add_argument("--notebooks", nargs="*", help="run only these numbers, e.g. 01 02")
    parser.add_argument("--output", type=Path, help="default outputs/<profile>")
    arguments = parser.parse_args(argv)
    try:
        parameters = load_profile(arguments.profile)
        for name, value in arguments.parameter:
            parameters[name] = yaml.safe_load(value)
        validate(parameters)
    except ValueError as error:
        parser.exit(2, f"rzs.reproduce: {error}\n")
    execute(parameters, arguments.output or ROOT / "outputs" / arguments.profile, arguments.notebooks)


if __name__ == "__main__":
    main()
