"""Tests of the registered networks and their training recipes.

Every test over networks is parametrised by `list_models()`, so registering a
network is enough to have it tested. Networks are built at a quarter of their
width to keep the suite fast on a CPU.
"""

import dataclasses
import math

import keras
import numpy as np
import pytest

from rzs.models import build_model, get_recipe, get_spec, list_models
from rzs.models.capsnet import margin_loss
from rzs.models.recipe import Recipe, piecewise
from rzs.training import make_optimizer

INPUT_SHAPES = [(28, 28, 1), (32, 32, 3)]
NUM_CLASSES = 9
WIDTH = 0.25
BATCH = 4

# Networks that are not in the authors' code.
RZS_ADDITIONS = {"mobilenet_v2", "vit", "resnet18"}

# Parameter counts of the authors' networks at full width, 32x32x3, 10 classes.
PARAMETER_RANGES = {
    "lenet": (55e3, 70e3),
    "allconv": (1.2e6, 1.5e6),
    "nin": (0.9e6, 1.05e6),
    "resnet": (0.42e6, 0.52e6),  # ResNet-32: 0.46M.
    "densenet": (0.75e6, 0.95e6),  # DenseNet-BC-100, k=12: 0.8M.
    "wide_resnet": (10.5e6, 12e6),  # WRN-16-8: 11.0M.
    "vgg16": (14e6, 16e6),
    "vgg19": (19e6, 21.5e6),
    "capsnet": (8e6, 9.5e6),
}


def random_pixels(input_shape, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(0, 255, size=(BATCH, *input_shape)).astype("float32")


def one_hot_labels(num_classes):
    return keras.utils.to_categorical(np.arange(BATCH) % num_classes, num_classes)


@pytest.fixture(autouse=True)
def seeded():
    keras.utils.set_random_seed(0)


def test_list_models_has_the_twelve_networks_in_order():
    assert list_models() == [
        "lenet",
        "allconv",
        "nin",
        "resnet",
        "densenet",
        "wide_resnet",
        "vgg16",
        "vgg19",
        "capsnet",
        "mobilenet_v2",
        "vit",
        "resnet18",
    ]


@pytest.mark.parametrize("input_shape", INPUT_SHAPES, ids=str)
@pytest.mark.parametrize("name", list_models())
def test_network_predicts_probabilities_and_trains(name, input_shape):
    model = build_model(name, input_shape, NUM_CLASSES, width=WIDTH)
    pixels = random_pixels(input_shape)

    outputs = keras.ops.convert_to_numpy(model(pixels, training=False))
    assert outputs.shape == (BATCH, NUM_CLASSES)
    assert outputs.dtype == np.float32
    assert np.all(outputs >= 0)
    np.testing.assert_allclose(outputs.sum(axis=1), 1.0, atol=1e-5)

    spec = get_spec(name)
    labels = one_hot_labels(NUM_CLASSES)
    if spec.training_setup is None:
        training_model, loss = model, spec.recipe.loss
        inputs = pixels
    else:
        training_model, loss = spec.training_setup(model, NUM_CLASSES)
        inputs = {"pixels": pixels, "labels": labels}
    # Eagerly: tracing a graph for a single step takes up to a minute on a CPU.
    training_model.compile(
        optimizer=make_optimizer(get_recipe(name)), loss=loss, run_eagerly=True
    )
    assert math.isfinite(training_model.train_on_batch(inputs, labels))


@pytest.mark.parametrize("name", list_models())
def test_saved_network_gives_identical_predictions(name, tmp_path):
    input_shape = (32, 32, 3)
    model = build_model(name, input_shape, NUM_CLASSES, width=WIDTH)
    pixels = random_pixels(input_shape)
    path = tmp_path / f"{name}.keras"

    model.save(path)
    restored = keras.saving.load_model(path)

    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(restored(pixels, training=False)),
        keras.ops.convert_to_numpy(model(pixels, training=False)),
    )


def test_capsnet_training_model_shares_weights_and_adds_reconstruction_loss():
    model = build_model("capsnet", (28, 28, 1), NUM_CLASSES, width=WIDTH)
    training_model, loss = get_spec("capsnet").training_setup(model, NUM_CLASSES)
    training_model.compile(optimizer="adam", loss=loss)
    pixels, labels = random_pixels((28, 28, 1)), one_hot_labels(NUM_CLASSES)
    inputs = {"pixels": pixels, "labels": labels}

    training_weights = {id(weight) for weight in training_model.weights}
    assert all(id(weight) in training_weights for weight in model.weights)

    lengths = training_model(inputs)
    margin = float(keras.ops.mean(margin_loss(labels, lengths)))
    total = training_model.evaluate(inputs, labels, verbose=0)
    assert total > margin  # The reconstruction loss is part of the objective.

    before = keras.ops.convert_to_numpy(model(pixels))
    training_model.train_on_batch(inputs, labels)
    assert not np.allclose(keras.ops.convert_to_numpy(model(pixels)), before)


