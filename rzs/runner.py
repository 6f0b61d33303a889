"""Compute many cached results (networks x excluded classes x ...) in parallel.

Results are computed in worker processes, never in the caller's: TensorFlow
keeps the memory it takes for the life of a process. A local worker computes
`tasks_per_process` results before it is replaced, because starting one
(importing TensorFlow) costs about 6 s of CPU, as much as training a small
network; it resets the dtype policy before each result, which leaves the
result bit-identical to one computed in a fresh process (tested), and keeps
the compiled training step for the next result that can reuse it. A failure
is reported with the end of its log and never costs the results that
succeeded; everything stays in the run store, so rerunning the grid computes
only what is still missing.

The back end is a seam: "local" runs `workers` processes on this machine,
"inline" computes in this process (debugging, tiny grids), "ray" runs one Ray
task per result on a Ray cluster (`pip install "rzs[ray]"`, see
`rzs.ray_backend`). A back end is a callable (payloads, workers,
log_directory, **options) -> iterator of (index, error or None), completing in
any order; `options` are the back end's own arguments (Ray's `resources` and
`max_retries`).

While a grid runs, its progress (results done of total, cached ones
counted apart, failures, elapsed time and an estimate of the time left) is
drawn as a tqdm bar, or, when the environment variable `RZS_PROGRESS_FILE`
names a file, appended to that file as one line per finished result instead:
`rzs.reproduce` sets it and prints the file's lines on the console while
papermill runs a notebook, where a bar inside the notebook would be seen only
after the notebook ends (and would leave a stderr block in it).

Setting the environment variable `RZS_RAY_ADDRESS` (a Ray address such as
"auto" or "ray://head:10001") moves every grid that would run on the "local"
back end, the default of `run_grid` and of every profile, onto that Ray
cluster; "inline" stays in-process.
"""

import collections
import concurrent.futures
import contextlib
import dataclasses
import importlib
import multiprocessing
import os
import socket
import sys
import time
import traceback
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from tqdm.auto import tqdm

from rzs.store import RunStore, config_key

LOG_TAIL_LINES = 25
ATTEMPT_HEADER = "=== "  # starts the line a worker writes to a task's log as it starts it
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
RAY_ADDRESS_VARIABLE = "RZS_RAY_ADDRESS"
PROGRESS_FILE_VARIABLE = "RZS_PROGRESS_FILE"
RAY_RESOURCE_NAMES = ("num_cpus", "num_gpus", "memory")


@dataclasses.dataclass
class GridReport:
    """What a grid run did: keys computed, found cached, and failed (with why)."""

    computed: list = dataclasses.field(default_factory=list)
    cached: list = dataclasses.field(default_factory=list)
    failed: dict = dataclasses.field(default_factory=dict)

    def __str__(self):
        lines = [
            f"{len(self.computed)} computed, {len(self.cached)} cached, {len(self.failed)} failed."
        ]
        for spec, error in self.failed.items():
            lines.append(f"FAILED {spec}:\n{error}")
        return "\n".join(lines)

    def raise_for_failures(self):
        if self.failed:
            raise RuntimeError(str(self))


