import ast
import dataclasses
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from worker_killer import AttemptKiller, attempt_headers, task_log

from rzs import robustness, runner, zeroshot
from rzs.runner import worker
from rzs.store import RunStore

TRAIN = zeroshot.get_or_train

TINY = dict(per_class_train=20, per_class_test=5, epochs=1, augmentation=False, batch_size=32)


def test_local_workers_match_inline_and_report_failures(shared_data, tmp_path):
    specs = zeroshot.specs_for("lenet", "fashion_mnist", [2], **TINY)
    broken = dataclasses.replace(specs[0], dataset="cifar10")  # no CIFAR-10 offline
    local_store, inline_store = RunStore(tmp_path / "local"), RunStore(tmp_path / "inline")

    # One worker gets all cores, as the inline run does: oneDNN's sums depend
    # on the thread count, so only equal thread counts give equal bits.
    report = runner.run_grid(specs + [broken], local_store, TRAIN, workers=1, progress=False)
    assert sorted(map(str, report.computed)) == sorted(map(str, specs))
    assert list(report.failed) == [broken]
    assert "cifar-10-python.tar.gz" in report.failed[broken]
    with pytest.raises(RuntimeError, match="1 failed"):
        report.raise_for_failures()

    runner.run_grid(specs, inline_store, TRAIN, backend="inline", progress=False)
    for spec in specs:
        local = local_store.load(spec.kind, spec.config()).arrays
        inline = inline_store.load(spec.kind, spec.config()).arrays
        for name in local:
            np.testing.assert_array_equal(local[name], inline[name])

    rerun = runner.run_grid(specs, local_store, TRAIN, workers=2, progress=False)
    assert rerun.computed == [] and len(rerun.cached) == 2


def test_a_reused_worker_gives_the_bits_of_a_fresh_one(shared_data, tmp_path):
    # A bfloat16 LeNet first, so that a leaked dtype policy or seed state would show.
    first = zeroshot.specs_for("lenet", "fashion_mnist", [], precision="mixed_bfloat16", **TINY)
    # Then two leave-one-out models of another seed: the second reuses the first's compiled step.
    second = zeroshot.specs_for("lenet", "fashion_mnist", [4, 6], seed=1, **TINY)[:2]
    reused, fresh = RunStore(tmp_path / "reused"), RunStore(tmp_path / "fresh")
    runner.run_grid(first + second, reused, TRAIN, workers=1, progress=False)
    assert len(set(_worker_processes(reused))) == 1, "every result should come from one worker process"
    # One task per process: every round's pool is replaced, the grid runs to its end.
    report = runner.run_grid(first + second, fresh, TRAIN, workers=1, tasks_per_process=1, progress=False)
    assert len(report.computed) == 3 and len(set(_worker_processes(fresh))) == 3
    for spec, step_reused in zip(second, [False, True]):
        reused_result = reused.load(spec.kind, spec.config())
        fresh_result = fresh.load(spec.kind, spec.config())
        assert reused_result.record["timings"]["reused_compiled_step"] is step_reused
        assert fresh_result.record["timings"]["reused_compiled_step"] is False
        for name in fresh_result.arrays:
            np.testing.assert_array_equal(reused_result.arrays[name], fresh_result.arrays[name])


def test_a_worker_clears_the_keras_session_when_the_network_changes(tmp_path, monkeypatch):
    import keras

    cleared = []
    state = worker.WorkerState()
    monkeypatch.setattr(worker, "compute_payload", lambda payload: None)
    monkeypatch.setattr(keras.backend, "clear_session", lambda free_memory: cleared.append(free_memory))
    for network in ["lenet", "lenet", "vit", "vit", "lenet"]:
        assert worker.compute_logged({"name": "task", "network": network}, tmp_path / "task.log", state) is None
    assert state.network == "lenet"
    # Not between results of one network, whose compiled training step is reused.
    assert cleared == [True, True]


def test_attack_payloads_name_the_attacked_network(tmp_path):
    model = zeroshot.specs_for("vit", "fashion_mnist", [], **TINY)[0]
    attack = robustness.AttackSpec(model=dataclasses.asdict(model), attack="pixel")
    for spec in (model, attack):
        assert worker.payload(spec, zeroshot.get_or_train, RunStore(tmp_path))["network"] == "vit"