def test_capsnet_training_setup_rejects_wrong_num_classes():
    model = build_model("capsnet", (28, 28, 1), NUM_CLASSES, width=WIDTH)
    with pytest.raises(ValueError, match="num_classes"):
        get_spec("capsnet").training_setup(model, NUM_CLASSES + 1)


def test_margin_loss_is_zero_for_confident_correct_lengths():
    labels = np.array([[0.0, 1.0, 0.0]])
    np.testing.assert_allclose(
        margin_loss(labels, np.array([[0.05, 0.95, 0.1]])), [0.0], atol=1e-7
    )
    # Missing the true class by 0.4 and an absent class exceeding 0.1 by 0.2.
    np.testing.assert_allclose(
        margin_loss(labels, np.array([[0.3, 0.5, 0.0]])),
        [0.4**2 + 0.5 * 0.2**2],
        rtol=1e-6,
    )


@pytest.mark.parametrize("name", list(PARAMETER_RANGES))
def test_authors_networks_have_their_published_size(name):
    low, high = PARAMETER_RANGES[name]
    assert low <= build_model(name, (32, 32, 3), 10).count_params() <= high


def test_unknown_name_raises():
    with pytest.raises(ValueError, match="'alexnet'"):
        build_model("alexnet", (32, 32, 3), 10)


@pytest.mark.parametrize("input_shape", [(32, 32), (32, 32, 3, 1), (0, 32, 3)])
def test_bad_input_shape_raises(input_shape):
    with pytest.raises(ValueError, match="input_shape"):
        build_model("lenet", input_shape, 10)


@pytest.mark.parametrize("width", [0, -0.5])
def test_bad_width_raises(width):
    with pytest.raises(ValueError, match="width"):
        build_model("lenet", (32, 32, 3), 10, width=width)


def test_single_class_raises():
    with pytest.raises(ValueError, match="num_classes"):
        build_model("lenet", (32, 32, 3), 1)


@pytest.mark.parametrize("name", list_models())
def test_recipe_is_consistent(name):
    # Validity is checked by Recipe itself; these are the authors' recipes' own conventions.
    recipe = get_spec(name).recipe
    assert isinstance(recipe, Recipe)
    if recipe.schedule["kind"] == "piecewise":
        boundaries, values = recipe.schedule["boundaries"], recipe.schedule["values"]
        assert values[0] == recipe.learning_rate
        assert all(isinstance(boundary, int) for boundary in boundaries)
        assert 0 < boundaries[0] and boundaries[-1] < recipe.epochs
    assert (recipe.loss == "margin") == (get_spec(name).training_setup is not None)


@pytest.mark.parametrize(
    "name, value",
    [
        ("optimizer", "rmsprop"),
        ("momentum", 1.0),
        ("nesterov", "yes"),
        ("learning_rate", 0),
        ("epochs", 0),
        ("batch_size", 2.5),
        ("weight_decay", -1e-4),
        ("loss", "mse"),
        ("augmentation", None),
        ("source", ""),
        ("schedule", {"kind": "step"}),
        ("schedule", piecewise([100, 150], [0.1, 0.01])),
        ("schedule", {"kind": "exponential"}),
    ],
)
def test_recipe_refuses_invalid_values(name, value):
    arguments = {"source": "test", name: value}
    with pytest.raises(ValueError, match=f"^{name}"):
        Recipe(**arguments)


def test_recipe_config_gives_sgd_settings_to_sgd_only():
    sgd = Recipe(source="test").config()
    adam = Recipe(source="test", optimizer="adam", learning_rate=1e-3).config()
    assert (sgd["momentum"], sgd["nesterov"]) == (0.9, True)
    assert "momentum" not in adam and "nesterov" not in adam
    assert set(sgd) == {field.name for field in dataclasses.fields(Recipe)}


def test_get_recipe_returns_a_copy():
    get_recipe("lenet")["schedule"]["values"].append(1.0)
    assert get_recipe("lenet")["schedule"]["values"] == [0.01, 0.005, 0.001]


@pytest.mark.parametrize("name", list_models())
def test_recipe_source_names_its_origin(name):
    origin = "rzs addition" if name in RZS_ADDITIONS else "Authors' code"
    assert get_spec(name).recipe.source.startswith(origin)
