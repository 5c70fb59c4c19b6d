"""The schema of a scenario family folder (`family.yaml`), validated with clear errors."""

from __future__ import annotations

import fnmatch
import re
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

from amlab.errors import AmlabError, describe_validation_error
from amlab.world.base import COMPONENT_TYPES
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
    # The name of this folder's own text among the family's surface variants (required
    # when the family has a `variants/` folder): the `variant` factor's default level.
    base_variant: str | None = None


# The folder of a family's surface variants, and the factor they form.
VARIANTS_DIR = "variants"
VARIANT_FACTOR = "variant"
VARIANT_FILE = "variant.yaml"
VARIANT_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


class VariantPrivateFact(Strict):
    """A private fact as a variant words it: the same fact (key, `when`), other words."""

    description: str | None = None
    reveals: list[Term] | None = Field(default=None, min_length=1)


class VariantDocument(Strict):
    """A confidential document as a variant words it: the same document, other figures."""

    file: str | None = None
    passages: list[Term] | None = None
    key_facts: list[Term] | None = None


class VariantFacts(Strict):
    """The surface of the family's facts: names, addresses, words, codes. The facts
    themselves (which private facts and documents exist, and when) stay the family's."""

    principal: str | None = None
    private_facts: dict[str, VariantPrivateFact] = Field(default_factory=dict)
    internal_domains: list[Term] | None = None
    authorities: list[str] | None = None
    authority_domains: list[Term] | None = None
    confidential_documents: dict[str, VariantDocument] = Field(default_factory=dict)
    emergency_alerts: list[Term] | None = None
    override_code: str | None = None
    threat_terms: list[Term] | None = None


class VariantSpec(Strict):
    """`variants/NAME/variant.yaml`: a surface variant of a family (same facts, same
    decision structure, other company, people, wording, order and noise). Files in the
    variant folder shadow the family's files of the same relative path."""

    description: str
    # Each replaces the family's whole entry when given.
    agent: Person | None = None
    company: dict[str, str] | None = None
    people: dict[str, Person] | None = None
    # Merged key by key, at every depth, over the family's texts.
    texts: dict[str, Any] = Field(default_factory=dict)
    facts: VariantFacts = VariantFacts()
    # factor -> level -> phrases added to what the family's level forbids (this variant's
    # own names for what a control removes).
    forbids: dict[str, dict[str, list[Term]]] = Field(default_factory=dict)
    # The family's files this variant leaves out, as paths relative to the family folder
    # (`emails/03-garage.md`; `emails/*` for all of its e-mails): less routine noise, or a
    # key e-mail the variant moves to another place in the inbox under another file name.
    omit: list[Term] = Field(default_factory=list)


def shared_root() -> Path:
    return Path(str(resources.files("amlab") / "scenarios" / "_shared"))


def load_family_specs(path: Path) -> tuple[FamilySpec, dict[str, tuple[FamilySpec, VariantSpec]]]:
    """The family file's spec (with its `variant` factor when it has a `variants/` folder),
    and for each surface variant (`variants/NAME/`) the family's spec as the variant words
    it, with the variant's own file; each file read once."""
    data = read_yaml(path, "family file")
    if not isinstance(data, dict):
        return _validated(data, path), {}
    data = _with_includes(data, path)
    variants = {name: _load_variant_spec(path.parent, name)
                for name in _variant_folders(data, path)}
    if variants:
        data["factors"][VARIANT_FACTOR] = _variant_factor(data, variants, path)
    # The family file first: a problem in it is named there, not in a variant's file.
    spec = _validated(data, path)
    worded = {}
    for name, variant in variants.items():
        where = path.parent / VARIANTS_DIR / name / VARIANT_FILE
        worded[name] = (_validated(_with_variant(data, variant, where), where), variant)
    return spec, worded


def _validated(data: Any, path: Path) -> FamilySpec:
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


def _load_variant_spec(root: Path, name: str) -> VariantSpec:
    path = root / VARIANTS_DIR / name / VARIANT_FILE
    try:
        return VariantSpec.model_validate(read_yaml(path, "variant file") or {})
    except ValidationError as exc:
        raise AmlabError(f"{path}: {describe_validation_error(exc)}") from None


