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
"inline" computes in this process (debugging, tiny grids; both
`rzs.runner.local`), "ray" runs one Ray task per result on a Ray cluster
(`pip install "rzs[ray]"`, see `rzs.runner.ray`). A back end is a callable
(payloads, workers, log_directory, **options) -> iterator of (index, error
or None), completing in any order; `options` are the back end's own
arguments (Ray's `resources` and `max_retries`, the local `tasks_per_process`).
Back ends import `rzs.runner.worker` (payloads, logs, the code a worker runs)
and never this module, and this package imports none of rzs's domain: the
caller names the `compute` function.

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

import dataclasses
import os
import time

from tqdm.auto import tqdm

from rzs.runner import local, worker
from rzs.runner import ray as ray_back_end
from rzs.runner.local import LOCAL_CRASHES_ALLOWED, TASKS_PER_PROCESS
from rzs.runner.ray import RAY_ADDRESS_VARIABLE
from rzs.runner.worker import ATTEMPT_HEADER, available_cores, import_tensorflow_quietly, thread_environment
from rzs.store import RunStore

__all__ = [
    "ATTEMPT_HEADER",
    "BACKENDS",
    "LOCAL_CRASHES_ALLOWED",
    "PROGRESS_FILE_VARIABLE",
    "RAY_ADDRESS_VARIABLE",
    "TASKS_PER_PROCESS",
    "GridProgress",
    "GridReport",
    "available_cores",
    "format_seconds",
    "import_tensorflow_quietly",
    "run_grid",
    "thread_environment",
]

PROGRESS_FILE_VARIABLE = "RZS_PROGRESS_FILE"
BACKENDS = {"local": local.local_backend, "inline": local.inline_backend, "ray": ray_back_end.ray_backend}


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
    compute,
    workers=1,
    backend="local",
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
        compute: module-level rzs function (spec, store) computing one result,
            e.g. `rzs.zeroshot.get_or_train`; workers import it by name.
        workers: how many results the local back end computes at once (each
            in its own process); the machine's cores are shared evenly between
            them. The Ray back end starts each task as soon as the cluster has
            its `resources` free instead.
        backend: "local", "inline" or "ray" (see module docstring);
            `RZS_RAY_ADDRESS` turns "local" into "ray".
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

    report = GridReport()
    missing = []
    for spec in specs:
        (report.cached if store.has(spec.kind, spec.config()) else missing).append(spec)
    payloads = [worker.payload(spec, compute, store) for spec in missing]
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
        if not isinstance(resources, dict) or not set(resources) <= set(ray_back_end.RESOURCE_NAMES):
            raise ValueError(
                f"resources must be a dict with keys among {ray_back_end.RESOURCE_NAMES}, "
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
