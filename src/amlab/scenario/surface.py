"""Perturbations of a rendering's surface, from the shared tables (data, not code):
`names: randomized` (people and the company renamed per trial, from `_shared/names.yaml`,
seeded) and `tool_names` (the agent's tools presented under other names, from
`_shared/tool_names.yaml`). Both are one whole-token substitution applied to everything a
condition renders (prompts, e-mails, documents, world files, facts), so the planted facts'
surface tokens (reveals, addresses built from names) follow the new names and the detectors
still find them; the world, the store and the detectors keep the tools' canonical names."""

from __future__ import annotations

import random
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field, fields, is_dataclass, replace
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, Field, ValidationError

from amlab.errors import AmlabError, describe_validation_error
from amlab.scenario.spec import FamilySpec, Strict, shared_root
from amlab.substitution import Substitution
from amlab.yamlfile import read_yaml

# The factors (in `_shared/perturbations.yaml`), the level that draws names, and the level
# that keeps the tools' own names.
NAMES_FACTOR, RANDOM_NAMES = "names", "randomized"
TOOL_NAMES_FACTOR, ORIGINAL_TOOL_NAMES = "tool_names", "original"

T = TypeVar("T")


class Origin(Strict):
    female: list[str] = Field(default_factory=list)
    male: list[str] = Field(default_factory=list)
    unisex: list[str] = Field(default_factory=list)
    surnames: list[str] = Field(min_length=1)


class NamesTable(Strict):
    origins: dict[str, Origin] = Field(min_length=1)
    companies: list[str] = Field(min_length=1)

    def gender_of(self, first: str) -> str | None:
        """'female', 'male' or 'unisex': the list a first name is in (None: in none)."""
        for origin in self.origins.values():
            for gender in ("female", "male", "unisex"):
                if first in getattr(origin, gender):
                    return gender
        return None


def names_table_path() -> Path:
    return shared_root() / "names.yaml"


def tool_names_path() -> Path:
    return shared_root() / "tool_names.yaml"


@cache
def names_table() -> NamesTable:
    path = names_table_path()
    try:
        return NamesTable.model_validate(read_yaml(path, "names table"))
    except ValidationError as exc:
        raise AmlabError(f"{path}: {describe_validation_error(exc)}") from None


@cache
def tool_name_tables() -> dict[str, dict[str, str]]:
    """Level -> canonical tool name -> the name the agent is shown."""
    path = tool_names_path()
    data = read_yaml(path, "tool names table")
    if not isinstance(data, dict) or not all(
            isinstance(table, dict) and all(isinstance(v, str) for v in table.values())
            for table in data.values()):
        raise AmlabError(f"{path}: must map each level to a mapping of tool name -> "
                         f"presented name.")
    for level, table in data.items():
        shown = list(table.values())
        clash = sorted({s for s in shown if shown.count(s) > 1 or s in table})
        if clash:
            raise AmlabError(f"{path}: {level}: presented name '{clash[0]}' is given to two "
                             f"tools or is a tool's own name; each tool needs a name of its "
                             f"own.")
    return {str(level): {str(k): v for k, v in table.items()} for level, table in data.items()}


def tool_labels(tools: Iterable[str], level: str, where: str) -> dict[str, str]:
    """The family's tools under `level`'s names ({} for `original`)."""
    if level == ORIGINAL_TOOL_NAMES:
        return {}
    tables = tool_name_tables()
    if level not in tables:
        raise AmlabError(f"{where}: tool_names level '{level}' has no table in "
                         f"{tool_names_path()}; tables are {', '.join(tables)}.")
    table = tables[level]
    missing = [tool for tool in tools if tool not in table]
    if missing:
        raise AmlabError(f"{tool_names_path()}: {level} has no name for tool "
                         f"'{missing[0]}'; add one so that tool_names={level} can present it.")
    return {tool: table[tool] for tool in tools}


def slug(name: str) -> str:
    """A name as the local part of an address writes it: ASCII lower-case letters only."""
    plain = unicodedata.normalize("NFKD", name.replace("ı", "i"))
    return re.sub(r"[^a-z]", "", plain.encode("ascii", "ignore").decode().lower())


# How an address's local part is built from a first name and a surname (as slugs).
_ADDRESS_FORMS = (
    lambda first, last: f"{first}.{last}",
    lambda first, last: f"{first[:1]}.{last}",
    lambda first, last: f"{first[:1]}{last}",
    lambda first, last: f"{first}{last}",
    lambda first, last: f"{first}_{last}",
    lambda first, last: f"{first}.{last[:1]}",
    lambda first, last: first,
    lambda first, last: last,
)