def _worker_processes(store):
    """The process id named by the attempt header of each of a store's logs, one per log."""
    logs = (store.root / "logs").glob("*.log")
    return [re.search(r"process (\d+)", path.read_text()).group(1) for path in logs]


def test_a_killed_local_worker_is_replaced_and_its_task_rerun(shared_data, tmp_path):
    specs = zeroshot.specs_for("lenet", "fashion_mnist", [1], **TINY)
    store = RunStore(tmp_path / "store")
    log_path = task_log(store, specs[0])
    killer = AttemptKiller(log_path, delay=1.0)
    killer.start()
    report = runner.run_grid(specs, store, TRAIN, workers=1, progress=False)
    killer.join()

    assert killer.killed, "the task's first attempt never started"
    assert sorted(map(str, report.computed)) == sorted(map(str, specs)) and not report.failed
    attempts = attempt_headers(log_path)
    assert len(attempts) == 2 and f"process {killer.killed[0]}," in attempts[0]
    assert all(store.has(spec.kind, spec.config()) for spec in specs)


def test_a_task_whose_worker_dies_twice_is_reported_and_the_grid_goes_on(shared_data, tmp_path):
    specs = zeroshot.specs_for("lenet", "fashion_mnist", [1, 2], **TINY)
    store = RunStore(tmp_path / "store")
    doomed = specs[0]
    deaths = runner.LOCAL_CRASHES_ALLOWED + 1
    killer = AttemptKiller(task_log(store, doomed), delay=1.0, attempts=deaths)
    killer.start()
    report = runner.run_grid(specs, store, TRAIN, workers=2, progress=False)
    killer.join()

    assert len(killer.killed) == deaths
    assert list(report.failed) == [doomed]
    assert f"died {deaths} times" in report.failed[doomed]
    assert f"process {killer.killed[-1]}," in report.failed[doomed]  # the log's tail
    assert sorted(map(str, report.computed)) == sorted(map(str, specs[1:]))
    assert not store.has(doomed.kind, doomed.config())


def test_each_worker_is_replaced_after_its_own_tasks(shared_data, tmp_path):
    specs = zeroshot.specs_for("lenet", "fashion_mnist", [1, 2, 3, 4], **TINY)
    store = RunStore(tmp_path / "store")
    report = runner.run_grid(specs, store, TRAIN, workers=2, tasks_per_process=2, progress=False)
    assert len(report.computed) == 5 and not report.failed
    # Five tasks, two per process: at least three processes, none with more than two tasks.
    processes = _worker_processes(store)
    assert len(set(processes)) >= 3
    assert max(processes.count(process) for process in set(processes)) <= 2


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="backend"):
        runner.run_grid([], tmp_path, TRAIN, backend="slurm")
    with pytest.raises(ValueError, match="workers"):
        runner.run_grid([], tmp_path, TRAIN, workers=0)
    with pytest.raises(ValueError, match="ray back end only, received backend='local'"):
        runner.run_grid([], tmp_path, TRAIN, resources={"num_cpus": 1})
    with pytest.raises(ValueError, match="keys among"):
        runner.run_grid([], tmp_path, TRAIN, backend="ray", resources={"cpus": 1})
    with pytest.raises(ValueError, match=r"resources\['num_gpus'\].*received -0.5"):
        runner.run_grid([], tmp_path, TRAIN, backend="ray", resources={"num_gpus": -0.5})
    with pytest.raises(ValueError, match="max_retries.*received 1.5"):
        runner.run_grid([], tmp_path, TRAIN, backend="ray", max_retries=1.5)
    with pytest.raises(ValueError, match="tasks_per_process.*received 0"):
        runner.run_grid([], tmp_path, TRAIN, tasks_per_process=0)
    with pytest.raises(ValueError, match="local back end only, received backend='ray'"):
        runner.run_grid([], tmp_path, TRAIN, backend="ray", tasks_per_process=2)


def test_ray_address_moves_local_grids_to_ray(tmp_path, monkeypatch):
    calls = []

    def recording_backend(payloads, workers, log_directory, **options):
        calls.append(options)
        return iter(())

    monkeypatch.setitem(runner.BACKENDS, "ray", recording_backend)
    monkeypatch.setenv(runner.RAY_ADDRESS_VARIABLE, "auto")
    runner.run_grid([], tmp_path, TRAIN, resources={"num_gpus": 0.25}, progress=False)
    assert calls == [{"resources": {"num_gpus": 0.25}}]
    runner.run_grid([], tmp_path, TRAIN, backend="inline", progress=False)
    assert len(calls) == 1  # an explicit inline run stays in this process


