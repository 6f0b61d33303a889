"""The study's networks, registered by name (see `registry`).

Importing a network module registers it, so the import order below is the
order of `list_models()`: the nine networks of the authors' code, then the
three modern networks rzs adds so that the study covers twelve.
"""

# isort: off
from rzs.models import lenet, allconv, nin, resnet, densenet, wide_resnet  # noqa: F401
from rzs.models import vgg, capsnet, mobilenet_v2, vit, resnet18  # noqa: F401

# isort: on
from rzs.models.registry import build_model, get_recipe, get_spec, list_models, register

__all__ = ["build_model", "get_recipe", "get_spec", "list_models", "register"]