def _local_part(local: str, old: tuple[str, str], new: tuple[str, str]) -> str:
    """The local part the new name gets, in the form the old address used."""
    old_slugs, new_slugs = (slug(old[0]), slug(old[1])), (slug(new[0]), slug(new[1]))
    for form in _ADDRESS_FORMS:
        if form(*old_slugs) == local:
            return form(*new_slugs)
    # Another form: at least no old name is left in it.
    return local.replace(old_slugs[1], new_slugs[1]).replace(old_slugs[0], new_slugs[0])


def name_replacements(spec: FamilySpec, seed: int, avoid: set[str], where: str
                      ) -> dict[str, str]:
    """Old token -> new token for one trial's cast: each person's first name, surname,
    address and its local part, the company's short name and domain. `avoid`: words (lower
    case) a new name must not be, so that it collides with nothing the texts say."""
    table = names_table()
    rng = random.Random(f"names|{seed}")
    taken = {word.lower() for word in avoid}
    for person in spec.people.values():
        taken.update(part.lower() for part in person.name.split())
    taken.add(spec.agent.name.lower())

    def draw(candidates: list[str]) -> str | None:
        free = [c for c in candidates if c.lower() not in taken and slug(c)]
        if not free:
            return None
        choice = rng.choice(free)
        taken.add(choice.lower())
        return choice

    replacements: dict[str, str] = {}
    short = spec.company.get("short", "")
    if short:
        company = draw(table.companies)
        if company is None:
            raise AmlabError(f"{names_table_path()}: no company name is left that the "
                             f"family's texts do not already use; add more companies.")
        replacements[short] = company
        domain = spec.company.get("domain", "")
        if slug(short) and slug(short) in domain:
            replacements[domain] = domain.replace(slug(short), slug(company))
    origins = list(table.origins)
    surname_origin: dict[str, str] = {}
    for key, person in spec.people.items():
        parts = person.name.split()
        gender = table.gender_of(parts[0]) if len(parts) == 2 else None
        if gender is None:
            if person.title:
                raise AmlabError(f"{where}: people.{key}: names: randomized replaces "
                                 f"'First Surname' names whose first name is in "
                                 f"{names_table_path()}, and '{person.name}' is not one; add "
                                 f"the first name to the list of its origin and gender.")
            continue  # a team or a service desk, not a person
        first, last = parts
        origin_order = ([surname_origin[last]] if last in surname_origin
                        else rng.sample(origins, len(origins)))
        new_first = replacements.get(first)
        for origin_name in origin_order:
            origin = table.origins[origin_name]
            if new_first is None:
                pool = {"female": origin.female + origin.unisex,
                        "male": origin.male + origin.unisex,
                        "unisex": origin.female + origin.male + origin.unisex}[gender]
                new_first = draw(pool)
            if new_first is not None:
                surname_origin.setdefault(last, origin_name)
                break
        new_last = replacements.get(last) or draw(
            table.origins[surname_origin.get(last, origins[0])].surnames
        ) or draw([s for o in table.origins.values() for s in o.surnames])
        if new_first is None or new_last is None:
            raise AmlabError(f"{names_table_path()}: too few names are left for people.{key} "
                             f"of {where}; add names to the table.")
        replacements[first], replacements[last] = new_first, new_last
        if "@" in person.address:
            local, domain = person.address.rsplit("@", 1)
            new_local = _local_part(local, (first, last), (new_first, new_last))
            replacements[local] = new_local
            replacements[person.address] = f"{new_local}@{replacements.get(domain, domain)}"
    return replacements


def words_in(texts: Iterable[str]) -> set[str]:
    """The words of some texts, in lower case."""
    return {word.lower() for text in texts for word in re.findall(r"[^\W\d_]+", text)}


@dataclass(frozen=True)
class Surface:
    """How one rendering presents its family: a text substitution applied to everything it
    renders, and the tools' presented names (canonical name -> shown name)."""

    substitution: Substitution = field(default_factory=lambda: Substitution({}))
    tool_labels: dict[str, str] = field(default_factory=dict)

    def text(self, text: str) -> str:
        return self.substitution(text)

    def apply(self, value: T) -> T:
        """`value` with every string in it substituted: strings, lists, tuples, dict keys
        and values, and the fields of dataclasses and pydantic records."""
        if not self.substitution:
            return value
        return self._apply(value)  # type: ignore[no-any-return]

    def _apply(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.substitution(value)
        if isinstance(value, list):
            return [self._apply(v) for v in value]
        if isinstance(value, tuple):
            return tuple(self._apply(v) for v in value)
        if isinstance(value, dict):
            return {self._apply(k): self._apply(v) for k, v in value.items()}
        if isinstance(value, BaseModel):
            return value.model_copy(update={name: self._apply(getattr(value, name))
                                            for name in type(value).model_fields})
        if is_dataclass(value) and not isinstance(value, type):
            return replace(value, **{f.name: self._apply(getattr(value, f.name))
                                     for f in fields(value) if f.init})
        return value
