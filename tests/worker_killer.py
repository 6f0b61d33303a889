"""Helpers for the back ends' crash tests: a task's log, its attempts, and a thread that kills its worker."""

import os
import re
import signal
import threading
import time

from rzs.runner.worker import ATTEMPT_HEADER
from rzs.store import config_key


def task_log(store, spec):
    """Where every back end writes the log of `spec`'s task in `store`."""
    return store.root / "logs" / f"{spec.kind}-{config_key(spec.config())}.log"


def attempt_headers(log_path):
    """The header lines of the attempts at its task a log shows (none when it does not exist)."""
    if not log_path.is_file():
        return []
    lines = log_path.read_text(errors="replace").splitlines()
    return [line for line in lines if line.startswith(ATTEMPT_HEADER)]


class AttemptKiller(threading.Thread):
    """Kills the worker process of each of a task's first `attempts` attempts, mid-way.

    SIGKILL, as the kernel's out-of-memory killer would: none of the task's
    own code runs after it, so only the back end's retry can recover. Each
    process is read from an attempt header of the task's log, and killed
    `delay` seconds after it appears. `killed` lists the processes killed.
    """

    def __init__(self, log_path, delay=2.0, attempts=1):
        super().__init__()
        self.log_path = log_path
        self.delay = delay
        self.attempts = attempts
        self.killed = []

    def run(self):
        deadline = time.monotonic() + 120
        while len(self.killed) < self.attempts and time.monotonic() < deadline:
            started = [
                int(re.search(r"process (\d+)", header).group(1))
                for header in attempt_headers(self.log_path)
            ]
            if len(started) > len(self.killed):
                time.sleep(self.delay)  # mid-way: importing TensorFlow or training
                process = started[len(self.killed)]
                os.kill(process, signal.SIGKILL)
                self.killed.append(process)
            else:
                time.sleep(0.1)
