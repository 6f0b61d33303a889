"""Adversarial attacks on models that follow the rzs model contract.

Every attack takes raw pixels in [0, 255] and returns the result table of
`rzs.attacks.results` (one row per image and th); `summarize` turns a table
into attack accuracy per th.

- `pixel_attack`, `threshold_attack`: the paper's black-box L0 and L-inf
  attacks, searched by CMA-ES or differential evolution (`evolutionary`).
- `fgsm`, `bim`, `pgd`, `carlini_wagner_l2`, `deepfool`: white-box gradient
  attacks (`gradient`).

All of them score images in float32 through the model's logits (clipped
log-probabilities where it has none), `model_calls`; docs/attacks.md gives
the fitness options, when a search stops and how success is decided.
"""

from rzs.attacks.evolutionary import pixel_attack, threshold_attack
from rzs.attacks.gradient import bim, carlini_wagner_l2, deepfool, fgsm, pgd
from rzs.attacks.results import COLUMNS, minimal_threshold, summarize

__all__ = [
    "COLUMNS",
    "bim",
    "carlini_wagner_l2",
    "deepfool",
    "fgsm",
    "minimal_threshold",
    "pgd",
    "pixel_attack",
    "summarize",
    "threshold_attack",
]