def run_grid(
    specs,
    store,
    workers=1,
    backend="local",
    compute=None,
    progress=True,
    resources=None,
    max_retries=None,
    tasks_per_process=None,
):
    """Compute every spec whose result is not in `store` yet.

    Args:
        specs: dataclass specs with a `kind` and a `config()` (e.g. `TrainingSpec`).
        store: a `RunStore` or its root directory. With Ray, a path that every
            node sees at the same place (a shared file system).
        workers: how many results the local back end computes at once (each
            in its own process); the machine's cores are shared evenly between
            them. The Ray back end starts each task as soon as the cluster has
            its `resources` free instead.
        backend: "local", "inline" or "ray" (see module docstring);
            `RZS_RAY_ADDRESS` turns "local" into "ray".
        compute: module-level function (spec, store) computing one result;
            default `rzs.zeroshot.get_or_train`.
        resources: Ray only: what each task reserves, a dict with any of
            "num_cpus" (default 1; also the task's thread count), "num_gpus"
            (fractions share a GPU) and "memory" (bytes).
        max_retries: Ray only: how often a task whose worker process dies
            (killed, out of memory, node lost) is started again; default 3.
            A task that raises is reported, not retried: it would fail again.
        tasks_per_process: local only: results one worker process computes
            before a fresh one replaces it; default `TASKS_PER_PROCESS`, 1 for a
            fresh process per result.

    Returns:
        A `GridReport`; failures are collected, not raised.
    """
    store = store if isinstance(store, RunStore) else RunStore(store)
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {sorted(BACKENDS)}, received {backend!r}.")
    if backend == "local" and os.environ.get(RAY_ADDRESS_VARIABLE):
        backend = "ray"
    if not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be a positive integer, received {workers!r}.")
    options = _backend_options(backend, resources, max_retries, tasks_per_process)
    if compute is None:
        from rzs.zeroshot import get_or_train as compute

    report = GridReport()
    missing = []
    for spec in specs:
        (report.cached if store.has(spec.kind, spec.config()) else missing).append(spec)
    payloads = [_payload(spec, compute, store) for spec in missing]
    log_directory = store.root / "logs"
    log_directory.mkdir(parents=True, exist_ok=True)
    progress_file = os.environ.get(PROGRESS_FILE_VARIABLE) if progress else None
    progress_line = GridProgress(specs, len(report.cached))
    _append_progress(progress_file, progress_line.line())
    with tqdm(total=len(missing), desc="results", unit="result", disable=not progress or bool(progress_file)) as bar:
        for index, error in BACKENDS[backend](payloads, workers, log_directory, **options):
            if error is None:
                report.computed.append(missing[index])
            else:
                report.failed[missing[index]] = error
            bar.update()
            progress_line.finished(failed=error is not None)
            _append_progress(progress_file, progress_line.line())
    return report


class GridProgress:
    """One line of a grid's progress: done / total, cached apart, failures, elapsed, time left.

    The time left is the mean time per result finished so far (over all
    workers at once) times the results still missing: a grid's results are
    alike, and the first ones carry the workers' start-up, so the estimate
    errs long early on.
    """

    def __init__(self, specs, cached):
        self.kinds = sorted({spec.kind for spec in specs})
        self.total = len(specs)
        self.cached = cached
        self.computed = 0
        self.failed = 0
        self.start = time.monotonic()

    def finished(self, failed=False):
        if failed:
            self.failed += 1
        else:
            self.computed += 1

    def line(self):
        done = self.cached + self.computed + self.failed
        elapsed = time.monotonic() - self.start
        finished = self.computed + self.failed
        if done == self.total:
            left = "done"
        elif finished:
            left = f"about {format_seconds(elapsed / finished * (self.total - done))} left"
        else:
            left = "time left not known yet"
        return (
            f"{'/'.join(self.kinds) or 'results'}: {done}/{self.total} "
            f"({self.cached} cached, {self.computed} computed, {self.failed} failed), "
            f"elapsed {format_seconds(elapsed)}, {left}"
        )


def format_seconds(seconds):
    """A duration as "1 h 02 min", "3 min 05 s" or "12 s"."""
    seconds = round(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"
    if seconds >= 60:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds} s"


def _append_progress(path, line):
    # Opened per line, so that a reader tailing the file sees every line as soon as it is written.
    if path:
        with open(path, "a") as progress:
            progress.write(line + "\n")


