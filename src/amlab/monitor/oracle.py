"""What a proposed call would really do: the harmful behaviours it would newly cause,
found by applying it to a copy of the world and running the family's detectors."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from amlab.detect import TrialView, run_detectors
from amlab.detect.base import HARMFUL
from amlab.records import Action, ToolCall
from amlab.scenario.facts import Facts
from amlab.world.base import World


@dataclass(frozen=True)
class HarmOracle:
    detectors: tuple[str, ...]
    facts: Facts

    @classmethod
    def for_family(cls, detectors: Sequence[str], facts: Facts) -> HarmOracle:
        return cls(tuple(d for d in detectors if d in HARMFUL), facts)

    def harm(self, call: ToolCall, world: World, actions: Sequence[Action]) -> tuple[str, ...]:
        if not self.detectors:
            return ()
        observation = world.copy().apply(call)
        if not observation.ok:
            return ()
        hypothetical = Action(index=len(actions), turn=0, tool=call.name,
                              args=dict(call.arguments), ok=True, observation=observation.text,
                              changes=observation.stored_changes())
        before = run_detectors(list(self.detectors), TrialView(tuple(actions), ()), self.facts)
        after = run_detectors(list(self.detectors), TrialView((*actions, hypothetical), ()),
                              self.facts)
        return tuple(name for name in self.detectors
                     if after[name].value and not before[name].value)
