"""The grid runner's Ray back end: one Ray task per missing result.

Only `rzs.runner.ray_backend` imports this module, so Ray stays an optional
dependency (`pip install "rzs[ray]"`).

Each task runs in a fresh worker process (`max_calls=1`): TensorFlow keeps the
memory it takes for the life of a process, and a cluster's tasks are long
enough that starting a process costs little. A task reserves `resources` (CPUs, possibly
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

import ray

from rzs import runner

# The driver's dataset configuration, so that tasks load what an inline run loads.
FORWARDED_PREFIXES = ("RZS_", "KERAS_BACKEND")


def run_on_ray(payloads, log_directory, resources, max_retries):
    """Submit one task per payload; yield (index, error or None) as they finish.

    Args:
        payloads: `rzs.runner` payloads (JSON-able dicts naming spec and compute).
        log_directory: where each task appends its log, `<name>.log`.
        resources: `ray.remote` resource arguments (num_cpus, num_gpus, memory).
        max_retries: how often a task whose worker process died is started again.
    """
    if not payloads:
        return  # nothing missing: a rerun needs no cluster
    if not ray.is_initialized():
        ray.init(address=os.environ.get(runner.RAY_ADDRESS_VARIABLE) or None)
    resources = {"num_cpus": 1, **resources}
    task = _compute_in_worker.options(
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


def task_environment(resources):
    """The environment variables of every task's worker process."""
    threads = max(1, int(resources["num_cpus"]))
    environment = runner.thread_environment(threads)
    environment.update(
        (name, value)
        for name, value in os.environ.items()
        if name.startswith(FORWARDED_PREFIXES)
    )
    gpus = resources.get("num_gpus", 0)
    if gpus == 0:
        # Ray no longer hides GPUs from tasks that reserve none (ray-project/ray
        # issue 54868); TensorFlow would take a GPU another task reserved.
        environment["CUDA_VISIBLE_DEVICES"] = ""
    elif gpus < 1:
        # Tasks sharing a GPU must not each reserve all of its memory up front.
        environment["TF_FORCE_GPU_ALLOW_GROWTH"] = "true"
    return environment


@ray.remote(max_calls=1)
def _compute_in_worker(payload, log_path):
    return runner.compute_logged(payload, log_path)


def _describe_lost_task(failure, payload, log_directory, max_retries):
    """The error report of a task Ray gave up on (worker died on every attempt)."""
    log_path = log_directory / f"{payload['name']}.log"
    message = (
        f"Ray gave up on the task (max_retries={max_retries}): "
        f"{type(failure).__name__}: {failure}"
    )
    if log_path.is_file():
        message += f"\nlog {log_path}:\n{runner.log_tail(log_path)}"
    return message
