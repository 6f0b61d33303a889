"""The paper's defences against adversarial attacks, by name.

    defence = rzs.defences.get_defence("spatial_smoothing")
    spec = rzs.training.TrainingSpec("lenet", "cifar10", defence=defence.name)

Input-transforming defences (feature squeezing, spatial smoothing, JPEG
compression, thermometer encoding, total-variance minimisation) become a
layer in front of the network (`input_stages`, `total_variance`); the others
change training (`training_data`, `adversarial_training`). `catalog` registers
them with the authors' settings; names ending in `_test` are the test-time-only
variants that reuse the vanilla network's weights.
"""

from rzs.defences import catalog  # noqa: F401  (registers the defences)
from rzs.defences.registry import DEFENCES, Defence, get_defence, list_defences, with_input_stage

__all__ = ["DEFENCES", "Defence", "get_defence", "list_defences", "with_input_stage"]
