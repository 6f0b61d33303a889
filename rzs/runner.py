"""Compute many cached results (networks x excluded classes x ...) in parallel.

Each missing result runs in a fresh process, because TensorFlow keeps the
memory it takes for the life of a process. A failure is reported with the end
of its log and never costs the results that succeeded; everything stays in
the run store, so rerunning the grid computes only what is still missing.

The back end is a seam: "local" runs `workers` subprocesses on this machine,
"inline" computes in this process (debugging, tiny grids), "ray" runs one Ray
task per result on a Ray cluster (`pip install "rzs[ray]"`, see
`rzs.ray_backend`). A back end is a callable (payloads, workers,
log_directory, **options) -> iterator of (index, error or None), completing in
any order; `options` are the back end's own arguments (Ray's `resources` and
`max_retries`).

Setting the environment variable `RZS_RAY_ADDRESS` (a Ray address such as
"auto" or "ray://head:10001") moves every grid that would run on the "local"
back end, the default of `run_grid` and of every profile, onto that Ray
cluster; "inline" stays in-process.
"""

import concurrent.futures
import dataclasses
import importlib
import json
import os
import subprocess
import sys
import traceback
from pathlib import Path

from tqdm.auto import tqdm

from rzs.store import RunStore, config_key

LOG_TAIL_LINES = 25
RAY_ADDRESS_VARIABLE = "RZS_RAY_ADDRESS"
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
    options = _backend_options(backend, resources, max_retries)
    if compute is None:
        from rzs.zeroshot import get_or_train as compute

    report = GridReport()
    missing = []
    for spec in specs:
        (report.cached if store.has(spec.kind, spec.config()) else missing).append(spec)
    payloads = [_payload(spec, compute, store) for spec in missing]
    log_directory = store.root / "logs"
    log_directory.mkdir(parents=True, exist_ok=True)
    with tqdm(total=len(missing), desc="results", unit="result", disable=not progress) as bar:
        for index, error in BACKENDS[backend](payloads, workers, log_directory, **options):
            if error is None:
                report.computed.append(missing[index])
            else:
                report.failed[missing[index]] = error
            bar.update()
    return report


def _backend_options(backend, resources, max_retries):
    """The checked back-end arguments for `backend`, as keyword arguments."""
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
    return "\n".join(Path(log_path).read_text(errors="replace").splitlines()[-LOG_TAIL_LINES:])


def inline_backend(payloads, workers, log_directory):
    for index, payload in enumerate(payloads):
        try:
            compute_payload(payload)
        except Exception:  # noqa: BLE001 - reported per result, the grid goes on
            yield index, traceback.format_exc()
        else:
            yield index, None


def local_backend(payloads, workers, log_directory):
    threads = max(1, (os.cpu_count() or 1) // workers)
    environment = {**os.environ, **thread_environment(threads)}

    def run_one(payload):
        log_path = log_directory / f"{payload['name']}.log"
        with open(log_path, "w") as log:
            completed = subprocess.run(
                [sys.executable, "-m", "rzs.runner", json.dumps(payload)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=environment,
            )
        if completed.returncode == 0:
            return None
        return f"exit code {completed.returncode}; log {log_path}:\n{log_tail(log_path)}"

    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        futures = {pool.submit(run_one, payload): index for index, payload in enumerate(payloads)}
        for future in concurrent.futures.as_completed(futures):
            yield futures[future], future.result()


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


if __name__ == "__main__":
    compute_payload(json.loads(sys.argv[1]))
