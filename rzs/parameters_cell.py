"""The notebooks' papermill `parameters` cell, generated from the options tree.

A notebook parameter is declared once, as a field of one group of `rzs.study.PARAMETER_GROUPS`
(`rzs.study.StudyOptions` and the groups of `rzs.options`): its name, its default and, in the
comment on the field's line, what it means. Every notebook's `parameters` cell is generated from
them, a comment line naming each group, then one line per field,

    name = default  # the comment on the field's line

so a notebook run on its own in Jupyter, a papermill run and `Study()` in Python agree, and a new
field reaches every notebook with one command:

    python -m rzs.parameters_cell           # rewrite the cell of every notebook
    python -m rzs.parameters_cell --check   # exit 1 if any notebook's cell differs
"""

import argparse
import ast
import dataclasses
import inspect
import io
import sys
import tokenize
from pathlib import Path

from rzs import study

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
PARAMETERS_TAG = "parameters"


def field_comments(cls):
    """{field name: the comment on its line in `cls`'s source}, for the fields that have one."""
    source = inspect.getsource(cls)
    comments = {
        token.start[0]: token.string.lstrip("#").strip()
        for token in tokenize.generate_tokens(io.StringIO(source).readline)
        if token.type == tokenize.COMMENT
    }
    class_definition = ast.parse(source).body[0]
    return {
        statement.target.id: comments[statement.end_lineno]
        for statement in class_definition.body
        if isinstance(statement, ast.AnnAssign) and statement.end_lineno in comments
    }


def parameters_cell_source(groups=study.PARAMETER_GROUPS):
    """The source of the generated `parameters` cell: per group, its title, then one assignment per field.

    A field is named as a study names it (`group.prefix + name`, `attack_images`).
    """
    lines = []
    for group in groups:
        comments = field_comments(group)
        lines.append(f"# {inspect.getdoc(group).splitlines()[0]}")
        for field in dataclasses.fields(group):
            if field.default is not dataclasses.MISSING:
                default = field.default
            else:
                default = field.default_factory()
            line = f"{group.prefix}{field.name} = {default!r}"
            if field.name in comments:
                line += f"  # {comments[field.name]}"
            lines.append(line)
    return "\n".join(lines)


def notebook_paths():
    return sorted(NOTEBOOKS.glob("[0-9][0-9]-*.ipynb"))


def parameters_cell(notebook):
    """The notebook's one cell tagged `parameters`; ValueError when it has none or several."""
    tagged = [
        cell for cell in notebook.cells if PARAMETERS_TAG in cell.metadata.get("tags", [])
    ]
    if len(tagged) != 1:
        raise ValueError(
            f"Expected one cell tagged {PARAMETERS_TAG!r}, found {len(tagged)}."
        )
    return tagged[0]


def outdated_notebooks(paths=None):
    """The notebooks whose `parameters` cell differs from the generated one."""
    import nbformat

    expected = parameters_cell_source()
    return [
        path
        for path in paths or notebook_paths()
        if parameters_cell(nbformat.read(path, as_version=4)).source != expected
    ]


def write_parameters_cells(paths=None):
    """Replace the `parameters` cell of each notebook with the generated one; returns those changed."""
    import nbformat

    expected = parameters_cell_source()
    changed = []
    for path in paths or notebook_paths():
        notebook = nbformat.read(path, as_version=4)
        cell = parameters_cell(notebook)
        if cell.source != expected:
            cell.source = expected
            nbformat.write(notebook, path)
            changed.append(path)
    return changed


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="only report notebooks that differ")
    arguments = parser.parse_args(argv)
    if arguments.check:
        outdated = outdated_notebooks()
        for path in outdated:
            print(f"{path.name}: parameters cell differs from the options tree (python -m rzs.parameters_cell)", file=sys.stderr)
        return 1 if outdated else 0
    for path in write_parameters_cells():
        print(f"rewrote the parameters cell of {path.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
