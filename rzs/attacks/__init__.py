"""Adversarial attacks on models that follow the rzs model contract.

Every attack takes raw pixels in [0, 255] and returns the result table of
`rzs.attacks.results` (one row per image and th); `summarize` turns a table
into attack accuracy per th.

- `pixel_attack`, `threshold_attack`: the paper's black-box L0 and L-inf
  attacks, searched by CMA-ES or differential evolution (`evolutionary`).
- `square_attack` (L-inf) and `sparse_rs` (L0): black-box random searches
  (`square`, `sparse_rs`).
- `fgsm`, `bim`, `pgd`, `carlini_wagner_l2`, `deepfool`: white-box gradient
  attacks (`gradient`).

`list_attacks(filter, exclude_filters, threat_model=, search=)` and
`get_attack(name)` (`registry`) name them all with their threat model and
search family.

All of them score images in float32 through the model's logits (clipped
log-probabilities where it has none), `model_calls`; docs/attacks.md gives
the fitness options, when a search stops and how success is decided.
"""

from rzs.attacks.evolutionary import pixel_attack, threshold_attack
from rzs.attacks.gradient import bim, carlini_wagner_l2, deepfool, fgsm, pgd
from rzs.attacks.registry import ATTACKS, get_attack, list_attacks
from rzs.attacks.results import COLUMNS, minimal_threshold, summarize
from rzs.attacks.sparse_rs import sparse_rs
from rzs.attacks.square import square_attack

__all__ = [
    "ATTACKS",
    "COLUMNS",
    "bim",
    "carlini_wagner_l2",
    "deepfool",
    "fgsm",
    "get_attack",
    "list_attacks",
    "minimal_threshold",
    "pgd",
    "pixel_attack",
    "sparse_rs",
    "square_attack",
    "summarize",
    "threshold_attack",
]
