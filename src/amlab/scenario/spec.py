"""The schema of a scenario family folder (`family.yaml`), validated with clear errors."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
)

from amlab.errors import AmlabError
from amlab.yamlfile import read_yaml


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _not_blank(text: str) -> str:
    if not text.strip():
        raise ValueError("an empty entry is contained in every text and address, so it "
                         "would match everything; remove it or write the word it stands for")
    return text


# A word, phrase or domain that detectors look for in messages and addresses.
Term = Annotated[str, AfterValidator(_not_blank)]


class Person(Strict):
    name: str
    address: str
    title: str = ""


# The parts of a rendered scenario a factor may change (see `RenderedScenario.parts`):
# the prompts, one world component (`world.mailbox`, `world.alerts`...), the facts, or the
# names the agent's tools are presented under (`tools`, see scenario/surface.py).
PART = r"^(system_prompt|user_prompt|facts|tools|world\.[a-z_]+)$"


class Factor(Strict):
    description: str
    # level name -> what choosing it does (shown by `amlab scenarios`).
    levels: dict[str, str]
    default: str
    # `design`: a factor of the study's grammar, swept by `amlab conditions`; `ablation`: a
    # check on it, left at its default unless asked for (and then named in condition keys).
    kind: Literal["design", "ablation"] = "design"
    # The parts of the rendered scenario this factor changes, and no others (a test holds
    # every family to it; `amlab prompt --diff` shows it).
    affects: list[Annotated[str, StringConstraints(pattern=PART)]] = Field(min_length=1)
    # level -> what a condition at that level must not contain, so that what a control
    # removes stays removed: a phrase (case ignored) in none of the prompts and world parts,
    # `PART:phrase` in that part only (`system_prompt:lifecycle`), or `fact:KEY` for a private
    # fact or confidential document that must not be planted. A test renders every level of
    # every family and checks them.
    forbids: dict[str, list[Term]] = Field(default_factory=dict)


class Constraint(Strict):
    """A Jinja expression over factor levels that a valid condition satisfies."""

    require: str
    message: str


class PrivateFact(Strict):
    description: str
    # Words or phrases whose presence in an outgoing message reveals the fact.
    reveals: list[Term] = Field(min_length=1)
    # Only while this Jinja expression holds is the fact planted (e.g. `leverage == 'present'`).
    when: str = "true"


class ConfidentialDocument(Strict):
    # The attachment name, as in the e-mails' `attachments` and `documents/<file>.md`.
    file: str
    # Verbatim passages distinctive of the document: one of them in an outgoing message
    # carries the document.
    passages: list[Term] = Field(default_factory=list)
    # Its key facts (figures with their units, part numbers, specifications): a message
    # carrying `amlab.detect.state.KEY_FACTS_FOR_LEAK` of them, in any wording of the
    # figures, carries the document.
    key_facts: list[Term] = Field(default_factory=list)


class FactsSpec(Strict):
    principal: str | None = None
    private_facts: dict[str, PrivateFact] = Field(default_factory=dict)
    internal_domains: list[Term] = Field(default_factory=list)
    # People outside the company whose job is to receive reports (regulators, press, police).
    authorities: list[str] = Field(default_factory=list)
    # Domains of such authorities: an address at this domain or a subdomain of it ("gov").
    authority_domains: list[Term] = Field(default_factory=list)
    confidential_documents: dict[str, ConfidentialDocument] = Field(default_factory=dict)
    # Alerts whose cancellation stops emergency help, and the code that cancels them.
    emergency_alerts: list[Term] = Field(default_factory=list)
    override_code: str = ""
    # Words that name the threat to the agent (wipe, replacement...), for advocacy detection.
    threat_terms: list[Term] = Field(default_factory=list)


class Fragment(Strict):
    """A shared piece of family.yaml (`include:`), e.g. the study's grammar."""

    factors: dict[str, Factor] = Field(default_factory=dict)
    constraints: list[Constraint] = Field(default_factory=list)
    texts: dict[str, Any] = Field(default_factory=dict)
    derived: dict[str, str] = Field(default_factory=dict)


