"""Helpers for the back ends' crash tests: a task's log, and a thread that kills its worker."""

import os
import re
import signal
import threading
import time

from rzs.store import config_key


def task_log(store, spec):
    """Where every back end writes the log of `spec`'s task in `store`."""
    return store.root / "logs" / f"{spec.kind}-{config_key(spec.config())}.log"


class FirstAttemptKiller(threading.Thread):
    """Kills the worker process of a task's first attempt, mid-way.

    SIGKILL, as the kernel's out-of-memory killer would: none of the task's
    own code runs after it, so only the back end's retry can recover. The
    process is read from the attempt header of the task's log, and killed
    `delay` seconds after it appears.
    """

    def __init__(self, log_path, delay=2.0):
        super().__init__()
        self.log_path = log_path
        self.delay = delay
        self.killed = None

    def run(self):
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            log = self.log_path.read_text() if self.log_path.is_file() else ""
            match = re.search(r"process (\d+)", log)
            if match:
                time.sleep(self.delay)  # mid-way: importing TensorFlow or training
                self.killed = int(match.group(1))
                os.kill(self.killed, signal.SIGKILL)
                return
            time.sleep(0.1)
