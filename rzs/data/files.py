"""Finding, verifying and downloading the canonical dataset files.

Search order for every file: each data directory (`RZS_DATA_DIR`, several
joined with the path separator; default the project's `data/`), in the
layouts the canonical distributions use (also in a `raw/` subfolder, as
torchvision stores them), then the folders of system dataset packages, then a
download from the canonical URL into the first data directory. Nothing is
parsed before its checksum matched.
"""

import gzip
import hashlib
import os
import shutil
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from tqdm.auto import tqdm

_PROJECT_DATA = Path(__file__).resolve().parents[2] / "data"


class ChecksumError(ValueError):
    """A dataset file's content does not hash to its published checksum."""


def data_directories():
    """The directories searched for dataset files, in order."""
    configured = os.environ.get("RZS_DATA_DIR")
    if configured:
        return [Path(part).expanduser() for part in configured.split(os.pathsep) if part]
    return [_PROJECT_DATA if _PROJECT_DATA.is_dir() else Path("data")]


def downloads_allowed():
    return os.environ.get("RZS_OFFLINE", "").lower() not in {"1", "true", "yes"}


def candidate_paths(file_names, folders, extra_directories=()):
    """Every place a file of `file_names` may lie, in search order."""
    roots = []
    for directory in data_directories():
        roots.append(directory)
        for folder in folders:
            roots += [directory / folder, directory / folder / "raw"]
    roots += [Path(directory) for directory in extra_directories]
    return [root / name for root in roots for name in file_names]


def read_idx_verified(file_name, sha256, folders, system_folders, urls, dataset):
    """The decompressed bytes of an idx file whose SHA-256 matches `sha256`.

    Accepts `file_name` or `file_name.gz` in any searched place; downloads the
    `.gz` when no copy exists.
    """
    names = (file_name + ".gz", file_name)
    path = _first_existing(candidate_paths(names, folders, system_folders))
    if path is None:
        path = _download_any(
            [url + file_name + ".gz" for url in urls],
            data_directories()[0] / folders[0] / (file_name + ".gz"),
            dataset=dataset,
            searched=candidate_paths(names, folders, system_folders),
        )
    content = path.read_bytes()
    if content[:2] == b"\x1f\x8b":
        try:
            content = gzip.decompress(content)
        except (OSError, EOFError) as error:
            raise ChecksumError(
                f"{path} is not a valid gzip file ({error}). Delete it and retry."
            ) from error
    verify_digest(content, sha256, "sha256", path)
    return content


def verify_digest(content, expected, algorithm, path):
    digest = hashlib.new(algorithm, content).hexdigest()
    if digest != expected:
        raise ChecksumError(
            f"Checksum mismatch for {path}: {algorithm} of its content is {digest}, "
            f"expected {expected}. The file is corrupt or not the canonical one; "
            "delete it and retry (rzs downloads a fresh copy when online)."
        )


def find_or_download(file_names, folders, url, dataset):
    """The first existing path of `file_names`, else the download of `url`."""
    searched = candidate_paths(file_names, folders)
    path = _first_existing(searched)
    if path is not None:
        return path
    target = data_directories()[0] / folders[0] / file_names[0]
    return _download_any([url], target, dataset=dataset, searched=searched)


def _first_existing(paths):
    return next((path for path in paths if path.exists()), None)


def _download_any(urls, target, *, dataset, searched):
    if downloads_allowed():
        failures = []
        for url in urls:
            try:
                return _download(url, target)
            except (urllib.error.URLError, OSError) as error:
                failures.append(f"{url}: {error}")
        reason = "Download failed:\n  " + "\n  ".join(failures)
    else:
        reason = "Downloads are disabled (RZS_OFFLINE is set)."
    places = "\n  ".join(str(path) for path in searched)
    raise FileNotFoundError(
        f"No copy of {target.name} for dataset {dataset!r} was found. {reason}\n"
        f"Put the file (from {urls[0]}) at {target}, or point RZS_DATA_DIR at a "
        f"directory that holds it. Searched:\n  {places}"
    )


def _download(url, target):
    target.parent.mkdir(parents=True, exist_ok=True)
    # Download to a temporary file beside the target and rename at the end, so
    # an interrupted download never leaves a truncated file under the real name.
    with urllib.request.urlopen(url, timeout=60) as response:
        total = int(response.headers.get("Content-Length") or 0) or None
        with tempfile.NamedTemporaryFile(
            dir=target.parent, prefix=target.name, suffix=".part", delete=False
        ) as partial, tqdm(
            total=total, unit="B", unit_scale=True, desc=f"Downloading {target.name}"
        ) as progress:
            try:
                while chunk := response.read(1 << 20):
                    partial.write(chunk)
                    progress.update(len(chunk))
            except BaseException:
                os.unlink(partial.name)
                raise
    shutil.move(partial.name, target)
    return target
