"""Every notebook is papermill-ready and every profile names only valid parameters."""

import ast
import dataclasses
import json

import papermill
import pytest

from rzs import reproduce
from rzs.study import Study

NOTEBOOKS = reproduce.notebooks()
STUDY_FIELDS = {field.name for field in dataclasses.fields(Study)}


def test_notebooks_are_numbered_in_order():
    numbers = [path.name[:2] for path in NOTEBOOKS]
    assert numbers == [f"{n:02d}" for n in range(1, len(NOTEBOOKS) + 1)] and len(numbers) >= 4


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.name)
def test_notebook_is_stripped_and_has_a_parameters_cell(path):
    notebook = json.loads(path.read_text())
    assert notebook["metadata"]["kernelspec"]["language"] == "python"
    tagged = [cell for cell in notebook["cells"] if "parameters" in cell["metadata"].get("tags", [])]
    assert len(tagged) == 1
    assert notebook["cells"][0]["cell_type"] == "markdown"  # opens with what it shows
    for cell in notebook["cells"]:
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [] and cell["execution_count"] is None


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.name)
def test_notebook_parameters_are_study_parameters_with_valid_defaults(path):
    declared = papermill.inspect_notebook(path)
    # papermill silently skips lines it cannot parse (an "=" in a comment, say); a skipped
    # parameter would never receive the profile's value.
    cell = next(
        cell for cell in json.loads(path.read_text())["cells"]
        if "parameters" in cell["metadata"].get("tags", [])
    )
    assigned = {
        target.id
        for statement in ast.parse("".join(cell["source"])).body
        for target in statement.targets
    }
    assert set(declared) == assigned
    assert set(declared) <= STUDY_FIELDS
    defaults = {name: ast.literal_eval(spec["default"]) for name, spec in declared.items()}
    Study.from_parameters(**defaults)


@pytest.mark.parametrize("profile", reproduce.available_profiles())
def test_profiles_validate(profile):
    parameters = reproduce.load_profile(profile)
    assert set(parameters) <= STUDY_FIELDS
    if parameters["dataset"].startswith("cifar"):
        parameters["dataset"] = "fashion_mnist"  # validation of the rest needs no CIFAR files
    reproduce.validate(parameters)


def test_reproduce_stops_on_unknown_values_before_compute(capsys):
    with pytest.raises(SystemExit) as stopped:
        reproduce.main(["--profile", "smoke", "-p", "networks", "[lenet, alexnet]"])
    assert stopped.value.code == 2
    assert "alexnet" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        reproduce.main(["--profile", "smoke", "-p", "excluded_classes", "[12]"])
    assert "excluded_classes" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        reproduce.main(["--profile", "smoke", "-p", "colour", "blue"])
    assert "colour" in capsys.readouterr().err


def test_defence_attacks_choose_the_defended_arms_attacks_and_must_be_among_attacks(capsys):
    study = Study.from_parameters(
        networks=["lenet"], attacks=["pixel", "threshold", "square"], thresholds=[3],
        defences=["label_smoothing"], defence_attacks=["pixel", "threshold"],
    )
    assert [spec.attack for spec in study.attack_specs()] == ["pixel", "threshold", "square"]
    assert [spec.attack for spec in study.attack_specs(defence="label_smoothing")] == ["pixel", "threshold"]
    with pytest.raises(ValueError, match=r"defence_attacks must be .* received \['square'\]"):
        Study.from_parameters(attacks=["pixel"], defence_attacks=["square"])
    with pytest.raises(SystemExit):
        reproduce.main(["--profile", "smoke", "-p", "defence_attacks", "[pgd]"])
    assert "defence_attacks" in capsys.readouterr().err
