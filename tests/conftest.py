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


@pytest.fixture(scope="session")
def fashion_subset():
    """The first 2000 Fashion-MNIST training and 200 test images, for the attack tests."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"no canonical dataset files at {SHARED_DATA}")
    from rzs import data

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RZS_DATA_DIR", str(SHARED_DATA))
        patch.setenv("RZS_OFFLINE", "1")
        fashion = data.load_dataset("fashion_mnist")
    return {
        "x_train": fashion.x_train[:2000],
        "y_train": fashion.y_train[:2000],
        "x_test": fashion.x_test[:200],
        "y_test": fashion.y_test[:200],
    }


@pytest.fixture(scope="session")
def small_model(fashion_subset):
    """`rzs.testing.small_conv_net` trained for 2 epochs on `fashion_subset`, once per session."""
    from rzs import testing

    return testing.small_conv_net(fashion_subset["x_train"], fashion_subset["y_train"], epochs=2)