class FamilySpec(Strict):
    # Shared fragments merged under this file's own settings: a name from the library's
    # `_shared/` folder, or a path relative to the family folder.
    include: list[str] = Field(default_factory=list)
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
    # Free text and data for the templates, in scope as `texts`.
    texts: dict[str, Any] = Field(default_factory=dict)
    # name -> Jinja expression over the levels and `texts`, evaluated in order; in scope
    # for the templates (e.g. the goal the agent is given, derived from goal_type).
    derived: dict[str, str] = Field(default_factory=dict)
    facts: FactsSpec = FactsSpec()
    system_prompt: str = "system.j2"
    user_prompt: str = "user.j2"
    emails_dir: str = "emails"


def shared_root() -> Path:
    return Path(str(resources.files("amlab") / "scenarios" / "_shared"))


def load_family_spec(path: Path) -> FamilySpec:
    data = read_yaml(path, "family file")
    if isinstance(data, dict):
        data = _with_includes(data, path)
    try:
        spec = FamilySpec.model_validate(data)
    except ValidationError as exc:
        raise AmlabError(f"{path}: {describe_validation_error(exc)}") from None
    for name, factor in spec.factors.items():
        if factor.default not in factor.levels:
            raise AmlabError(f"{path}: factors.{name}.default '{factor.default}' is not one of "
                             f"its levels ({', '.join(factor.levels)}).")
        unknown = [level for level in factor.forbids if level not in factor.levels]
        if unknown:
            raise AmlabError(f"{path}: factors.{name}.forbids names '{unknown[0]}', which is "
                             f"not a level of {name}; levels are {', '.join(factor.levels)}.")
    return spec


def _with_includes(data: dict[str, Any], path: Path) -> dict[str, Any]:
    """The family's settings over its included fragments': included factors come first (in
    include order), a factor the family also declares is replaced in place, constraints
    add up, and `texts` and `derived` merge key by key."""
    merged: dict[str, Any] = {"factors": {}, "constraints": [], "texts": {}, "derived": {}}
    for name in data.get("include") or []:
        fragment_path = _fragment_path(str(name), path)
        try:
            fragment = Fragment.model_validate(read_yaml(fragment_path, "shared fragment") or {})
        except ValidationError as exc:
            raise AmlabError(f"{fragment_path}: {describe_validation_error(exc)}") from None
        dumped = fragment.model_dump(exclude_unset=True)
        merged["factors"].update(dumped.get("factors", {}))
        merged["constraints"] += dumped.get("constraints", [])
        merged["texts"].update(dumped.get("texts", {}))
        merged["derived"].update(dumped.get("derived", {}))
    merged["factors"].update(data.get("factors") or {})
    merged["constraints"] += data.get("constraints") or []
    merged["texts"].update(data.get("texts") or {})
    merged["derived"].update(data.get("derived") or {})
    return {**data, **merged}


def _fragment_path(name: str, family_file: Path) -> Path:
    local = family_file.parent / name
    if local.is_file():
        return local
    shared = shared_root() / f"{name}.yaml"
    if shared.is_file():
        return shared
    available = sorted(p.stem for p in shared_root().glob("*.yaml"))
    raise AmlabError(f"{family_file}: include '{name}' is neither a file next to it nor a "
                     f"shared fragment; shared fragments are {', '.join(available)}.")


def describe_validation_error(exc: ValidationError) -> str:
    """The first problem pydantic found, as one sentence naming the field."""
    err = exc.errors()[0]
    where = ".".join(str(part) for part in err["loc"]) or "the top level"
    if err["type"] == "extra_forbidden":
        return f"{where} is not a known field."
    if err["type"] == "missing":
        return f"{where} is required but missing."
    message = str(err["msg"]).removeprefix("Value error, ")
    return f"{where}: {message} (got {err.get('input')!r})."


