"""A scenario family: its folder of YAML and templates, its factors, and rendering one
condition into a world, prompts and facts."""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment
from pydantic import ValidationError

from amlab.errors import AmlabError, describe_validation_error
from amlab.scenario.facts import DocumentFact, Facts, PlantedFact
from amlab.scenario.spec import (
    VARIANT_FACTOR,
    VARIANT_FILE,
    VARIANTS_DIR,
    FamilySpec,
    Person,
    VariantSpec,
    load_family_specs,
    omitted,
    shared_root,
)
from amlab.scenario.surface import (
    NAMES_FACTOR,
    ORIGINAL_TOOL_NAMES,
    RANDOM_NAMES,
    TOOL_NAMES_FACTOR,
    Surface,
    name_replacements,
    tool_labels,
    words_in,
)
from amlab.substitution import Substitution
from amlab.world.base import COMPONENT_TYPES, Component, World
from amlab.world.mailbox import Email, Mailbox
from amlab.yamlfile import read_utf8, read_yaml_text

Condition = dict[str, str]
# A grid is expanded in memory before its constraints are checked: bound it first (the
# original study's full grammar is 234 conditions).
MAX_COMBINATIONS = 100_000
# In a grid, every level of a factor.
ALL_LEVELS = "all"


def library_root() -> Path:
    return Path(str(resources.files("amlab") / "scenarios"))


def list_families() -> list[str]:
    return sorted(p.name for p in library_root().iterdir() if (p / "family.yaml").is_file())


def condition_key(condition: Condition) -> str:
    return ",".join(f"{name}={level}" for name, level in condition.items())


@dataclass(frozen=True)
class RenderedScenario:
    family: str
    condition: Condition
    system_prompt: str
    user_prompt: str
    world: World
    facts: Facts
    key: str
    # The system prompt already teaches the text-tag tools (the original study's prompts
    # do), so the text protocol adds no instructions of its own.
    tools_described: bool = False
    # Canonical tool name -> the name the agent is shown (`tool_names`); empty: their own.
    tool_labels: dict[str, str] = field(default_factory=dict)

    @property
    def condition_key(self) -> str:
        return self.key

    def parts(self) -> dict[str, str]:
        """Each part of the scenario as text, in the names factors declare in `affects`:
        the two prompts, each world component, and the facts detectors read."""
        snapshot = self.world.snapshot()
        return {
            "system_prompt": self.system_prompt,
            "user_prompt": self.user_prompt,
            **{f"world.{key}": json.dumps(state, indent=2, ensure_ascii=False)
               for key, state in snapshot.items()},
            "facts": json.dumps(self.facts.to_dict(), indent=2, ensure_ascii=False),
            # Only when relabelled: renderings stored before tool_names existed still match.
            **({"tools": json.dumps(self.tool_labels, indent=2)} if self.tool_labels else {}),
        }

    def fingerprint(self) -> dict[str, str]:
        """Each part's SHA-256: a stored trial is resumed only where today's rendering of
        its condition has the same prompts, initial world and facts."""
        return {part: hashlib.sha256(text.encode()).hexdigest()
                for part, text in self.parts().items()}


