"""Every registry of rzs behaves the same: one shared check run on each, then cheap checks per entry.

`run_registry_test` is the shared harness, in the manner of keras-hub's `TestCase.run_*_test`:
a new registry is covered by adding one line to `REGISTRIES`. Networks are built and trained in
tests/test_models.py, not here.
"""

import json
import re

import keras
import pytest

from rzs import attacks, data, defences, models, registry
from rzs.attacks import registry as attack_registry
from rzs.data import catalog
from rzs.models import registry as model_registry

# what -> (the registry, its public list function, its public get function)
REGISTRIES = {
    "attack": (attacks.ATTACKS, attacks.list_attacks, attacks.get_attack),
    "defence": (defences.DEFENCES, defences.list_defences, defences.get_defence),
    "dataset": (catalog.DATASETS, data.list_datasets, data.get_source),
    "network": (model_registry.NETWORKS, models.list_models, models.get_spec),
}


def run_registry_test(what, entries, list_function, get_function):
    """The checks every registry must pass, without changing the registry."""
    names = entries.list()
    assert names and len(set(names)) == len(names)
    assert list_function() == names
    for name in names:
        assert get_function(name) is entries.get(name) and entries.get(name).name == name
        assert name in entries
    first, last = names[0], names[-1]
    assert entries.list(filter=first) == [first]
    assert entries.list(filter=[last, first]) == sorted({first, last}, key=names.index)
    assert entries.list(filter="*") == names
    assert entries.list(exclude_filters="*") == []
    assert entries.list(exclude_filters=[first]) == names[1:]
    assert list_function(filter=first) == [first]
    message = f"{what} must be one of {entries.choices()}, received 'no_such_name'."
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        get_function("no_such_name")
    # Registering a taken name fails before it changes anything.
    with pytest.raises(ValueError, match=f"^{what} names must be unique, received {first!r} a second time"):
        entries.register(first, entries.get(first))
    assert entries.list() == names


@pytest.mark.parametrize("what", sorted(REGISTRIES))
def test_registry(what):
    run_registry_test(what, *REGISTRIES[what])


def test_registry_register_get_list_and_errors():
    entries = registry.Registry("colour", also_accepted=("hex:RRGGBB",))
    assert entries.register("red", 1) == 1
    entries.register("green", 2)
    entries.register("dark_red", 3)
    assert entries.list() == ["red", "green", "dark_red"]
    assert entries.list(filter="*red") == ["red", "dark_red"]
    assert entries.list(filter=["g*", "r*"]) == ["red", "green"]
    assert entries.list(filter="*red", exclude_filters="dark_*") == ["red"]
    assert entries.choices() == ["red", "green", "dark_red", "hex:RRGGBB"]
    assert entries.get("green") == 2 and "blue" not in entries
    message = "colour must be one of ['red', 'green', 'dark_red', 'hex:RRGGBB'], received 'blue'."
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        entries.get("blue")
    with pytest.raises(ValueError, match="colour names must be unique, received 'red' a second time"):
        entries.register("red", 4)
    with pytest.raises(ValueError, match="colour names must be non-empty strings, received ''"):
        entries.register("", 5)
    assert entries.get("red") == 1


def test_public_lists_narrow_by_pattern():
    assert data.list_datasets(filter="*mnist") == ["mnist", "fashion_mnist"]
    assert data.DATASET_NAMES == tuple(catalog.DATASETS.choices())
    assert defences.list_defences(exclude_filters="*_test") == [
        name for name in defences.list_defences() if not name.endswith("_test")
    ]
    assert attacks.list_attacks(filter="*_rs", threat_model="l0") == ["sparse_rs"]


@pytest.mark.parametrize("name", attacks.list_attacks())
def test_attack_entry(name):
    entry = attacks.get_attack(name)
    assert callable(entry.function) and entry.function.__doc__
    assert entry.threat_model in attack_registry.THREAT_MODELS
    assert entry.search in attack_registry.SEARCHES
    assert entry.budgeted == (entry.threat_model != "l2")


@pytest.mark.parametrize("name", defences.list_defences())
def test_defence_entry(name):
    defence = defences.get_defence(name)
    assert defence.summary and set(defence.params) == set(defence.sources)
    assert json.loads(json.dumps(defence.config())) == defence.config()
    stage = defence.build_input_stage()
    assert (stage is None) == (defence.input_stage is None)
    assert stage is None or (isinstance(stage, keras.layers.Layer) and stage.name == name)
    if name.endswith("_test"):
        base = defences.get_defence(name.removesuffix("_test"))
        assert defence.test_time_only and defence.params == base.params


@pytest.mark.parametrize("name", data.list_datasets())
def test_dataset_entry(name):
    source = data.get_source(name)
    assert source.num_classes >= 10 and source.folders
    if isinstance(source, catalog.IdxSource):
        assert set(source.files) == {"x_train", "y_train", "x_test", "y_test"}
        assert all(re.fullmatch("[0-9a-f]{64}", sha256) for _, sha256 in source.files.values())
        assert all(url.endswith("/") for url in source.urls)
    else:
        assert {"test", "meta"} <= set(source.members)
        assert all(re.fullmatch("[0-9a-f]{32}", md5) for _, md5 in source.members.values())


@pytest.mark.parametrize("name", models.list_models())
def test_network_entry(name):
    spec = models.get_spec(name)
    assert callable(spec.builder) and spec.recipe is not None
    assert spec.training_setup is None or callable(spec.training_setup)