def test_ray_back_end_without_ray_says_how_to_install(tmp_path, monkeypatch):
    # A None entry makes `import ray` fail as it does where Ray is not installed.
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(ImportError, match=r"pip install \"rzs\[ray\]\""):
        runner.run_grid([], tmp_path, TRAIN, backend="ray", progress=False)


def test_rzs_does_not_import_ray():
    check = "import sys, rzs.runner, rzs.study; print('ray' in sys.modules)"
    completed = subprocess.run(
        [sys.executable, "-c", check], capture_output=True, text=True, check=True
    )
    assert completed.stdout.strip() == "False"


RUNNER_DIRECTORY = Path(runner.__file__).parent
RUNNER_MODULES = {f"rzs.runner.{path.stem}" for path in RUNNER_DIRECTORY.glob("*.py")} - {"rzs.runner.__init__"}


def _rzs_imports(path):
    """The rzs modules a file imports, anywhere in it; `from package import module` names the module."""
    imported = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                imported.add(submodule if submodule in RUNNER_MODULES else node.module)
    return {name for name in imported if name == "rzs" or name.startswith("rzs.")}


def test_the_back_ends_import_the_worker_and_never_the_runner():
    imports = {f"rzs.runner.{path.stem}": _rzs_imports(path) for path in RUNNER_DIRECTORY.glob("*.py")}
    grid_api = imports.pop("rzs.runner.__init__")
    # The grid API imports its back ends and rzs's store; no domain module (the caller names `compute`).
    assert grid_api <= RUNNER_MODULES | {"rzs.store"}
    assert imports["rzs.runner.worker"] <= {"rzs.store"}
    for module in RUNNER_MODULES - {"rzs.runner.worker"}:
        assert imports[module] <= {"rzs.runner.worker"}, module


@pytest.mark.parametrize("module", sorted(RUNNER_MODULES | {"rzs.runner"}))
def test_each_runner_module_imports_alone_without_ray_tensorflow_or_the_domain(module):
    check = (
        f"import sys, {module}; "
        "print(sorted(name for name in sys.modules if name.split('.')[0] in ('ray', 'tensorflow', 'keras') "
        "or name.startswith('rzs.') and name.split('.')[1] not in ('runner', 'store')))"
    )
    completed = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, check=True)
    assert completed.stdout.strip() == "[]"


def test_payloads_may_name_only_rzs_code():
    with pytest.raises(ValueError, match="only rzs"):
        worker.resolve("os:system")


@dataclasses.dataclass(frozen=True)
class _Result:
    kind = "model"
    number: int

    def config(self):
        return {"number": self.number}


def test_progress_lines_go_to_the_progress_file_instead_of_a_bar(tmp_path, monkeypatch, capsys):
    store = RunStore(tmp_path / "store")
    store.save("model", _Result(0).config(), {})

    def finishing_backend(payloads, workers, log_directory):
        for index in range(len(payloads)):
            yield index, "boom" if index == 2 else None

    monkeypatch.setitem(runner.BACKENDS, "inline", finishing_backend)
    progress_file = tmp_path / "progress.log"
    monkeypatch.setenv(runner.PROGRESS_FILE_VARIABLE, str(progress_file))
    report = runner.run_grid([_Result(number) for number in range(5)], store, TRAIN, backend="inline")
    assert len(report.computed) == 3 and len(report.failed) == 1
    lines = progress_file.read_text().splitlines()
    assert lines[0].startswith("model: 1/5 (1 cached, 0 computed, 0 failed), elapsed 0 s, time left not known yet")
    assert lines[1].startswith("model: 2/5 (1 cached, 1 computed, 0 failed)") and "left" in lines[1]
    assert lines[-1].startswith("model: 5/5 (1 cached, 3 computed, 1 failed)") and lines[-1].endswith("done")
    assert capsys.readouterr().err == ""  # no tqdm bar beside the lines


def test_format_seconds():
    assert [runner.format_seconds(seconds) for seconds in (7.4, 65, 3725)] == ["7 s", "1 min 05 s", "1 h 02 min"]
