import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture
def shared_data(monkeypatch):
    """The canonical MNIST / Fashion-MNIST files beside the checkout, as the only data source."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"no canonical dataset files at {SHARED_DATA}")
    monkeypatch.setenv("RZS_DATA_DIR", str(SHARED_DATA))
    monkeypatch.setenv("RZS_OFFLINE", "1")
    return SHARED_DATA


@pytest.fixture
def empty_data_dir(tmp_path, monkeypatch):
    """An empty data directory with downloads disabled."""
    directory = tmp_path / "data"
    directory.mkdir()
    monkeypatch.setenv("RZS_DATA_DIR", str(directory))
    monkeypatch.setenv("RZS_OFFLINE", "1")
    from rzs.data import loading

    loading._load_canonical.cache_clear()
    yield directory
    loading._load_canonical.cache_clear()
