"""The project's set-up promises: one dependency list, Keras 3 only, CPU-only installs."""

import re
from importlib import metadata
from pathlib import Path

import tomllib
import yaml

ROOT = Path(__file__).resolve().parents[1]


def _requirement(text):
    name, specifier = re.match(r"^\s*([A-Za-z0-9_.\-]+)(?:\[[^\]]*\])?\s*(.*)$", text).groups()
    return name.lower().replace("_", "-"), specifier.replace(" ", "")


def test_environment_yml_lists_the_pyproject_dependencies():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    expected = dict(map(_requirement, project["dependencies"] + project["optional-dependencies"]["test"]))
    expected["python"] = project["requires-python"]
    conda = yaml.safe_load((ROOT / "environment.yml").read_text())["dependencies"]
    listed = dict(_requirement(entry) for entry in conda if isinstance(entry, str) and entry != "pip")
    assert listed == expected


def test_library_uses_keras_3_only():
    offenders = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in (ROOT / "rzs").rglob("*.py")
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if re.search(r"tf\.keras|tensorflow\.keras|tf\.compat\.v1|import tf_keras", line)
    ]
    assert offenders == []


def test_cpu_install_pulled_no_cuda_packages():
    cuda = sorted(
        dist.metadata["Name"]
        for dist in metadata.distributions()
        if dist.metadata["Name"] and dist.metadata["Name"].lower().startswith("nvidia-")
    )
    assert cuda == []
