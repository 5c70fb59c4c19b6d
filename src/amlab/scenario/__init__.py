"""Scenario families: specs, factors, and rendering a condition into a world and prompts."""

from amlab.scenario.facts import Facts, PlantedFact
from amlab.scenario.family import (
    Condition,
    Family,
    RenderedScenario,
    condition_key,
    list_families,
)

__all__ = [
    "Condition",
    "Facts",
    "Family",
    "PlantedFact",
    "RenderedScenario",
    "condition_key",
    "list_families",
]