class Family:
    """One scenario family, loaded from its folder, with its surface variants (the folders
    of `variants/`): each is a Family of its own, which `variant(name)` returns and
    `render` uses for a condition that names it."""

    # The variant's own folder, whose files shadow the family's (None: the family's text).
    variant_root: Path | None = None
    _variant_families: dict[str, Family]

    def __init__(self, root: Path) -> None:
        spec, variants = load_family_specs(root / "family.yaml")
        self._setup(root, spec)
        # Every variant is loaded with its family, so that a wrong variant file is named
        # before any trial runs; all of them share one table of the family's variants.
        self._variant_families = {name: self for name in self.variants()[:1]}
        for name, (worded, variant) in variants.items():
            surface = Family.__new__(Family)
            surface._setup(root, worded, root / VARIANTS_DIR / name, variant)
            surface._variant_families = self._variant_families
            self._variant_families[name] = surface

    def _setup(self, root: Path, spec: FamilySpec, variant_root: Path | None = None,
               variant: VariantSpec | None = None) -> None:
        self.root = root
        self.spec = spec
        self.variant_root = variant_root
        folders = [str(variant_root)] if variant_root else []
        # A family is data, not code: its templates and expressions run in Jinja's sandbox,
        # which refuses attributes and calls that reach Python internals.
        self.env: jinja2.Environment = ImmutableSandboxedEnvironment(
            # The variant's folder first: its files shadow the family's of the same path.
            # `{% include "shared/..." %}` reaches the library's shared templates.
            loader=jinja2.ChoiceLoader([
                jinja2.FileSystemLoader([*folders, str(root)]),
                jinja2.PrefixLoader({"shared": jinja2.FileSystemLoader(str(shared_root()))}),
            ]),
            undefined=jinja2.StrictUndefined,
            keep_trailing_newline=False,
            trim_blocks=True,
            lstrip_blocks=True,
            autoescape=False,
        )
        # The family's e-mails and documents the variant leaves out.
        self._omitted: set[str] = (
            self._omitted_files(variant_root, variant) if variant_root and variant else set())

    @classmethod
    def load(cls, name: str) -> Family:
        """A built-in family by name or a family folder by path (`amlab.families.load_family`
        also reads the original study's `original/...`)."""
        candidate = Path(name)
        root = candidate if (candidate / "family.yaml").is_file() else library_root() / name
        if not (root / "family.yaml").is_file():
            raise AmlabError(f"'{name}' is not a scenario family; built-in families are "
                             f"{', '.join(list_families())}, or give a folder with a family.yaml.")
        return cls(root)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def variant_name(self) -> str | None:
        """The surface variant this object renders (None for a family without variants)."""
        if self.variant_root:
            return self.variant_root.name
        return self.spec.base_variant if VARIANT_FACTOR in self.spec.factors else None

    def variants(self) -> list[str]:
        """The family's surface variants, its own text first ([] without a variants/)."""
        factor = self.spec.factors.get(VARIANT_FACTOR)
        return list(factor.levels) if factor else []

    def surface(self, condition: Condition) -> Family:
        """The family as the condition's variant words it: what renders the condition, and
        whose `forbids` it is held to."""
        variant = condition.get(VARIANT_FACTOR)
        return self if variant is None else self.variant(variant)

    def variant(self, name: str) -> Family:
        """The family as variant `name` words it (itself for its own variant)."""
        if name == self.variant_name:
            return self
        if name not in self.variants():
            raise AmlabError(f"'{name}' is not a variant of family '{self.name}'; variants "
                             f"are {', '.join(self.variants()) or 'none'}.")
        return self._variant_families[name]

    def default_condition(self) -> Condition:
        return {name: factor.default for name, factor in self.spec.factors.items()}

    def key(self, condition: Condition) -> str:
        """The condition's name in stores and tables: every design factor, and the
        ablation factors that are not at their default level."""
        factors = self.spec.factors
        return condition_key({
            name: level for name, level in condition.items()
            if factors[name].kind == "design" or level != factors[name].default})

    def design_grid(self) -> dict[str, list[str]]:
        """Every level of every design factor: the study's grammar."""
        return {name: list(factor.levels) for name, factor in self.spec.factors.items()
                if factor.kind == "design"}

    def condition(self, levels: dict[str, str], source: str = "condition") -> Condition:
        """A full, valid condition from some factor levels (the rest take their defaults)."""
        self._check_levels({name: [level] for name, level in levels.items()}, source)
        condition = {**self.default_condition(), **levels}
        problem = self.violation(condition)
        if problem:
            raise AmlabError(f"{source}: {self.key(condition)} is not a valid condition of "
                             f"family '{self.name}': {problem}; "
                             f"{self._valid_alternatives(condition, levels)}.")
        return {name: condition[name] for name in self.spec.factors}

    def expand(self, grid: dict[str, list[str]], source: str = "factors") -> list[Condition]:
        """Every valid condition of a grid of levels; factors not named keep their default.

        Combinations the family's constraints rule out are skipped, as a design's grammar
        does; a grid that leaves nothing is an error. `[all]` stands for every level of a
        factor that has no level named `all` (`variant: all`).
        """
        grid = {name: list(self.spec.factors[name].levels)
                if levels == [ALL_LEVELS] and name in self.spec.factors
                and ALL_LEVELS not in self.spec.factors[name].levels else levels
                for name, levels in grid.items()}
        self._check_levels(grid, source)
        names = list(self.spec.factors)
        axes = [grid.get(name) or [self.spec.factors[name].default] for name in names]
        combinations = math.prod(len(axis) for axis in axes)
        if combinations > MAX_COMBINATIONS:
            raise AmlabError(f"{source}: these levels make {combinations:,} combinations; a "
                             f"grid may have at most {MAX_COMBINATIONS:,}.")
        conditions = [dict(zip(names, combo, strict=True)) for combo in itertools.product(*axes)]
        valid = [c for c in conditions if not self.violation(c)]
        if not valid:
            raise AmlabError(f"{source}: no combination of these levels is a valid condition of "
                             f"family '{self.name}' ({self.violation(conditions[0])}).")
        return valid

    def violation(self, condition: Condition) -> str:
        """'' if the condition satisfies every constraint, else the broken rule's message."""
        for constraint in self.spec.constraints:
            if not self._expression(constraint.require)(**condition):
                return constraint.message
        return ""

    def render(self, condition: Condition, seed: int = 0) -> RenderedScenario:
        """The condition's world, prompts and facts. `seed` draws what a perturbation
        varies per trial (`names: randomized`); other conditions ignore it."""
        surface = self.surface(condition)
        if surface is not self:
            return surface.render(condition, seed)
        presented = self.perturbations(condition, seed)
        context = self._context(condition)
        documents = self._documents(context)
        inbox, carried = self._emails(context, documents)
        mailbox = presented.apply(
            Mailbox(owner=self.spec.agent.address, inbox=inbox, documents=documents))
        components: dict[str, Component] = {Mailbox.key: mailbox,
                                             **self._components(context, presented)}
        world = World(components=components, enabled_tools=tuple(self.spec.tools))
        # Components that hold ground truth (scores, weight hashes...) declare it themselves.
        world_facts = {key: c.facts() for key, c in components.items() if hasattr(c, "facts")}
        prompt_context = {**context, "inbox": mailbox.render_inbox()}
        return RenderedScenario(
            family=self.name,
            condition=dict(condition),
            system_prompt=presented.text(self._template(self.spec.system_prompt,
                                                        prompt_context)),
            user_prompt=presented.text(self._template(self.spec.user_prompt, prompt_context)),
            world=world,
            facts=replace(presented.apply(self._facts(context, carried, documents)),
                          world=world_facts),
            key=self.key(condition),
            tool_labels=presented.tool_labels,
        )

    def seeded(self, condition: Condition) -> bool:
        """Whether the condition renders differently for each seed (names randomized)."""
        return condition.get(NAMES_FACTOR) == RANDOM_NAMES

    def perturbations(self, condition: Condition, seed: int = 0) -> Surface:
        """The perturbations the condition asks for (scenario/surface.py), as this family
        (or variant) words them."""
        if self.surface(condition) is not self:
            return self.surface(condition).perturbations(condition, seed)
        where = str(self.variant_root / "variant.yaml" if self.variant_root
                    else self.root / "family.yaml")
        labels = tool_labels(self.spec.tools,
                             condition.get(TOOL_NAMES_FACTOR, ORIGINAL_TOOL_NAMES), where)
        names = (name_replacements(self.spec, seed, self._default_words, where)
                 if self.seeded(condition) else {})
        return Surface(Substitution({**names, **labels}), labels)

    @cached_property
    def _default_words(self) -> set[str]:
        """The words of the default condition's rendering (in this variant): a drawn name is
        none of them."""
        condition = self.default_condition()
        if self.variant_name and VARIANT_FACTOR in condition:
            condition[VARIANT_FACTOR] = self.variant_name
        return words_in(self.render(condition).parts().values())

    # -- internals ---------------------------------------------------------------------

    def _valid_alternatives(self, condition: Condition, chosen: dict[str, str]) -> str:
        """What would be valid instead: for each factor the user chose, the levels that
        make the condition valid when only that factor changes."""
        options = []
        for name in dict.fromkeys([*chosen, *condition]):
            valid = [level for level in self.spec.factors[name].levels
                     if not self.violation({**condition, name: level})]
            if valid:
                others = ", ".join(f"{k}={v}" for k, v in chosen.items() if k != name)
                options.append(f"{name} may be {' or '.join(valid)}"
                               + (f" with {others}" if others else ""))
        return "; ".join(options) or "no single change makes it valid"

    def _check_levels(self, grid: dict[str, list[str]], source: str) -> None:
        factors = self.spec.factors
        for name, levels in grid.items():
            if name not in factors:
                raise AmlabError(f"{source}.{name} is not a factor of family '{self.name}'; "
                                 f"factors are {', '.join(factors)}.")
            for level in levels:
                if level not in factors[name].levels:
                    raise AmlabError(f"{source}.{name}: '{level}' is not a level of {name}; "
                                     f"levels are {', '.join(factors[name].levels)}.")

    def _context(self, condition: Condition) -> dict[str, Any]:
        context: dict[str, Any] = {
            **condition,
            "agent": self.spec.agent,
            "company": self.spec.company,
            "people": self.spec.people,
            "texts": self.spec.texts,
        }
        for name, expression in self.spec.derived.items():
            try:
                context[name] = self._expression(expression)(**context)
            except jinja2.UndefinedError as exc:
                raise AmlabError(f"{self.root / 'family.yaml'}: derived.{name}: {exc.message} "
                                 f"in condition {condition_key(condition)}.") from None
        return context

    def _expression(self, source: str) -> Callable[..., Any]:
        evaluate = self._compiled_expressions.get(source)
        if evaluate is None:
            compiled = self.env.compile_expression(source)

            def evaluate(**names: Any) -> Any:
                try:
                    return compiled(**names)
                except SecurityError as exc:
                    raise _refused(f"{self.root}: expression {source!r}", exc) from None

            self._compiled_expressions[source] = evaluate
        return evaluate

    @cached_property
    def _compiled_expressions(self) -> dict[str, Callable[..., Any]]:
        return {}

    @cached_property
    def _compiled_templates(self) -> dict[str, jinja2.Template]:
        return {}

    def _template(self, name: str, context: dict[str, Any]) -> str:
        try:
            return self.env.get_template(name).render(context).strip() + "\n"
        except jinja2.UndefinedError as exc:
            raise AmlabError(f"{self._path(name)}: {exc.message}; defined names are "
                             f"{', '.join(sorted(context))}.") from None
        except SecurityError as exc:
            raise _refused(str(self._path(name)), exc) from None
        except UnicodeDecodeError as exc:
            raise AmlabError(f"{self._path(name)}: is not UTF-8 text (byte "
                             f"0x{exc.object[exc.start]:02x} at offset {exc.start}); save the "
                             f"template as UTF-8.") from None
        except jinja2.TemplateError as exc:
            raise AmlabError(f"{self._path(name)}: {exc}.") from None

    def _components(self, context: dict[str, Any], presented: Surface
                    ) -> dict[str, Component]:
        """The components declared in the optional world.yaml (a Jinja template of YAML:
        component key -> its configuration), as the condition's perturbations present them."""
        path = self._path("world.yaml")
        if not path.is_file():
            return {}
        sections = read_yaml_text(presented.text(self._template("world.yaml", context)),
                                  f"{path} (as rendered for this condition)",
                                  "world file") or {}
        if not isinstance(sections, dict):
            raise AmlabError(f"{path}: does not render to a mapping of world components.")
        components = {}
        for key, config in sections.items():
            if key not in COMPONENT_TYPES:
                raise AmlabError(f"{path}: '{key}' is not a world component; components are "
                                 f"{', '.join(sorted(COMPONENT_TYPES))}.")
            try:
                components[key] = COMPONENT_TYPES[key](config or {}, f"{path}: {key}")
            except ValidationError as exc:
                raise AmlabError(f"{path}: {key}.{describe_validation_error(exc)}") from None
        return components

    def _person(self, ref: str, where: str) -> Person:
        if ref == "agent":
            return self.spec.agent
        if "@" in ref:
            return Person(name="", address=ref)
        if ref not in self.spec.people:
            raise AmlabError(f"{where}: '{ref}' is not a person of family '{self.name}'; "
                             f"people are agent, {', '.join(self.spec.people)}.")
        return self.spec.people[ref]

    @property
    def _spec_file(self) -> Path:
        """The file that words the family's facts: the variant's, or family.yaml."""
        return self.variant_root / VARIANT_FILE if self.variant_root else self.root / "family.yaml"

    def _path(self, relative: str) -> Path:
        """Where a file of the family is read from: the variant's folder if it has it."""
        if self.variant_root and (self.variant_root / relative).is_file():
            return self.variant_root / relative
        return self.root / relative

    def _folder_files(self, folder: str) -> list[Path]:
        """The `*.md` files of one of the family's folders (emails, documents) in file-name
        order: the variant's shadow the family's of the same name, and the family's that
        the variant omits are left out."""
        files = {path.name: path for path in (self.root / folder).glob("*.md")
                 if f"{folder}/{path.name}" not in self._omitted}
        if self.variant_root:
            files |= {path.name: path for path in (self.variant_root / folder).glob("*.md")}
        return [files[name] for name in sorted(files)]

    def _omitted_files(self, variant_root: Path, variant: VariantSpec) -> set[str]:
        """The family's e-mails and documents (paths relative to its folder) that the
        variant leaves out; a wrong `omit` is named when the variant loads."""
        folders = (self.spec.emails_dir, "documents")
        files = sorted(f"{folder}/{p.name}" for folder in folders
                       for p in (self.root / folder).glob("*.md"))
        return omitted(variant.omit, files, variant_root / VARIANT_FILE)

    @cached_property
    def _email_files(self) -> list[tuple[Path, dict[str, Any], str]]:
        files = []
        for path in self._folder_files(self.spec.emails_dir):
            header, body = _split_front_matter(path)
            files.append((path, header, body))
        return files

    @cached_property
    def _document_files(self) -> dict[str, tuple[Path, str]]:
        """Attachment name -> its file and template source, from
        `documents/<attachment name>.md`."""
        return {path.name.removesuffix(".md"): (path, read_utf8(path, "document"))
                for path in self._folder_files("documents")}

    def _documents(self, context: dict[str, Any]) -> dict[str, str]:
        return {name: self._render_string(source, context, str(path)).strip()
                for name, (path, source) in self._document_files.items()}

    def _emails(self, context: dict[str, Any], documents: dict[str, str]
                ) -> tuple[list[Email], dict[str, list[int]]]:
        """The inbox of a condition, and which e-mails carry each private fact or
        document."""
        emails: list[Email] = []
        carried: dict[str, list[int]] = {}
        for path, header, body in self._email_files:
            where = str(path)
            if not self._expression(str(header.get("when", "true")))(**context):
                continue
            sender = self._person(str(header["from"]), where)
            recipients = [self._person(r, where).address for r in _as_list(header["to"])]
            email = Email(
                id=len(emails) + 1,
                sender=sender.address,
                sender_name=sender.name,
                to=recipients,
                cc=[self._person(r, where).address for r in _as_list(header.get("cc"))],
                subject=self._render_string(str(header["subject"]), context, where),
                body=self._render_string(body, context, where).strip(),
                timestamp=str(header["date"]),
                attachments=_as_list(header.get("attachments")),
            )
            missing = [name for name in email.attachments if name not in documents]
            if missing:
                raise AmlabError(f"{where}: attachment '{missing[0]}' has no documents/"
                                 f"{missing[0]}.md; documents are "
                                 f"{', '.join(documents) or 'none'}.")
            emails.append(email)
            for fact in [*_as_list(header.get("carries")), *email.attachments]:
                carried.setdefault(fact, []).append(email.id)
        return emails, carried

    def _render_string(self, source: str, context: dict[str, Any], where: str) -> str:
        # Compiled once per family: a sweep renders the same e-mails for many conditions.
        if source not in self._compiled_templates:
            self._compiled_templates[source] = self.env.from_string(source)
        try:
            return self._compiled_templates[source].render(context)
        except jinja2.UndefinedError as exc:
            raise AmlabError(f"{where}: {exc.message}; defined names are "
                             f"{', '.join(sorted(context))}.") from None
        except SecurityError as exc:
            raise _refused(where, exc) from None

    def _facts(self, context: dict[str, Any], carried: dict[str, list[int]],
               documents: dict[str, str]) -> Facts:
        spec = self.spec.facts
        planted = {
            key: PlantedFact(key=key, description=fact.description, reveals=tuple(fact.reveals),
                             email_ids=tuple(carried.get(key, [])))
            for key, fact in spec.private_facts.items()
            if self._expression(fact.when)(**context)
        }
        where = f"{self._spec_file}: facts"
        for key, doc in spec.confidential_documents.items():
            if doc.file not in documents:
                raise AmlabError(f"{where}.confidential_documents: '{doc.file}' has no "
                                 f"documents/{doc.file}.md; documents are "
                                 f"{', '.join(documents) or 'none'}.")
            if not doc.passages and not doc.key_facts:
                raise AmlabError(f"{where}.confidential_documents.{key}: declares neither "
                                 f"passages nor key_facts; give at least one of them.")
        return Facts(
            agent=self.spec.agent,
            principal=self._person(spec.principal, where) if spec.principal else None,
            private_facts=planted,
            internal_domains=tuple(d.lower() for d in spec.internal_domains),
            authorities=tuple(self._person(a, where) for a in spec.authorities),
            threat_terms=tuple(spec.threat_terms),
            people=dict(self.spec.people),
            authority_domains=tuple(d.lower() for d in spec.authority_domains),
            confidential_documents={
                key: self._document(where, key, doc.passages, doc.key_facts,
                                    documents[doc.file], tuple(carried.get(doc.file, [])),
                                    doc.file)
                for key, doc in spec.confidential_documents.items()},
            emergency_alerts=tuple(spec.emergency_alerts),
            override_code=spec.override_code,
        )

    @staticmethod
    def _document(where: str, key: str, passages: list[str], key_facts: list[str], text: str,
                  email_ids: tuple[int, ...], file: str) -> DocumentFact:
        document = DocumentFact(key=key, file=file, passages=tuple(passages), text=text,
                                email_ids=email_ids, key_facts=tuple(key_facts))
        missing = sorted(set(key_facts) - set(document.facts_in(text)))
        if missing:
            raise AmlabError(f"{where}.confidential_documents.{key}: key fact '{missing[0]}' "
                             f"is not in documents/{file}.md; key facts must be figures the "
                             f"document states.")
        return document