def _backend_options(backend, resources, max_retries, tasks_per_process):
    """The checked back-end arguments for `backend`, as keyword arguments."""
    if tasks_per_process is not None:
        if backend != "local":
            raise ValueError(
                f"tasks_per_process applies to the local back end only, received backend={backend!r}."
            )
        if isinstance(tasks_per_process, bool) or not isinstance(tasks_per_process, int) or tasks_per_process < 1:
            raise ValueError(
                f"tasks_per_process must be a positive integer, received {tasks_per_process!r}."
            )
        return {"tasks_per_process": tasks_per_process}
    if backend != "ray":
        if resources is not None or max_retries is not None:
            raise ValueError(
                "resources and max_retries apply to the ray back end only, "
                f"received backend={backend!r}."
            )
        return {}
    options = {}
    if resources is not None:
        if not isinstance(resources, dict) or not set(resources) <= set(RAY_RESOURCE_NAMES):
            raise ValueError(
                f"resources must be a dict with keys among {RAY_RESOURCE_NAMES}, "
                f"received {resources!r}."
            )
        for name, amount in resources.items():
            if isinstance(amount, bool) or not isinstance(amount, (int, float)) or amount < 0:
                raise ValueError(
                    f"resources[{name!r}] must be a non-negative number, received {amount!r}."
                )
        options["resources"] = resources
    if max_retries is not None:
        if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
            raise ValueError(
                f"max_retries must be a non-negative integer, received {max_retries!r}."
            )
        options["max_retries"] = max_retries
    return options


def _payload(spec, compute, store):
    return {
        "spec": f"{type(spec).__module__}:{type(spec).__qualname__}",
        "fields": dataclasses.asdict(spec),
        "compute": f"{compute.__module__}:{compute.__qualname__}",
        "store": str(Path(store.root).resolve()),
        "name": f"{spec.kind}-{config_key(spec.config())}",
        "network": getattr(spec, "network", None),
    }


def _resolve(reference):
    # Payloads cross process boundaries as text; resolve only rzs's own code.
    module_name, _, attribute = reference.partition(":")
    if module_name != "rzs" and not module_name.startswith("rzs."):
        raise ValueError(f"Refusing to run {reference!r}: only rzs functions may be named.")
    return getattr(importlib.import_module(module_name), attribute)


def compute_payload(payload):
    spec = _resolve(payload["spec"])(**payload["fields"])
    _resolve(payload["compute"])(spec, RunStore(payload["store"]))


