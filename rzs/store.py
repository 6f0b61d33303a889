"""A content-addressed store of computed results, safe to interrupt and share.

Every result lives in `<root>/<kind>/<key>/`, where `key` hashes the JSON
config that determines it (dataset, subset, network, recipe, excluded class,
defence, seed, ...). A result directory holds `record.json` (the config, the
scalar outcomes, versions and timings, one small JSON per result in the
RobustBench manner) and `arrays.npz` (never pickle), plus any extra files such
as the trained weights.

Writes are atomic: a result is assembled in a temporary directory and renamed
into place, so an interrupted run leaves no half-written result and a rerun
computes only what is missing. `compute` holds a per-key file lock while it
computes, so two processes asked for the same result never both compute it
and never corrupt it (the lock is advisory `fcntl.flock`: local file systems,
and network file systems that implement it).
"""

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

RECORD = "record.json"
ARRAYS = "arrays.npz"


def config_key(config):
    """A short stable hash of a JSON-serialisable config (key order ignored)."""
    canonical = json.dumps(config, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(canonical.encode()).hexdigest()[:20]


class Result:
    """A stored result: its record and lazily loaded arrays."""

    def __init__(self, directory):
        self.directory = Path(directory)
        self.record = json.loads((self.directory / RECORD).read_text())

    @property
    def arrays(self):
        with np.load(self.directory / ARRAYS, allow_pickle=False) as arrays:
            return {name: arrays[name] for name in arrays.files}

    def path(self, name):
        return self.directory / name

    def __repr__(self):
        return f"Result({self.directory})"


class RunStore:
    """Results on disk under `root`, addressed by (kind, config)."""

    def __init__(self, root):
        self.root = Path(root)

    def directory(self, kind, config):
        if not kind.isidentifier():
            raise ValueError(f"kind must be an identifier, received {kind!r}.")
        return self.root / kind / config_key(config)

    def has(self, kind, config):
        return (self.directory(kind, config) / RECORD).is_file()

    def load(self, kind, config):
        if not self.has(kind, config):
            raise KeyError(f"No stored {kind} result for config key {config_key(config)}.")
        return Result(self.directory(kind, config))

    def save(self, kind, config, record, arrays=None, write_files=None):
        """Store a result atomically; returns the `Result`.

        Args:
            record: JSON-serialisable outcomes; stored with `config` and `key`.
            arrays: name -> NumPy array, saved to `arrays.npz`.
            write_files: optional callable(directory) that writes extra files
                (e.g. model weights) into the result directory before it is
                published.
        """
        final = self.directory(kind, config)
        final.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}-"))
        try:
            np.savez(staging / ARRAYS, **(arrays or {}))
            if write_files is not None:
                write_files(staging)
            full_record = {"kind": kind, "key": final.name, "config": config, **record}
            (staging / RECORD).write_text(json.dumps(full_record, indent=2, sort_keys=True))
            try:
                os.rename(staging, final)
            except OSError:
                # Another writer published the same result first; theirs is
                # complete (renames are atomic), so keep it and drop ours.
                if not self.has(kind, config):
                    raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return Result(final)

    def compute(self, kind, config, function):
        """The stored result for `config`, computing it with `function` if missing.

        `function()` returns `(record, arrays)` or `(record, arrays, write_files)`
        as taken by `save`. Only one process computes a given key at a time;
        the others wait and then read its result.
        """
        if self.has(kind, config):
            return self.load(kind, config)
        with self._lock(kind, config):
            if self.has(kind, config):
                return self.load(kind, config)
            return self.save(kind, config, *function())

    def records(self, kind=None):
        """Every stored record (optionally of one kind), as a list of dicts."""
        pattern = f"{kind}/*/{RECORD}" if kind else f"*/*/{RECORD}"
        return [
            json.loads(path.read_text())
            for path in sorted(self.root.glob(pattern))
            # Dot-directories are staging areas of interrupted writes.
            if not path.parent.name.startswith(".")
        ]

    @contextlib.contextmanager
    def _lock(self, kind, config):
        lock_path = self.directory(kind, config).with_suffix(".lock")
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        with open(lock_path, "w") as lock_file:
            fcntl.flock(lock_file, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock_file, fcntl.LOCK_UN)
