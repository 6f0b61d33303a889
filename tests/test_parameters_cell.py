"""The notebooks' parameters cells are generated from the options tree and cannot drift from it."""

import ast
import dataclasses

import nbformat

from rzs import options, parameters_cell
from rzs.study import Study, StudyOptions


def test_every_notebook_cell_equals_the_generated_one():
    # After adding an option: python -m rzs.parameters_cell
    assert parameters_cell.outdated_notebooks() == []


def test_generated_cell_assigns_every_field_its_default():
    source = parameters_cell.parameters_cell_source()
    assigned = {
        statement.targets[0].id: ast.literal_eval(statement.value)
        for statement in ast.parse(source).body
    }
    assert list(assigned) == [field.name for field in dataclasses.fields(Study)]
    assert Study(**assigned) == Study()


def test_field_comments_become_line_comments():
    source_lines = parameters_cell.parameters_cell_source().splitlines()
    networks_line = next(line for line in source_lines if line.startswith("networks = "))
    assert networks_line.endswith(f"  # {parameters_cell.field_comments(StudyOptions)['networks']}")
    # An attack option is named as a study names it, with the comment of its declaration.
    images_line = next(line for line in source_lines if line.startswith("attack_images = "))
    assert images_line.endswith(f"  # {parameters_cell.field_comments(options.AttackOptions)['images']}")


def test_every_option_has_a_comment():
    # The cell is what a notebook user reads: an option without a comment says nothing of its values.
    for group in (StudyOptions, *options.OPTION_GROUPS):
        assert set(parameters_cell.field_comments(group)) == {field.name for field in dataclasses.fields(group)}


def test_write_replaces_only_the_parameters_cell(tmp_path):
    original = nbformat.read(parameters_cell.notebook_paths()[0], as_version=4)
    stale = nbformat.from_dict(original)
    parameters_cell.parameters_cell(stale).source = "profile = 'old'"
    path = tmp_path / "01-stale.ipynb"
    nbformat.write(stale, path)
    assert parameters_cell.outdated_notebooks([path]) == [path]
    assert parameters_cell.write_parameters_cells([path]) == [path]
    rewritten = nbformat.read(path, as_version=4)
    assert parameters_cell.outdated_notebooks([path]) == []
    assert [cell.source for cell in rewritten.cells] == [cell.source for cell in original.cells]
