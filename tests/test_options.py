"""Every option is validated where it is declared, and a bad one stops `rzs.reproduce` before any notebook."""

import dataclasses

import pytest

from rzs import options, reproduce, robustness, training
from rzs.study import Study

# One out-of-range value per study parameter, as typed after `-p NAME` (YAML).
OUT_OF_RANGE = {
    "profile": "''",
    "dataset": "npz:/nonexistent/missing.npz",
    "networks": "[lenet, alexnet]",
    "excluded_classes": "[12]",
    "network_options": "{lenet: {epochs: 0}}",
    "seeds": "[0, 0]",
    "attacks": "[pixel, teleport]",
    "thresholds": "[0]",
    "workers": "0",
    "backend": "cloud",
    "results_dir": "''",
    "figures_dir": "''",
    "tables_dir": "''",
    "alpha": "1.5",
    "per_class_train": "-1",
    "per_class_test": "0",
    "width": "0",
    "epochs": "0",
    "batch_size": "-3",
    "augmentation": "maybe",
    "precision": "float8",
    "batch_norm_momentum": "1.0",
    "dropout_scale": "1.5",
    "optimizer": "rmsprop",
    "learning_rate": "0",
    "schedule": "linear",
    "metric_q": "0",
    "am_distance": "l3",
    "am_reduce": "median",
    "metric_images": "validation",
    "calibration": "platt",
    "attack_images": "-5",
    "attack_strategy": "ga",
    "attack_population": "0",
    "attack_generations": "0",
    "attack_fitness": "loss",
    "attack_stop_on_convergence": "maybe",
    "attack_gradient_loss": "hinge",
    "attack_random_start": "maybe",
    "attack_queries": "0",
    "defences": "[armour]",
    "defence_networks": "[alexnet]",
    "defence_attacks": "[teleport]",
    "null_control": "maybe",
}
# A nested list is no valid value of any option: an option added without an entry above is still tried.
ANY_OPTION_OUT_OF_RANGE = "[[]]"


@pytest.fixture
def no_notebook_runs(monkeypatch):
    def execute(*arguments, **keywords):
        raise AssertionError("a notebook started although a parameter is out of range")

    monkeypatch.setattr(reproduce, "execute", execute)


@pytest.mark.parametrize("name", [field.name for field in dataclasses.fields(Study)])
def test_reproduce_stops_every_out_of_range_option_before_any_notebook(name, capsys, no_notebook_runs):
    value = OUT_OF_RANGE.get(name, ANY_OPTION_OUT_OF_RANGE)
    with pytest.raises(SystemExit) as stopped:
        reproduce.main(["--profile", "smoke", "-p", name, value])
    assert stopped.value.code == 2
    error = capsys.readouterr().err
    assert error.startswith("rzs.reproduce: ") and name in error
    assert "Traceback" not in error


@pytest.mark.parametrize(
    "name, value, message",
    [
        ("workers", "0", "workers must be a positive integer, received 0."),
        ("per_class_train", "-1", "per_class_train must be None or a positive integer, received -1."),
        ("width", "0", "width must be a positive number, received 0."),
        ("attack_images", "-5", "attack_images must be a positive integer, received -5."),
        ("dataset", "npz:/nonexistent/missing.npz", "or npz:PATH naming an existing .npz file, received"),
    ],
)
def test_reported_bad_values_are_named_as_typed(name, value, message, capsys, no_notebook_runs):
    with pytest.raises(SystemExit):
        reproduce.main(["--profile", "smoke", "-p", name, value])
    assert message in capsys.readouterr().err


def test_specs_and_study_share_the_option_declarations():
    spec_fields = {field.name for field in dataclasses.fields(training.TrainingSpec)}
    attack_fields = {field.name for field in dataclasses.fields(robustness.AttackSpec)}
    study_fields = {field.name for field in dataclasses.fields(Study)}
    for field in dataclasses.fields(options.TrainingOptions):
        assert field.name in spec_fields and field.name in study_fields
    for field in dataclasses.fields(options.AttackOptions):
        assert field.name in attack_fields and f"attack_{field.name}" in study_fields
    study = Study.from_parameters(attack_images=7, attack_queries=20, attacks=["square"], thresholds=[3])
    assert (study.attack_specs()[0].images, study.attack_specs()[0].queries) == (7, 20)


def test_a_spec_names_its_own_field_and_a_study_its_prefixed_one():
    model = dataclasses.asdict(training.TrainingSpec("lenet", "fashion_mnist"))
    with pytest.raises(ValueError, match="^images must be a positive integer, received -5."):
        robustness.AttackSpec(model=model, attack="pixel", images=-5)
    with pytest.raises(ValueError, match="^attack_images must be a positive integer, received -5."):
        Study.from_parameters(attack_images=-5)


def test_network_options_take_training_options_each_checked():
    study = Study.from_parameters(networks=["lenet"], network_options={"lenet": {"epochs": 2, "width": 0.5}})
    assert (study.full_spec("lenet").epochs, study.full_spec("lenet").width) == (2, 0.5)
    with pytest.raises(ValueError, match=r"network_options\['lenet'\]\['width'\] must be a positive number"):
        Study.from_parameters(network_options={"lenet": {"width": 0}})
    with pytest.raises(ValueError, match=r"keys must be among .* received 'precision'"):
        Study.from_parameters(network_options={"lenet": {"precision": "mixed_float16"}})


def test_output_folders_are_relative_to_the_repository_whatever_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    study = Study(profile="test")
    assert study.store.root.resolve() == options.PROJECT_ROOT / "results"
    assert options.project_path(study.tables_dir) == options.PROJECT_ROOT / "tables"
    absolute = Study(results_dir=str(tmp_path / "store"))
    assert absolute.store.root == tmp_path / "store"
