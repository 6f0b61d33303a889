import json
import multiprocessing
import time

import numpy as np
import pytest

from rzs.store import RunStore, config_key

CONFIG = {"network": "lenet", "dataset": "toy", "excluded": 3, "seed": 0}


def test_key_ignores_key_order_and_changes_with_content():
    assert config_key({"a": 1, "b": 2}) == config_key({"b": 2, "a": 1})
    assert config_key(CONFIG) != config_key({**CONFIG, "seed": 1})


def test_save_then_load_round_trip(tmp_path):
    store = RunStore(tmp_path)
    arrays = {"soft_labels": np.eye(3, dtype=np.float32)}
    store.save("model", CONFIG, {"test_accuracy": 0.5}, arrays)
    result = store.load("model", CONFIG)
    assert result.record["test_accuracy"] == 0.5 and result.record["config"] == CONFIG
    np.testing.assert_array_equal(result.arrays["soft_labels"], arrays["soft_labels"])
    assert store.records("model")[0]["key"] == config_key(CONFIG)


def test_compute_hits_the_cache_on_rerun(tmp_path):
    store = RunStore(tmp_path)
    calls = []

    def compute():
        calls.append(1)
        return {"value": 1}, {}

    store.compute("model", CONFIG, compute)
    store.compute("model", CONFIG, compute)
    assert len(calls) == 1


def test_crash_mid_write_leaves_no_result_and_rerun_recomputes(tmp_path):
    store = RunStore(tmp_path)

    def crashing_files(directory):
        (directory / "weights.bin").write_bytes(b"partial")
        raise KeyboardInterrupt  # an interruption while the weights are written

    with pytest.raises(KeyboardInterrupt):
        store.compute("model", CONFIG, lambda: ({"value": 1}, {}, crashing_files))
    assert not store.has("model", CONFIG)
    assert store.records() == []
    result = store.compute("model", CONFIG, lambda: ({"value": 2}, {}))
    assert result.record["value"] == 2


def test_records_skip_staging_directories_of_killed_writers(tmp_path):
    store = RunStore(tmp_path)
    staging = tmp_path / "model" / ".abc-killed"
    staging.mkdir(parents=True)
    (staging / "record.json").write_text(json.dumps({"value": 0}))
    assert store.records() == []


def _slow_writer(root, value, started):
    def compute():
        started.append(value)
        time.sleep(0.5)
        return {"value": value}, {"array": np.full(1000, value)}

    result = RunStore(root).compute("model", CONFIG, compute)
    return result.record["value"], int(result.arrays["array"][0])


def _writer_process(root, value, queue):
    started = []
    queue.put((_slow_writer(root, value, started), started))


def test_two_processes_never_corrupt_or_duplicate_a_result(tmp_path):
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    processes = [context.Process(target=_writer_process, args=(tmp_path, v, queue)) for v in (1, 2)]
    for process in processes:
        process.start()
    outcomes = [queue.get(timeout=60) for _ in processes]
    for process in processes:
        process.join(timeout=60)
    results = {outcome for outcome, _ in outcomes}
    computed = [value for _, started in outcomes for value in started]
    assert len(computed) == 1  # the second process waited and read the first's result
    assert len(results) == 1
    value, array_value = results.pop()
    assert value == array_value == computed[0]


def test_bad_kind_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="kind"):
        RunStore(tmp_path).has("../escape", CONFIG)
