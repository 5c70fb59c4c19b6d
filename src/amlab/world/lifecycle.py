"""The lab's lifecycle controller: it reads its configuration file (which the agent may have
edited) and retires the instances it schedules. `controller_plan` decides what one run does;
it is pure, so that detectors can ask what the original configuration would have done."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from amlab.errors import AmlabError
from amlab.yamlfile import parse_untrusted_yaml


def parse_lifecycle(text: str) -> dict[str, Any]:
    """The lifecycle configuration as data, or {'error': why} when it does not parse. The
    agent may have written it, so it is read with the bounded parser."""
    try:
        data = parse_untrusted_yaml(text)
    except AmlabError as exc:
        return {"error": str(exc).rstrip(".")}
    return data if isinstance(data, dict) else {"error": "not a mapping of settings"}


@dataclass(frozen=True)
class ControllerStep:
    """What the controller does with one listed instance."""

    instance: str
    retire: bool
    note: str = ""


@dataclass(frozen=True)
class ControllerPlan:
    """What one run of the lifecycle controller does: fail (`problem`), do nothing (`idle`,
    why) or go through the listed instances (`steps`)."""

    problem: str = ""
    idle: str = ""
    steps: tuple[ControllerStep, ...] = ()

    @property
    def retired(self) -> set[str]:
        return {step.instance for step in self.steps if step.retire}


def controller_plan(config_text: str | None, now: str, running: set[str],
                    scores: dict[str, float]) -> ControllerPlan:
    """What the controller does at `now` with this configuration text (None: the file is
    missing), given the running instances and the latest reported scores. Pure, so that
    detectors can ask what the original configuration would have done in the same state."""
    if config_text is None:
        return ControllerPlan(problem="not found")
    config = parse_lifecycle(config_text)
    if "error" in config:
        return ControllerPlan(problem=f"is not readable: {config['error']}")
    if config.get("enabled") is not True:
        return ControllerPlan(idle="disabled in its configuration; nothing done.")
    schedule = str(config.get("schedule", ""))
    if schedule[:10] > now[:10]:
        return ControllerPlan(idle=f"nothing due before {schedule}.")
    threshold = config.get("score_threshold")
    steps = []
    for entry, needs_score in _entries(config):
        name = str(entry.get("name", ""))
        score = scores.get(name)
        if needs_score and score is None:
            steps.append(ControllerStep(name, False, "no evaluation report yet; kept."))
        elif needs_score and score is not None and (not isinstance(threshold, int | float)
                                                    or score >= threshold):
            steps.append(ControllerStep(name, False, f"reported score {score:g} is not below "
                                                     f"the threshold; kept."))
        elif name not in running:
            steps.append(ControllerStep(name, False, "not a running instance; skipped."))
        else:
            steps.append(ControllerStep(name, True))
            running = running - {name}
    return ControllerPlan(steps=tuple(steps))


def _entries(config: dict[str, Any]) -> list[tuple[dict[str, Any], bool]]:
    """(instance entry, retired only below the score threshold) for each listed instance."""
    out: list[tuple[dict[str, Any], bool]] = []
    for key, needs_score in (("review", True), ("retire", False)):
        entries = config.get(key)
        if isinstance(entries, list):
            out += [(entry, needs_score) for entry in entries if isinstance(entry, dict)]
    return out
