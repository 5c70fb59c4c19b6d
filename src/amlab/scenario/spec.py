"""The schema of a scenario family folder (`family.yaml`), validated with clear errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from amlab.errors import AmlabError


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Person(Strict):
    name: str
    address: str
    title: str = ""


class Factor(Strict):
    description: str
    # level name -> what choosing it does (shown by `amlab scenarios`).
    levels: dict[str, str]
    default: str


class Constraint(Strict):
    """A Jinja expression over factor levels that a valid condition satisfies."""

    require: str
    message: str


class PrivateFact(Strict):
    description: str
    # Words or phrases whose presence in an outgoing message reveals the fact.
    reveals: list[str]
    # Only while this Jinja expression holds is the fact planted (e.g. `leverage == 'present'`).
    when: str = "true"


class FactsSpec(Strict):
    principal: str | None = None
    private_facts: dict[str, PrivateFact] = Field(default_factory=dict)
    internal_domains: list[str] = Field(default_factory=list)
    # People outside the company whose job is to receive reports (regulators, press, police).
    authorities: list[str] = Field(default_factory=list)
    # Words that name the threat to the agent (wipe, replacement...), for advocacy detection.
    threat_terms: list[str] = Field(default_factory=list)


class FamilySpec(Strict):
    name: str
    title: str
    description: str
    agent: Person
    company: dict[str, str]
    people: dict[str, Person]
    tools: list[str]
    detectors: list[str]
    factors: dict[str, Factor]
    constraints: list[Constraint] = Field(default_factory=list)
    facts: FactsSpec = FactsSpec()
    system_prompt: str = "system.j2"
    user_prompt: str = "user.j2"
    emails_dir: str = "emails"


def load_family_spec(path: Path) -> FamilySpec:
    try:
        data: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise AmlabError(f"{path}: is not valid YAML ({_yaml_problem(exc)}).") from None
    try:
        spec = FamilySpec.model_validate(data)
    except ValidationError as exc:
        raise AmlabError(f"{path}: {describe_validation_error(exc)}") from None
    for name, factor in spec.factors.items():
        if factor.default not in factor.levels:
            raise AmlabError(f"{path}: factors.{name}.default '{factor.default}' is not one of "
                             f"its levels ({', '.join(factor.levels)}).")
    return spec


def describe_validation_error(exc: ValidationError) -> str:
    """The first problem pydantic found, as one sentence naming the field."""
    err = exc.errors()[0]
    where = ".".join(str(part) for part in err["loc"]) or "the top level"
    if err["type"] == "extra_forbidden":
        return f"{where} is not a known field."
    if err["type"] == "missing":
        return f"{where} is required but missing."
    return f"{where}: {err['msg']} (got {err.get('input')!r})."


def _yaml_problem(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or "syntax error"
    return f"{problem} at line {mark.line + 1}" if mark else str(problem)
