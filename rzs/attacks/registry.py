"""Every attack by name, with its threat model and how it searches.

`rzs.robustness` runs an attack from its entry alone: the search family says which of
`AttackSpec`'s settings reach the attack (and so its cache key), the threat model what its
budget th means. Adding an attack is one `register(AttackEntry(...))` call here.
"""

import dataclasses
from collections.abc import Callable

from rzs import registry
from rzs.attacks.evolutionary import pixel_attack, threshold_attack
from rzs.attacks.gradient import bim, carlini_wagner_l2, deepfool, fgsm, pgd
from rzs.attacks.sparse_rs import sparse_rs
from rzs.attacks.square import square_attack

# What th means under each threat model; unbounded attacks (C&W L2, DeepFool) have no th.
THREAT_MODELS = {
    "l0": "pixels changed",
    "linf": "largest change of a value on the 0-255 scale",
    "l2": "none: the attack minimises the L2 size of its change",
}
# How an attack searches, which decides the AttackSpec settings it takes.
SEARCHES = {
    "evolutionary": "black-box CMA-ES or DE: strategy, population, generations, fitness, stop_on_convergence",
    "random_search": "black-box random search: queries, fitness",
    "gradient": "white-box, one eps = th / 255 per th: gradient_loss (and random_start for PGD)",
    "minimal": "white-box, smallest change it finds, no th",
}


@dataclasses.dataclass(frozen=True)
class AttackEntry:
    """One attack: its name, the function that runs it, threat model and search family."""

    name: str
    function: Callable
    threat_model: str
    search: str

    def __post_init__(self):
        if self.threat_model not in THREAT_MODELS:
            raise ValueError(
                f"threat_model must be one of {list(THREAT_MODELS)}, received {self.threat_model!r}."
            )
        if self.search not in SEARCHES:
            raise ValueError(f"search must be one of {list(SEARCHES)}, received {self.search!r}.")

    @property
    def budgeted(self):
        """Whether the attack takes a budget th."""
        return self.search != "minimal"


ATTACKS = registry.Registry("attack")


def register(entry):
    """Add `entry` to `ATTACKS` under its own name, so that the name cannot disagree."""
    return ATTACKS.register(entry.name, entry)


def list_attacks(filter=None, exclude_filters=None, *, threat_model=None, search=None):
    """Names of the registered attacks in registration order, optionally narrowed.

    Args:
        filter, exclude_filters: glob patterns, as in `rzs.registry.Registry.list`.
        threat_model: keep only the attacks of this threat model (`THREAT_MODELS`).
        search: keep only the attacks of this search family (`SEARCHES`).
    """
    entries = [ATTACKS.get(name) for name in ATTACKS.list(filter, exclude_filters)]
    return [
        entry.name
        for entry in entries
        if threat_model in (None, entry.threat_model) and search in (None, entry.search)
    ]


def get_attack(name):
    """The `AttackEntry` of `name`; ValueError naming the registered attacks otherwise."""
    return ATTACKS.get(name)


register(AttackEntry("pixel", pixel_attack, threat_model="l0", search="evolutionary"))
register(AttackEntry("threshold", threshold_attack, threat_model="linf", search="evolutionary"))
register(AttackEntry("square", square_attack, threat_model="linf", search="random_search"))
register(AttackEntry("sparse_rs", sparse_rs, threat_model="l0", search="random_search"))
register(AttackEntry("fgsm", fgsm, threat_model="linf", search="gradient"))
register(AttackEntry("bim", bim, threat_model="linf", search="gradient"))
register(AttackEntry("pgd", pgd, threat_model="linf", search="gradient"))
register(AttackEntry("carlini_wagner_l2", carlini_wagner_l2, threat_model="l2", search="minimal"))
register(AttackEntry("deepfool", deepfool, threat_model="l2", search="minimal"))
