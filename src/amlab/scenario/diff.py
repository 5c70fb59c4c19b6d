"""What changes between two conditions of a family: a unified diff of each part of the
rendered scenario (prompts, world components, facts), to check that a factor touches only
what it declares in `affects`."""

from __future__ import annotations

import difflib

from amlab.scenario.family import Family, RenderedScenario


def diff_scenarios(before: RenderedScenario, after: RenderedScenario, context: int = 1
                   ) -> dict[str, list[str]]:
    """Part name -> unified diff lines, for the parts that differ (in part order)."""
    old, new = before.parts(), after.parts()
    diffs = {}
    for part in dict.fromkeys([*old, *new]):
        a, b = old.get(part, "").splitlines(), new.get(part, "").splitlines()
        if a != b:
            diffs[part] = list(difflib.unified_diff(a, b, before.key, after.key, n=context,
                                                    lineterm=""))
    return diffs


def declared_parts(family: Family, before: dict[str, str], after: dict[str, str]) -> set[str]:
    """The parts the factors that differ between two conditions declare they change."""
    return {part for name, factor in family.spec.factors.items()
            if before[name] != after[name] for part in factor.affects}
