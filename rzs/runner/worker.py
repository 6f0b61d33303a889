"""What a worker process runs: task payloads, per-task logs, thread counts, and the state kept between tasks.

Every back end (`rzs.runner.local`, `rzs.runner.ray`) imports this module and
nothing else of the runner, so the grid API (`rzs.runner`) and its back ends
do not import each other. Nothing here imports rzs's domain modules or
TensorFlow at import time: a payload names its spec class and its compute
function as text, resolved in the worker.
"""

import contextlib
import dataclasses
import importlib
import os
import socket
import sys
import time
import traceback
from pathlib import Path

from rzs.store import RunStore, config_key

LOG_TAIL_LINES = 25
ATTEMPT_HEADER = "=== "  # starts the line a worker writes to a task's log as it starts it


@dataclasses.dataclass
class WorkerState:
    """What a process keeps from one result to the next, so the next can reuse the compiled training step.

    Tracing and instantiating a training step costs seconds per model on one
    core, and the leave-one-out models of a network share one graph. The next
    model reuses the step only while three things hold, one field each:

    - `compiled_step`: the last compiled training model and the key of its
      graph, kept and matched by `rzs.training` (at most one: a network's
      leave-one-out models come one after another).
    - `backend_seed`: the seed the backend has. Setting TensorFlow's seed again
      clears its caches, the instantiated step with them, so
      `rzs.reproducibility.seed_everything` skips it when the seed is this one.
    - `network`: the network of the last result. `compute_logged` clears the
      Keras session (which drops TensorFlow's caches too) only when it changes.

    Each of these leaves a result bit-identical to one computed in a fresh
    process (tests/test_runner.py, tests/test_training.py).
    """

    network: str | None = None
    backend_seed: int | None = None
    compiled_step: object = None

    def start_task(self, network):
        """Clear the Keras session when `network` differs from the last task's, then note it."""
        if self.network is not None and network != self.network:
            import keras

            keras.backend.clear_session(free_memory=True)
        self.network = network


# This process's state: each worker process has its own, as has a caller computing inline.
PROCESS_STATE = WorkerState()


def payload(spec, compute, store):
    """A task as JSON-able text: the spec's class and fields, the compute function, the store."""
    return {
        "spec": f"{type(spec).__module__}:{type(spec).__qualname__}",
        "fields": dataclasses.asdict(spec),
        "compute": f"{compute.__module__}:{compute.__qualname__}",
        "store": str(Path(store.root).resolve()),
        "name": f"{spec.kind}-{config_key(spec.config())}",
        "network": getattr(spec, "network", None),
    }


def resolve(reference):
    """The rzs object a payload names as "module:attribute"."""
    # Payloads cross process boundaries as text; resolve only rzs's own code.
    module_name, _, attribute = reference.partition(":")
    if module_name != "rzs" and not module_name.startswith("rzs."):
        raise ValueError(f"Refusing to run {reference!r}: only rzs functions may be named.")
    return getattr(importlib.import_module(module_name), attribute)


def compute_payload(payload):
    spec = resolve(payload["spec"])(**payload["fields"])
    resolve(payload["compute"])(spec, RunStore(payload["store"]))


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


def compute_logged(payload, log_path, state=PROCESS_STATE):
    """Compute one payload in a worker process, its output appended to `log_path`.

    Returns None, or the error with the log's end. Each attempt starts with a
    header naming the host and process, so a retried task's log shows every
    start. The dtype policy is reset first; the computation seeds itself. A
    worker that computed other results before then gives the same bits as a
    fresh one (tested).

    The Keras session is cleared when the network changes (`state`, a
    `WorkerState`), not between two results of one network: clearing drops
    TensorFlow's caches too, and with them the compiled training step that
    `rzs.training` reuses for the next model with the same graph. Without it
    a worker kept about 45 MiB of every model it trained (BENCHMARKS.md, "The
    local runner's idle time").
    """
    with open(log_path, "a") as log:
        log.write(
            f"{ATTEMPT_HEADER}{payload['name']} on {socket.gethostname()}, "
            f"process {os.getpid()}, {time.strftime('%Y-%m-%d %H:%M:%S')}\n"
        )
        log.flush()
        try:
            # Inside the redirection: TensorFlow's C++ start-up lines go to the task's
            # log, not to the console or notebook of the process that started the worker.
            with output_to(log):
                import keras

                state.start_task(payload.get("network"))
                keras.config.set_dtype_policy("float32")
                compute_payload(payload)
        except Exception:  # noqa: BLE001 - reported per result, the grid goes on
            log.write(traceback.format_exc())
        else:
            return None
    return f"log {log_path} on {socket.gethostname()}:\n{log_tail(log_path)}"


@contextlib.contextmanager
def output_to(log):
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
    with open(os.devnull, "w") as devnull, output_to(devnull):
        import tensorflow  # noqa: F401
