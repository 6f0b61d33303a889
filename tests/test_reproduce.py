"""`make reproduce` as a user runs it: the plan, the dry run, overrides, live progress."""

import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rzs import reproduce
from rzs.store import RunStore

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / ".ci"))

import check_report  # noqa: E402

# TensorFlow's C++ start-up lines and Jupyter's transport warning; none may reach the console.
NOISE = ("absl::InitializeLog", "oneDNN", "cudart", "cuInit", "without encryption")


def _files(directory):
    return sorted(path for path in Path(directory).rglob("*") if path.is_file())


def _paths(tmp_path):
    return [
        "-p", "results_dir", str(tmp_path / "results"),
        "-p", "figures_dir", str(tmp_path / "figures"),
        "-p", "tables_dir", str(tmp_path / "tables"),
    ]


def test_dry_run_counts_cached_and_missing_results_and_computes_nothing(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "3")
    arguments = ["--profile", "smoke", *_paths(tmp_path), "-p", "excluded_classes", "[0, 1]"]
    parameters = {**reproduce.load_profile("smoke"), "results_dir": str(tmp_path / "results"), "excluded_classes": [0, 1]}
    planned = reproduce.validate(parameters).planned_specs()
    # A partly cached store: two of the three models, one prediction and one attack, with timings.
    store = RunStore(tmp_path / "results")
    models = [spec for spec in planned["train"] if spec.kind == "model"]
    predictions = [spec for spec in planned["train"] if spec.kind != "model"]
    for spec in models[:2]:
        store.save(spec.kind, spec.config(), {"timings": {"train_seconds": 10.0, "predict_seconds": 2.0}})
    store.save(predictions[0].kind, predictions[0].config(), {"timings": {"predict_seconds": 4.0}})
    attack = planned["attack"][0]
    store.save(attack.kind, attack.config(), {"timings": {"attack_seconds": 30.0}})
    before = _files(tmp_path)

    reproduce.main([*arguments, "--dry-run", "--output", str(tmp_path / "outputs")])
    printed = capsys.readouterr().out

    # Missing: one model (12 s) and two predictions (4 s each) shared by the smoke profile's 2 workers.
    assert "01-train-raw-zero-shot: 6 results, 3 cached, 3 to compute, about 10 s" in printed
    # The other attacks borrow the stored one's 30 s each, shared by the 2 workers.
    missing_attacks = len(planned["attack"]) - 1
    assert (
        f"03-attacks: {len(planned['attack'])} results, 1 cached, {missing_attacks} to compute, "
        f"about {missing_attacks * 30 // 2} s" in printed
    )
    defended = len(planned["train_defences"]) + len(planned["attack_defences"])
    assert f"05-defences: {defended} results, 0 cached, {defended} to compute" in printed
    assert _files(tmp_path) == before  # nothing computed, no output folder
    assert not (tmp_path / "outputs").exists()


def test_overridden_networks_take_the_profiles_defence_networks_with_them(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "3")
    quick = ["--profile", "quick", "--dry-run", *_paths(tmp_path)]
    reproduce.main([*quick, "-p", "networks", "[lenet, resnet]"])
    printed = capsys.readouterr().out
    assert "defence_networks: ['lenet']" in printed and "Plan" in printed

    reproduce.main([*quick, "-p", "networks", "[resnet]"])
    printed = capsys.readouterr().out
    assert "no defences" in printed and "05-defences: 0 results" in printed

    # Notebooks 01 and 02 read no defence parameter: an inconsistent one does not stop them.
    reproduce.main([*quick, "-p", "networks", "[resnet]", "-p", "defence_networks", "[vgg16]", "--notebooks", "01", "02"])
    assert "01-train-raw-zero-shot" in capsys.readouterr().out
    with pytest.raises(SystemExit) as stopped:
        reproduce.main([*quick, "-p", "networks", "[resnet]", "-p", "defence_networks", "[vgg16]"])
    assert stopped.value.code == 2 and "defence_networks" in capsys.readouterr().err


def _readme_commands():
    text = (ROOT / "README.md").read_text()
    commands = re.findall(r"^(make reproduce\b.*?)\s*(?:#.*)?$", text, flags=re.MULTILINE)
    commands += re.findall(r"`(make reproduce\b[^`]*)`", text)
    # Every command runs as a dry run, so `make reproduce DRY_RUN=1` is `make reproduce`.
    return sorted({" ".join(command.replace("DRY_RUN=1", "").split()) for command in commands if "<" not in command})


def test_readme_shows_reproduce_commands():
    assert len(_readme_commands()) >= 2


@pytest.mark.parametrize("command", _readme_commands())
def test_every_make_reproduce_command_in_the_readme_runs(command, tmp_path):
    # As a dry run against an empty store: the full runs take from minutes to GPU-days.
    words = shlex.split(command)
    paths = shlex.join(_paths(tmp_path))
    arguments = [word for word in words[2:] if not word.startswith("ARGS=")]
    given = [word[len("ARGS="):] for word in words[2:] if word.startswith("ARGS=")]
    venv = Path(sys.prefix)
    completed = subprocess.run(
        [
            "make", "-s", "-o", f"{venv}/.installed", "reproduce", f"VENV={venv}", *arguments,
            "DRY_RUN=1", f"ARGS={' '.join(given)} {paths}",
        ],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert completed.returncode == 0, completed.stderr
    assert "Plan (run store" in completed.stdout
    assert not any(noise in completed.stdout + completed.stderr for noise in NOISE)


def test_progress_reaches_the_console_while_a_notebook_runs(shared_data, tmp_path):
    command = [
        sys.executable, "-m", "rzs.reproduce", "--profile", "smoke", "--notebooks", "01",
        # Relative to the working directory, which is not the kernels' (notebooks/).
        "--output", os.path.relpath(tmp_path / "outputs", ROOT), *_paths(tmp_path),
        "-p", "excluded_classes", "[0]", "-p", "per_class_train", "20", "-p", "epochs", "1", "-p", "workers", "1",
    ]
    process = subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    lines = []  # (seconds since start, whether the process was still running, line)
    start = time.monotonic()
    for line in process.stdout:
        lines.append((time.monotonic() - start, process.poll() is None, line.rstrip()))
    stderr = process.stderr.read()
    assert process.wait() == 0, stderr

    printed = [line for _, _, line in lines]
    progress = [index for index, line in enumerate(printed) if re.search(r"predictions: \d/2 \(0 cached, \d computed", line)]
    done = next(index for index, line in enumerate(printed) if "01-train-raw-zero-shot.ipynb done in" in line)
    assert progress and progress[-1] < done
    first = lines[progress[0]]
    assert first[1] and first[0] < lines[done][0], "the first progress line came only after the notebook"
    assert "predictions: 2/2 (0 cached, 2 computed, 0 failed)" in "\n".join(printed)
    assert not any(noise in "\n".join(printed) + stderr for noise in NOISE)
    problems, pages = check_report.check(tmp_path / "outputs")
    assert problems == [] and len(pages) == 2
