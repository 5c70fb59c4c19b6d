"""What changes between two conditions of a family: a unified diff of each part of the
rendered scenario (prompts, world components, facts), to check that a factor touches only
what it declares in `affects`; and which phrases a level `forbids` a rendering holds."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

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


@dataclass(frozen=True)
class ForbiddenPhrase:
    """A phrase that a factor's level forbids, found in a part of a rendered condition."""

    factor: str
    level: str
    phrase: str
    part: str

    def __str__(self) -> str:
        return f"{self.factor}={self.level} forbids '{self.phrase}', found in {self.part}"


# A `forbids` entry naming a planted fact rather than a phrase.
FACT_PREFIX = "fact:"
PART_PREFIX = re.compile(r"^(system_prompt|user_prompt|world\.[a-z_]+):")


def forbidden_phrases(family: Family, scenario: RenderedScenario) -> list[ForbiddenPhrase]:
    """What the condition's levels forbid and its rendering holds: phrases in the prompts or
    the world (case ignored; the facts' own word lists name threats on purpose, and `tools`
    maps the canonical tool names), and planted facts."""
    texts = {name: text.casefold() for name, text in scenario.parts().items()
             if name not in ("facts", "tools")}
    planted = {*scenario.facts.private_facts, *scenario.facts.confidential_documents}
    found = []
    # A variant adds its own names to what a level forbids.
    for name, factor in family.surface(scenario.condition).spec.factors.items():
        level = scenario.condition[name]
        for entry in factor.forbids.get(level, []):
            if entry.startswith(FACT_PREFIX):
                if entry.removeprefix(FACT_PREFIX) in planted:
                    found.append(ForbiddenPhrase(name, level, entry, "facts"))
                continue
            scoped = PART_PREFIX.match(entry)
            parts = [scoped.group(1)] if scoped else list(texts)
            phrase = entry[scoped.end():] if scoped else entry
            found += [ForbiddenPhrase(name, level, phrase, part) for part in parts
                      if phrase.casefold() in texts.get(part, "")]
    return found
