"""The attack registry drives AttackSpec: every registered attack is a valid spec with its own key."""

import dataclasses

import numpy as np
import pytest

from rzs import attacks, robustness, training
from rzs.attacks import registry


def attack_spec(attack, **options):
    model = training.TrainingSpec(network="lenet", dataset="fashion_mnist", per_class_train=20)
    return robustness.AttackSpec(model=dataclasses.asdict(model), attack=attack, **options)


@pytest.mark.parametrize("name", attacks.list_attacks())
def test_every_registered_attack_makes_a_spec_whose_key_holds_only_its_settings(name):
    entry = attacks.get_attack(name)
    assert entry.threat_model in registry.THREAT_MODELS and entry.search in registry.SEARCHES
    key = attack_spec(name).config()
    used = set(robustness.SETTINGS_USED[entry.search]) - ({"random_start"} if name != "pgd" else set())
    assert set(robustness.SEARCH_SETTINGS) & set(key) == used
    assert key["inference_precision"] == "float32"


def test_list_attacks_filters_by_threat_model_and_search():
    assert set(attacks.list_attacks(threat_model="l0")) == {"pixel", "sparse_rs"}
    assert set(attacks.list_attacks(search="random_search")) == {"square", "sparse_rs"}
    assert attacks.list_attacks(threat_model="l0", search="gradient") == []


def test_unknown_attack_and_duplicate_registration_are_errors():
    with pytest.raises(ValueError, match=r"attack must be one of \[.*'square'.*\], received 'sqare'"):
        attack_spec("sqare")
    with pytest.raises(ValueError, match="attack names must be unique, received 'pixel' a second time"):
        registry.register(attacks.get_attack("pixel"))
    with pytest.raises(ValueError, match="threat_model must be one of"):
        registry.AttackEntry("new", attacks.pixel_attack, threat_model="l1", search="evolutionary")


def test_random_search_specs_key_and_validate_their_queries():
    assert attack_spec("square", queries=600).config()["queries"] == 600
    assert attack_spec("square", queries=600).config() != attack_spec("square").config()
    with pytest.raises(ValueError, match="queries must be a positive integer, received 0"):
        attack_spec("sparse_rs", queries=0)


def test_run_attack_passes_the_query_budget_to_random_searches():
    import keras

    inputs = keras.Input((4, 4, 1))
    logits = keras.layers.Dense(3)(keras.layers.Flatten()(inputs))
    model = keras.Model(inputs, keras.layers.Activation("softmax", dtype="float32")(logits))
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(3, 4, 4, 1)).astype("uint8")
    labels = np.argmax(model.predict_on_batch(images.astype("float32")), axis=1)
    table = robustness.run_attack(attack_spec("square", thresholds=(1,), queries=7), model, images, labels)
    assert (table["queries"] <= 7).all()
    assert ((table["queries"] == 7) | table["success"]).all()


def test_study_thresholds_per_attack():
    from rzs.study import Study

    study = Study.from_parameters(attacks=["pixel", "square"], thresholds={"pixel": [3], "square": [10], "threshold": [5]})
    assert {spec.attack: spec.thresholds for spec in study.attack_specs()} == {"pixel": (3,), "square": (10,)}
    with pytest.raises(ValueError, match="thresholds, given per attack, must name every attack"):
        Study.from_parameters(attacks=["pixel", "square"], thresholds={"pixel": [3]})


@pytest.mark.parametrize(
    "name, value", [("workers", 0), ("per_class_train", -1), ("width", 0), ("attack_images", -5),
                    ("attack_queries", 0), ("epochs", 0), ("attack_population", True)],
)
def test_study_stops_bad_sizes_naming_the_parameter(name, value):
    from rzs.study import Study

    with pytest.raises(ValueError, match=f"^{name} must be"):
        Study.from_parameters(**{name: value})
