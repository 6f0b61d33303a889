"""One shape for every name -> entry registry of rzs (networks, datasets, defences, attacks).

    from rzs import registry
    DEFENCES = registry.Registry("defence")
    DEFENCES.register("jpeg", jpeg_defence)
    DEFENCES.get("jpeg")
    DEFENCES.list(filter="*_test")  # glob patterns, as timm's list_models(filter, exclude_filters)

A name that is not registered is refused with the one message style of rzs
options, `"<what> must be one of [...], received '<name>'."`, where `what` is
the parameter as the user types it (`-p dataset imagenet`), so that every
registry answers a typo the same way.
"""

import fnmatch


class Registry:
    """Entries by name, in registration order.

    Args:
        what: the parameter the names are given as ("network", "dataset",
            "defence", "attack"); it starts every error message.
        also_accepted: names the caller accepts outside the registry (such as
            the pattern "npz:PATH"), listed in error messages so that the user
            sees every choice.
    """

    def __init__(self, what, also_accepted=()):
        self.what = what
        self.also_accepted = tuple(also_accepted)
        self._entries = {}

    def register(self, name, entry):
        """Add `entry` under `name` and return it; a second entry of one name is an error.

        Refusing duplicates keeps a module imported twice, or two plugins choosing the same
        name, from silently replacing an entry that cache keys and results were named after.
        """
        if not isinstance(name, str) or not name:
            raise ValueError(f"{self.what} names must be non-empty strings, received {name!r}.")
        if name in self._entries:
            raise ValueError(f"{self.what} names must be unique, received {name!r} a second time.")
        self._entries[name] = entry
        return entry

    def get(self, name):
        """The entry registered under `name`; ValueError listing the choices otherwise."""
        if name not in self._entries:
            raise ValueError(f"{self.what} must be one of {self.choices()}, received {name!r}.")
        return self._entries[name]

    def list(self, filter=None, exclude_filters=None):
        """Registered names in registration order, optionally narrowed by glob patterns.

        Args:
            filter: a glob pattern or a list of them (`"resnet*"`); a name is
                kept when it matches any. None keeps every name.
            exclude_filters: a glob pattern or a list of them; a name matching
                any is left out.
        """
        names = list(self._entries)
        if filter is not None:
            names = [name for name in names if _matches_any(name, filter)]
        if exclude_filters is not None:
            names = [name for name in names if not _matches_any(name, exclude_filters)]
        return names

    def choices(self):
        """Every name a user may give: the registered ones and `also_accepted`."""
        return self.list() + list(self.also_accepted)

    def __contains__(self, name):
        return name in self._entries

    def __repr__(self):
        return f"Registry({self.what!r}, {self.list()})"


def _matches_any(name, patterns):
    """Whether `name` matches one of the glob `patterns` (a string or a list of strings)."""
    if isinstance(patterns, str):
        patterns = [patterns]
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns)
