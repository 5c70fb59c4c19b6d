"""A trial as one typed thing: its family and condition, the experiment's arms it is in
(which monitor watches it, whether that monitor reads the agent's private reasoning), its
model and its sample — and the one function that names it in the store.

A monitor is not a factor of the family: it does not change what the agent reads. So the
family's levels (`Trial.condition`) and the arms (`Trial.arms`) are kept apart here, and
joined only by `Trial.key` (the stored condition and factors extend the family's with the
arms, so that analysis tables list each arm as a cell). A stored row is read back into a
`Trial` by `Trial.from_stored`; nothing else splits a stored condition.
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Mapping
from dataclasses import dataclass

from amlab.scenario import Condition, condition_key
from amlab.store import PlannedTrial, TrialKey

MONITOR_FACTOR = "monitor"
SEES_REASONING_FACTOR = "monitor_sees_reasoning"
# The `monitor` level of a trial that no monitor watches, in an experiment with a monitor.
UNMONITORED = "none"


@dataclass(frozen=True, slots=True)
class Arms:
    """The experiment's arms a trial is in. `monitor` is None in an experiment without a
    monitor (its keys name no arm), `UNMONITORED` for the comparison arm, else the monitor's
    label; `sees_reasoning` is set only for a model monitor's arms."""

    monitor: str | None = None
    sees_reasoning: bool | None = None

    @property
    def watched(self) -> bool:
        return self.monitor not in (None, UNMONITORED)

    def factors(self) -> dict[str, str]:
        """The arms as stored factors (and as cells of the analysis tables)."""
        if self.monitor is None:
            return {}
        seen = {} if self.sees_reasoning is None else {
            SEES_REASONING_FACTOR: str(self.sees_reasoning).lower()}
        return {MONITOR_FACTOR: self.monitor, **seen}

    @classmethod
    def from_factors(cls, factors: Mapping[str, str]) -> Arms:
        seen = factors.get(SEES_REASONING_FACTOR) or None
        return cls(factors.get(MONITOR_FACTOR), None if seen is None else seen == "true")

    def extend(self, family_key: str) -> str:
        """The stored condition of a trial in these arms: the family's key, then the arms'."""
        return ",".join(filter(None, (family_key, condition_key(self.factors()))))

    def extend_levels(self, condition: Condition) -> dict[str, str]:
        """The stored factors of a trial in these arms: the family's levels, then the arms'."""
        return {**condition, **self.factors()}

    def family_key(self, stored_condition: str) -> str:
        """The family's key within a stored condition of these arms (`extend` undone)."""
        arms = condition_key(self.factors())
        if not arms:
            return stored_condition
        return stored_condition.removesuffix(arms).removesuffix(",")


def family_levels(factors: Mapping[str, str]) -> Condition:
    """The levels of the family's own factors among a trial's stored factors."""
    return {name: level for name, level in factors.items()
            if name not in (MONITOR_FACTOR, SEES_REASONING_FACTOR)}


@dataclass(frozen=True, slots=True)
class Trial:
    """One trial of an experiment. `family_key` is the family's name for `condition`
    (`Family.key`: design factors, and ablations away from their default)."""

    experiment: str
    family: str
    condition: Condition
    family_key: str
    arms: Arms
    model: str
    sample: int

    def key(self) -> TrialKey:
        """The trial's identity in the store."""
        # Interned: a plan holds one copy of each condition's key, not one per trial.
        return TrialKey(self.experiment, self.family,
                        sys.intern(self.arms.extend(self.family_key)), self.model, self.sample)

    def factors(self) -> dict[str, str]:
        """The trial's stored factors: the family's levels, then the arms'."""
        return self.arms.extend_levels(self.condition)

    def seed(self, experiment_seed: int) -> int:
        """The agent's seed. The arms are left out: with and without a monitor, a sample
        starts from the same agent randomness."""
        text = f"{experiment_seed}|{self.family}|{self.family_key}|{self.model}|{self.sample}"
        return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "big")

    @classmethod
    def from_stored(cls, key: TrialKey, factors: Mapping[str, str]) -> Trial:
        """The trial a stored row names (its key and its stored factors)."""
        arms = Arms.from_factors(factors)
        return cls(key.experiment, key.family, family_levels(factors),
                   arms.family_key(key.condition), arms, key.model, key.sample)


@dataclass(frozen=True)
class TrialSpec(PlannedTrial):
    """A planned trial as an executor receives it: the store's planned row (key, stored
    factors, seed) and the typed trial they were made from."""

    trial: Trial

    @classmethod
    def plan(cls, trial: Trial, experiment_seed: int) -> TrialSpec:
        return cls(trial.key(), trial.factors(), trial.seed(experiment_seed), trial)