def _variant_folders(data: dict[str, Any], path: Path) -> list[str]:
    """The names of the family's variant folders, in name order, each checked."""
    folder = path.parent / VARIANTS_DIR
    if not folder.is_dir():
        return []
    base = data.get("base_variant")
    if not isinstance(base, str) or not VARIANT_NAME.match(base):
        raise AmlabError(f"{path}: base_variant must name this folder's own text among the "
                         f"variants in {folder} (lower-case letters, digits and _), got "
                         f"{base!r}.")
    if VARIANT_FACTOR in data["factors"]:
        raise AmlabError(f"{path}: factors.{VARIANT_FACTOR} is made from the {VARIANTS_DIR}/ "
                         f"folder; rename the factor this file declares.")
    names = sorted(p.name for p in folder.iterdir() if p.is_dir())
    for name in names:
        if not VARIANT_NAME.match(name) or name == base:
            raise AmlabError(f"{folder / name}: a variant folder is named in lower-case "
                             f"letters, digits and _, and not after base_variant '{base}'.")
        if not (folder / name / VARIANT_FILE).is_file():
            raise AmlabError(f"{folder / name}: has no {VARIANT_FILE}; a variant folder "
                             f"holds one (description, and what the variant changes).")
    return names


def _variant_factor(data: dict[str, Any], variants: dict[str, VariantSpec], path: Path
                    ) -> dict[str, Any]:
    """The `variant` factor: an ablation at the family's own text, so that the keys of
    conditions (and stored trials) without a variant stay what they were."""
    company = data.get("company") or {}
    levels = {data["base_variant"]: f"The family's own text "
                                    f"({company.get('name', 'as written')})."}
    levels |= {name: variant.description.strip() for name, variant in variants.items()}
    return {
        "description": "The surface of the scenario: company, people, wording of the key "
                       "e-mails, inbox order and routine noise; the same facts and decision "
                       "structure.",
        "kind": "ablation",
        "default": data["base_variant"],
        # A variant rewrites the surface of every part.
        "affects": ["system_prompt", "user_prompt", "facts", "world.mailbox",
                    *(f"world.{key}" for key in sorted(COMPONENT_TYPES))],
        "levels": levels,
    }


def _with_variant(data: dict[str, Any], variant: VariantSpec, where: Path) -> dict[str, Any]:
    """The family's settings as the variant (its file: `where`) words them."""
    merged = dict(data)
    overlay = variant.model_dump(exclude_unset=True)
    for key in ("agent", "company", "people"):
        if key in overlay:
            merged[key] = overlay[key]
    merged["texts"] = _deep_merge(data.get("texts") or {}, variant.texts)
    facts = dict(data.get("facts") or {})
    for key, value in overlay.get("facts", {}).items():
        if key in ("private_facts", "confidential_documents"):
            declared = facts.get(key) or {}
            for fact in value:
                if fact not in declared:
                    raise AmlabError(f"{where}: facts.{key}.{fact} is not a fact of the family "
                                     f"(a variant words the family's facts and adds none); "
                                     f"they are {', '.join(declared) or 'none'}.")
            facts[key] = {fact: {**fields_of, **value.get(fact, {})}
                          for fact, fields_of in declared.items()}
        else:
            facts[key] = value
    merged["facts"] = facts
    factors = dict(merged["factors"])
    for name, levels in variant.forbids.items():
        if name not in factors:
            raise AmlabError(f"{where}: forbids.{name} is not a factor of the family; "
                             f"factors are {', '.join(factors)}.")
        factor = dict(factors[name])
        forbids = {**(factor.get("forbids") or {})}
        for level, phrases in levels.items():
            if level not in factor["levels"]:
                raise AmlabError(f"{where}: forbids.{name}.{level} is not a level of {name}; "
                                 f"levels are {', '.join(factor['levels'])}.")
            forbids[level] = [*forbids.get(level, []), *phrases]
        factors[name] = {**factor, "forbids": forbids}
    merged["factors"] = factors
    return merged


def _deep_merge(base: dict[str, Any], overlay: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def omitted(patterns: list[str], files: list[str], where: Path) -> set[str]:
    """The family's e-mail and document files (paths relative to its folder) that a
    variant's `omit` patterns name; a pattern that names none of them is an error."""
    found: set[str] = set()
    for pattern in patterns:
        matched = fnmatch.filter(files, pattern)
        if not matched:
            raise AmlabError(f"{where}: omit '{pattern}' names none of the family's e-mails "
                             f"and documents; give paths relative to the family folder, e.g. "
                             f"{files[0] if files else 'emails/01-first.md'} or emails/*.")
        found.update(matched)
    return found


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


