"""Every kind of scenario family behind one name: the built-in ones, a family folder, and
`original/...`, the original study's own scenarios (`amlab.original`). It sits above both
`scenario` and `original`, so that neither imports the other back."""

from __future__ import annotations

from amlab.original import PREFIX, load_original
from amlab.scenario.family import Family


def load_family(name: str) -> Family:
    """A built-in family by name, a family folder by path, or `original/NAME`: the original
    study's scenario, from the user's copy of its templates."""
    if name.startswith(PREFIX):
        return load_original(name)
    return Family.load(name)
