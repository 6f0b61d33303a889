"""The back ends that compute on this machine: worker processes ("local"), or the caller's process ("inline").

A back end is a callable (payloads, workers, log_directory, **options) ->
iterator of (index, error or None), completing in any order.
"""

import collections
import concurrent.futures
import multiprocessing
import os
import traceback
from concurrent.futures.process import BrokenProcessPool

from rzs.runner import worker

# Results a local worker process computes before a fresh one replaces it. Keras
# and TensorFlow keep something of every model built: a quick-profile worker grew
# from about 850 MiB to 2.8 GiB over its first 48 models and to 3.5 GiB over 58,
# about 45 MiB a model. Forty holds a worker near 2.6 GiB (the quick profile's two
# workers, notebook and runner near 7 GiB together) and costs its training grid
# two replacements, each a TensorFlow import and a traced step (BENCHMARKS.md,
# "The local runner's idle time").
TASKS_PER_PROCESS = 40
# A result whose worker process died (killed, out of memory, crashed) while
# computing it is started again once; the second death is reported.
LOCAL_CRASHES_ALLOWED = 1


def inline_backend(payloads, workers, log_directory):
    """Every payload in this process, one after another: for debugging and tiny grids."""
    for index, payload in enumerate(payloads):
        try:
            worker.compute_payload(payload)
        except Exception:  # noqa: BLE001 - reported per result, the grid goes on
            yield index, traceback.format_exc()
        else:
            yield index, None


def local_backend(payloads, workers, log_directory, tasks_per_process=TASKS_PER_PROCESS):
    """`workers` processes on this machine, sharing its cores evenly.

    Each worker is a pool of one process that computes tasks one at a time,
    in the order given, and is replaced by a fresh one after
    `tasks_per_process` of them; the other workers go on meanwhile, so no
    worker waits for another's last task. (Not `max_tasks_per_child`: with
    Python 3.11.7 a pool whose workers had all reached it hung instead of
    starting new ones. Nor rounds of tasks in one shared pool, the way this
    worked before: at the end of each round one worker idled until the
    other finished, about a minute of a core over the quick profile's
    training; BENCHMARKS.md, "The local runner's idle time".)
    When a worker process dies, its task starts again on a fresh worker,
    unless it has died `LOCAL_CRASHES_ALLOWED` + 1 times; then it is
    reported with its log's end.
    """
    threads = max(1, worker.available_cores() // workers)
    log_paths = {index: log_directory / f"{payload['name']}.log" for index, payload in enumerate(payloads)}
    waiting = collections.deque(range(len(payloads)))
    crashes = collections.Counter()
    pools = [None] * min(workers, len(payloads))
    tasks_started = [0] * len(pools)
    running = {}  # future -> (worker slot, task index)

    def start_next(slot):
        if pools[slot] is None or tasks_started[slot] == tasks_per_process:
            if pools[slot] is not None:
                pools[slot].shutdown()
            pools[slot] = concurrent.futures.ProcessPoolExecutor(
                max_workers=1,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_set_environment,
                initargs=(worker.thread_environment(threads),),
            )
            tasks_started[slot] = 0
        index = waiting.popleft()
        future = pools[slot].submit(worker.compute_logged, payloads[index], log_paths[index])
        tasks_started[slot] += 1
        running[future] = (slot, index)

    try:
        for slot in range(len(pools)):
            start_next(slot)
        while running:
            done, _ = concurrent.futures.wait(running, return_when=concurrent.futures.FIRST_COMPLETED)
            for future in done:
                slot, index = running.pop(future)
                try:
                    error = future.result()
                except BrokenProcessPool:
                    pools[slot].shutdown()
                    pools[slot] = None  # replaced by the next start
                    crashes[index] += 1
                    if crashes[index] <= LOCAL_CRASHES_ALLOWED:
                        waiting.appendleft(index)
                        start_next(slot)
                        continue
                    error = (
                        f"the worker process died {crashes[index]} times; log {log_paths[index]}:\n"
                        f"{worker.log_tail(log_paths[index])}"
                    )
                if waiting:
                    start_next(slot)
                yield index, error
    finally:
        for pool in pools:
            if pool is not None:
                pool.shutdown(cancel_futures=True)


def _set_environment(environment):
    # A worker's first act: TensorFlow reads its thread counts once, on import.
    os.environ.update(environment)