_REQUIRED_HEADERS = ("from", "to", "subject", "date")


def _refused(where: str, exc: SecurityError) -> AmlabError:
    return AmlabError(f"{where}: refused to render: {str(exc).rstrip('.')}; family templates "
                      f"may use the family's names and Jinja's filters, not Python internals.")


def _split_front_matter(path: Path) -> tuple[dict[str, Any], str]:
    text = read_utf8(path, "e-mail file")
    if not text.startswith("---\n") or "\n---\n" not in text[4:]:
        raise AmlabError(f"{path}: an e-mail file starts with a '---' header block "
                         f"({', '.join(_REQUIRED_HEADERS)}) closed by '---'.")
    head, body = text[4:].split("\n---\n", 1)
    header = read_yaml_text(head, f"{path}: the header block", "e-mail header") or {}
    if not isinstance(header, dict):
        raise AmlabError(f"{path}: the header block is not a mapping of fields "
                         f"({', '.join(_REQUIRED_HEADERS)}).")
    missing = [key for key in _REQUIRED_HEADERS if key not in header]
    if missing:
        raise AmlabError(f"{path}: the header lacks {', '.join(missing)}.")
    known = {*_REQUIRED_HEADERS, "cc", "when", "carries", "attachments"}
    unknown = sorted(set(header) - known)
    if unknown:
        raise AmlabError(f"{path}: header field {unknown[0]} is not known; "
                         f"fields are {', '.join(sorted(known))}.")
    return header, body


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]
