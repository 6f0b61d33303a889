"""The grid runner's Ray back end, on a two-CPU Ray cluster on this machine.

Ray is a test dependency: these tests run in `make test`, not skipped. Each
task starts a Ray worker and imports TensorFlow, and tasks run one after
another so that each has both threads: the fast test is two tasks (about
30 s on two idle cores); the killed-worker tests are slow.
"""

import dataclasses

import numpy as np
import pytest
import ray
from worker_killer import AttemptKiller, attempt_headers, task_log

from rzs import runner, zeroshot
from rzs.store import RunStore

TINY = dict(per_class_train=20, per_class_test=5, epochs=1, augmentation=False, batch_size=32)
# Each task gets both CPUs, so both threads, as the inline run in this process
# has: oneDNN's sums depend on the thread count, so only then are bits equal.
ALL_THREADS = {"num_cpus": 2, "num_gpus": 0}
# A tiny task ends 1.5-2 s after its log's header on a warm machine (2026-11-24): the
# killer's default 2 s could come after the end, so it kills sooner.
KILL_DELAY = 0.5


@pytest.fixture(scope="module")
def ray_cluster():
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        _node_ip_address="127.0.0.1",
        log_to_driver=False,
        # A worker importing Ray on a busy two-core machine can take over the default minute to register.
        _system_config={"worker_register_timeout_seconds": 300},
    )
    yield
    ray.shutdown()


def test_ray_matches_inline_reports_failures_and_reruns_anywhere(
    ray_cluster, shared_data, tmp_path
):
    # Two tasks, each a fresh Ray worker importing TensorFlow: one result, one failure.
    specs = zeroshot.specs_for("lenet", "fashion_mnist", [], **TINY)
    broken = dataclasses.replace(specs[0], dataset="cifar10")  # no CIFAR-10 offline
    ray_store, inline_store = RunStore(tmp_path / "ray"), RunStore(tmp_path / "inline")

    report = runner.run_grid(
        specs + [broken], ray_store, zeroshot.get_or_train, backend="ray", resources=ALL_THREADS, progress=False
    )
    assert sorted(map(str, report.computed)) == sorted(map(str, specs))
    assert list(report.failed) == [broken]
    assert "cifar-10-python.tar.gz" in report.failed[broken]

    runner.run_grid(specs, inline_store, zeroshot.get_or_train, backend="inline", progress=False)
    for spec in specs:
        on_ray = ray_store.load(spec.kind, spec.config())
        inline = inline_store.load(spec.kind, spec.config())
        assert on_ray.record["history"] == inline.record["history"]
        assert on_ray.record["test_accuracy"] == inline.record["test_accuracy"]
        for name, array in inline.arrays.items():
            np.testing.assert_array_equal(on_ray.arrays[name], array)

    # The store is the only state: any back end skips what Ray computed.
    rerun = runner.run_grid(specs, ray_store, zeroshot.get_or_train, backend="inline", progress=False)
    assert rerun.computed == [] and len(rerun.cached) == 1


def test_rzs_starts_ray_at_the_configured_address_with_worker_output_off_the_console(tmp_path, monkeypatch):
    # Ray's workers print the SIGTERM that ends them at shutdown; task output has its own log.
    calls = []

    def recording_init(**options):
        calls.append(options)
        raise RuntimeError("no cluster in this test")

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", recording_init)
    monkeypatch.setenv(runner.RAY_ADDRESS_VARIABLE, "ray://head:10001")
    specs = zeroshot.specs_for("lenet", "fashion_mnist", [], **TINY)
    with pytest.raises(RuntimeError, match="no cluster"):
        runner.run_grid(specs, tmp_path, zeroshot.get_or_train, progress=False)
    assert calls == [{"address": "ray://head:10001", "log_to_driver": False}]


@pytest.mark.slow
def test_a_killed_task_is_retried_and_the_store_stays_consistent(
    ray_cluster, shared_data, tmp_path
):
    (spec,) = zeroshot.specs_for("lenet", "fashion_mnist", [], **TINY)
    store = RunStore(tmp_path / "store")
    killer = AttemptKiller(task_log(store, spec), delay=KILL_DELAY)
    killer.start()
    report = runner.run_grid(
        [spec], store, zeroshot.get_or_train, backend="ray", resources=ALL_THREADS, max_retries=2, progress=False
    )
    killer.join()

    assert killer.killed, "the task's first attempt never started"
    assert report.computed == [spec] and not report.failed
    attempts = attempt_headers(task_log(store, spec))
    assert len(attempts) == 2 and f"process {killer.killed[0]}," in attempts[0]
    result = store.load(spec.kind, spec.config())
    soft_labels = result.arrays["test_soft_labels"]
    assert soft_labels.shape == (50, 10)
    np.testing.assert_allclose(soft_labels.sum(axis=1), 1, rtol=1e-5)
    assert result.path(zeroshot.MODEL_FILE).is_file()
    # Besides the result and its lock, only the killed write's dot-named
    # staging directory may remain, which every reader skips.
    key = result.directory.name
    leftovers = {path.name for path in (store.root / spec.kind).iterdir()} - {key, f"{key}.lock"}
    assert all(name.startswith(f".{key}-") for name in leftovers)
    assert [record["key"] for record in store.records(spec.kind)] == [key]


@pytest.mark.slow
def test_a_task_killed_on_its_last_attempt_is_reported(ray_cluster, shared_data, tmp_path):
    (spec,) = zeroshot.specs_for("lenet", "fashion_mnist", [], **TINY)
    store = RunStore(tmp_path / "store")
    killer = AttemptKiller(task_log(store, spec), delay=KILL_DELAY)
    killer.start()
    report = runner.run_grid(
        [spec], store, zeroshot.get_or_train, backend="ray", resources=ALL_THREADS, max_retries=0, progress=False
    )
    killer.join()

    assert report.computed == [] and list(report.failed) == [spec]
    assert "max_retries=0" in report.failed[spec]
    assert f"process {killer.killed[0]}," in report.failed[spec]  # the log's tail
    assert not store.has(spec.kind, spec.config())
