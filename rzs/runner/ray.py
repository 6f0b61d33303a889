"""The grid runner's Ray back end: one Ray task per missing result.

Ray is an optional dependency (`pip install "rzs[ray]"`): this module imports
it only when a grid runs on it, so `rzs.runner` imports without it.

Each task runs in a fresh worker process (`max_calls=1`): TensorFlow keeps the
memory it takes for the life of a process, and a cluster's tasks are long
enough that starting a process costs little (what it costs on one machine:
BENCHMARKS.md, "What the Ray back end costs per task"). A task reserves `resources` (CPUs, possibly
fractional GPUs, memory) and computes its result straight into the run store,
which must therefore lie on a path every node sees at the same place; the
store's atomic, locked writes make a rerun anywhere skip what is done and
keep a killed task from leaving half a result. A task whose worker process
dies is retried up to `max_retries` times; a task that raises is reported with
the end of its log.

The driver connects to the Ray cluster already initialised in this process,
else to `RZS_RAY_ADDRESS` (any address `ray.init` takes), else to a cluster
started with `ray start` on this machine or, failing that, a new local one.
Every node needs rzs installed, and the datasets where `RZS_DATA_DIR` (which
the tasks inherit from the driver) points.
"""

import os

from rzs.runner import worker

RAY_ADDRESS_VARIABLE = "RZS_RAY_ADDRESS"
RESOURCE_NAMES = ("num_cpus", "num_gpus", "memory")
# The driver's dataset configuration, so that tasks load what an inline run loads.
FORWARDED_PREFIXES = ("RZS_", "KERAS_BACKEND")


def ray_backend(payloads, workers, log_directory, resources=None, max_retries=3):
    """Submit one task per payload; yield (index, error or None) as they finish.

    Args:
        payloads: `rzs.runner.worker.payload` dicts (JSON-able, naming spec and compute).
        workers: not used: Ray starts each task as soon as the cluster has
            the task's `resources` free.
        log_directory: where each task appends its log, `<name>.log`.
        resources: `ray.remote` resource arguments (num_cpus, default 1;
            num_gpus; memory).
        max_retries: how often a task whose worker process died is started again.
    """
    ray = _import_ray()
    if not payloads:
        return  # nothing missing: a rerun needs no cluster
    if not ray.is_initialized():
        # A task's output goes to its own log (`worker.compute_logged`); what else a Ray worker
        # prints, the stack trace of the SIGTERM that ends it at shutdown among it, stays in
        # Ray's session logs instead of the console or notebook.
        ray.init(address=os.environ.get(RAY_ADDRESS_VARIABLE) or None, log_to_driver=False)
    resources = {"num_cpus": 1, **(resources or {})}
    task = ray.remote(max_calls=1)(_compute_in_worker).options(
        max_retries=max_retries,
        # An exception is deterministic (bad config, missing data): retrying
        # would only fail again. Only a dead worker process is retried.
        retry_exceptions=False,
        runtime_env={"env_vars": task_environment(resources)},
        **resources,
    )
    pending = {
        task.remote(payload, str(log_directory / f"{payload['name']}.log")): index
        for index, payload in enumerate(payloads)
    }
    while pending:
        (finished,), _ = ray.wait(list(pending), num_returns=1)
        index = pending.pop(finished)
        try:
            error = ray.get(finished)
        except ray.exceptions.RayError as failure:
            error = _describe_lost_task(failure, payloads[index], log_directory, max_retries)
        yield index, error


def _import_ray():
    try:
        import ray
    except ModuleNotFoundError as error:
        if error.name != "ray":
            raise
        raise ImportError('The ray back end needs Ray: pip install "rzs[ray]" (or "ray[default]").') from error
    return ray


def task_environment(resources):
    """The environment variables of every task's worker process."""
    threads = max(1, int(resources["num_cpus"]))
    environment = worker.thread_environment(threads)
    environment.update((name, value) for name, value in os.environ.items() if name.startswith(FORWARDED_PREFIXES))
    gpus = resources.get("num_gpus", 0)
    if gpus == 0:
        # Ray no longer hides GPUs from tasks that reserve none (ray-project/ray
        # issue 54868); TensorFlow would take a GPU another task reserved.
        environment["CUDA_VISIBLE_DEVICES"] = ""
    elif gpus < 1:
        # Tasks sharing a GPU must not each reserve all of its memory up front.
        environment["TF_FORCE_GPU_ALLOW_GROWTH"] = "true"
    return environment


def _compute_in_worker(payload, log_path):
    return worker.compute_logged(payload, log_path)


def _describe_lost_task(failure, payload, log_directory, max_retries):
    """The error report of a task Ray gave up on (worker died on every attempt)."""
    log_path = log_directory / f"{payload['name']}.log"
    message = f"Ray gave up on the task (max_retries={max_retries}): {type(failure).__name__}: {failure}"
    if log_path.is_file():
        message += f"\nlog {log_path}:\n{worker.log_tail(log_path)}"
    return message