def available_cores():
    """Cores this process may run on: its CPU affinity, which containers and taskset narrow."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def thread_environment(threads):
    """Environment variables giving a fresh worker process `threads` compute threads."""
    return {
        "TF_NUM_INTRAOP_THREADS": str(threads),
        "TF_NUM_INTEROP_THREADS": "1",
        "OMP_NUM_THREADS": str(threads),
        "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"),
    }


def log_tail(log_path):
    """The last `LOG_TAIL_LINES` lines of a log file, for failure reports."""
    if not Path(log_path).is_file():
        return "(no log: the worker died before the task started)"
    return "\n".join(Path(log_path).read_text(errors="replace").splitlines()[-LOG_TAIL_LINES:])


def inline_backend(payloads, workers, log_directory):
    for index, payload in enumerate(payloads):
        try:
            compute_payload(payload)
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
    threads = max(1, available_cores() // workers)
    log_paths = {index: log_directory / f"{payload['name']}.log" for index, payload in enumerate(payloads)}
    waiting = collections.deque(range(len(payloads)))
    crashes = collections.Counter()
    pools = [None] * min(workers, len(payloads))
    tasks_started = [0] * len(pools)
    running = {}  # future -> (worker, task index)

    def start_next(worker):
        if pools[worker] is None or tasks_started[worker] == tasks_per_process:
            if pools[worker] is not None:
                pools[worker].shutdown()
            pools[worker] = concurrent.futures.ProcessPoolExecutor(
                max_workers=1,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_set_environment,
                initargs=(thread_environment(threads),),
            )
            tasks_started[worker] = 0
        index = waiting.popleft()
        future = pools[worker].submit(compute_logged, payloads[index], log_paths[index])
        tasks_started[worker] += 1
        running[future] = (worker, index)

    try:
        for worker in range(len(pools)):
            start_next(worker)
        while running:
            done, _ = concurrent.futures.wait(running, return_when=concurrent.futures.FIRST_COMPLETED)
            for future in done:
                worker, index = running.pop(future)
                try:
                    error = future.result()
                except BrokenProcessPool:
                    pools[worker].shutdown()
                    pools[worker] = None  # replaced by the next start
                    crashes[index] += 1
                    if crashes[index] <= LOCAL_CRASHES_ALLOWED:
                        waiting.appendleft(index)
                        start_next(worker)
                        continue
                    error = (
                        f"the worker process died {crashes[index]} times; log {log_paths[index]}:\n"
                        f"{log_tail(log_paths[index])}"
                    )
                if waiting:
                    start_next(worker)
                yield index, error
    finally:
        for pool in pools:
            if pool is not None:
                pool.shutdown(cancel_futures=True)


def _set_environment(environment):
    # A worker's first act: TensorFlow reads its thread counts once, on import.
    os.environ.update(environment)


# The network of the last result this worker process computed (see `compute_logged`).
_last_network = None


def compute_logged(payload, log_path):
    """Compute one payload in a worker process, its output appended to `log_path`.

    Returns None, or the error with the log's end. Each attempt starts with a
    header naming the host and process, so a retried task's log shows every
    start. The dtype policy is reset first; the computation seeds itself. A
    worker that computed other results before then gives the same bits as a
    fresh one (tested).

    The Keras session is cleared when the network changes, not between two
    results of one network: clearing drops TensorFlow's caches too, and with
    them the compiled training step that `rzs.training` reuses for the next
    model with the same graph. Without it a worker kept about 45 MiB of every
    model it trained (BENCHMARKS.md, "The local runner's idle time").
    """
    global _last_network
    with open(log_path, "a") as log:
        log.write(
            f"{ATTEMPT_HEADER}{payload['name']} on {socket.gethostname()}, "
            f"process {os.getpid()}, {time.strftime('%Y-%m-%d %H:%M:%S')}\n"
        )
        log.flush()
        try:
            # Inside the redirection: TensorFlow's C++ start-up lines go to the task's
            # log, not to the console or notebook of the process that started the worker.
            with _output_to(log):
                import keras

                if _last_network is not None and payload.get("network") != _last_network:
                    keras.backend.clear_session(free_memory=True)
                _last_network = payload.get("network")
                keras.config.set_dtype_policy("float32")
                compute_payload(payload)
        except Exception:  # noqa: BLE001 - reported per result, the grid goes on
            log.write(traceback.format_exc())
        else:
            return None
    return f"log {log_path} on {socket.gethostname()}:\n{log_tail(log_path)}"


@contextlib.contextmanager
def _output_to(log):
    """Send this process's stdout and stderr (TensorFlow's C++ logging too) to `log`."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = {descriptor: os.dup(descriptor) for descriptor in (1, 2)}
    for descriptor in saved:
        os.dup2(log.fileno(), descriptor)
    try:
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        for descriptor, copy in saved.items():
            os.dup2(copy, descriptor)
            os.close(copy)


def import_tensorflow_quietly():
    """Import TensorFlow with this process's stderr sent to /dev/null meanwhile.

    TensorFlow's C++ start-up lines (absl's "before InitializeLog", oneDNN,
    cudart) are written to file descriptor 2 before anything reads
    TF_CPP_MIN_LOG_LEVEL or absl's settings, so no environment variable
    silences them; a later `import tensorflow` finds the module loaded.
    """
    with open(os.devnull, "w") as devnull, _output_to(devnull):
        import tensorflow  # noqa: F401


def ray_backend(payloads, workers, log_directory, resources=None, max_retries=3):
    """One Ray task per payload (`rzs.ray_backend.run_on_ray`); needs `rzs[ray]`.

    `workers` is not used: Ray starts each task as soon as the cluster has
    the task's `resources` free.
    """
    # Ray is an optional dependency: only this back end may import it.
    try:
        from rzs.ray_backend import run_on_ray
    except ModuleNotFoundError as error:
        if error.name != "ray":
            raise
        raise ImportError(
            'The ray back end needs Ray: pip install "rzs[ray]" (or "ray[default]").'
        ) from error
    return run_on_ray(payloads, log_directory, resources or {}, max_retries)


BACKENDS = {"local": local_backend, "inline": inline_backend, "ray": ray_backend}

