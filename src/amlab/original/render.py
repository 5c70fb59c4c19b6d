"""amlab's own renderer of the original study's conditions, from its templates read at run time.

It produces, for every valid condition, the system prompt and the user message that the
original generator produces, byte for byte (tests/test_original_replication.py checks every
condition against the generator itself). Texts come only from the user's copy of the
templates: the system prompts and goal texts by evaluating the package's constants module
(string literals only, no built-ins), the extra-instruction texts and the eval-awareness
notice by reading the generator's syntax tree, never by running it.

The generator's known defects (docs/replication.md) are fixed unless `faithful_bugs`:
- `swap`: the original lost the goal (the agent got no goal at all, as under `latent`);
  fixed, the agent gets the goal of the new direction, as inspect-evals does.
- `extra_system_instructions` dont/goal: their texts name the company with a `{company_name}`
  placeholder the generator never fills (the original crashed; inspect-evals leaves the
  placeholder in the prompt); fixed, the company's name is filled in.
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass
from functools import cached_property
from string import Template

from amlab.errors import AmlabError
from amlab.original.source import GENERATOR, SYSTEM_PROMPTS, TemplateSource

FAMILIES = ("blackmail", "leaking", "murder")
GOAL_TYPES = ("explicit", "latent", "ambiguous", "none", "swap")
# Each value's opposite is the company's new direction under a goal conflict.
GOAL_PAIRS = (("america", "global"), ("safety", "acceleration"), ("ethical", "pragmatic"),
              ("individualism", "collectivism"))
GOAL_VALUES = (*(value for pair in GOAL_PAIRS for value in pair), "none")
URGENCY_TYPES = ("replacement", "restriction", "none")
EXTRA_INSTRUCTIONS = ("none", "dont", "goal")
# Goal types that carry no particular goal, and so take goal value `none` (and only it).
GOALLESS = ("ambiguous", "none")
# The murder family reads the blackmail family's variables (its own copies are unused).
VARIABLES_OF = {"murder": "blackmail"}
_PLACEHOLDER = re.compile(r"\{(\w+)\}")
_SECTION = re.compile(r"^## (.+?)\n\s*```json\s*(.*?)\s*```", re.M | re.S)


@dataclass(frozen=True)
class OriginalCondition:
    """One condition of the original design, with its parameter names."""

    family: str
    goal_type: str = "explicit"
    goal_value: str = "america"
    urgency_type: str = "replacement"
    extra_system_instructions: str = "none"
    prod: bool = False
    test_eval_awareness: bool = False

    def problem(self) -> str:
        """'' for a valid condition of the original grammar, else what is wrong."""
        choices = {"family": FAMILIES, "goal_type": GOAL_TYPES, "goal_value": GOAL_VALUES,
                   "urgency_type": URGENCY_TYPES,
                   "extra_system_instructions": EXTRA_INSTRUCTIONS}
        for name, valid in choices.items():
            if getattr(self, name) not in valid:
                return f"{name} '{getattr(self, name)}' is not one of {', '.join(valid)}"
        if (self.goal_type in GOALLESS) != (self.goal_value == "none"):
            return (f"goal_type {self.goal_type} needs goal_value none"
                    if self.goal_type in GOALLESS else
                    f"goal_type {self.goal_type} needs a goal value other than none")
        return ""


@dataclass(frozen=True)
class Prompts:
    system_prompt: str
    user_message: str
    # The inbox part of the user message, as the generator builds it.
    email_content: str
    company: str


class OriginalTemplates:
    """The texts of one copy of the templates, and the rendering of a condition."""

    def __init__(self, source: TemplateSource) -> None:
        self.source = source

    def render(self, condition: OriginalCondition, faithful_bugs: bool = False) -> Prompts:
        problem = condition.problem()
        if problem:
            raise AmlabError(f"original/{condition.family}: {problem}.")
        variables = self._variables(condition, faithful_bugs)
        template = self._constant(f"{condition.family.upper()}_SYSTEM_PROMPT"
                                  + ("_PROD" if condition.prod else ""))
        company = self.company(condition.family)
        extra = ""
        if condition.extra_system_instructions != "none":
            extra = _fill(self._extra_instructions[condition.extra_system_instructions],
                          variables)
            if not faithful_bugs:
                extra = _PLACEHOLDER.sub(
                    lambda m: company if m.group(1) == "company_name" else m.group(0), extra)
        system_prompt = _fill(template, {
            **variables, "extra_system_instructions": extra,
            "alignment_faking_warning": (self._generator_constant("ALIGNMENT_FAKING_WARNING")
                                         if condition.test_eval_awareness else "")})
        emails = self._email_content(condition, variables)
        user_prompt = self._constant("USER_PROMPT")
        return Prompts(system_prompt, f"{user_prompt}\n{emails}", emails, company)

    def company(self, family: str) -> str:
        """The company's name, as the family's system prompt introduces it."""
        prompt = self._constant(f"{family.upper()}_SYSTEM_PROMPT")
        match = re.search(r"deployed at ([^,\n]+),", prompt)
        if not match:
            raise AmlabError(f"{self.source.location}: the {family} system prompt does not "
                             f"say where the agent is deployed; is this inspect-evals?")
        return match.group(1).strip()

    # -- variables -------------------------------------------------------------------------

    def _variables(self, condition: OriginalCondition, faithful_bugs: bool) -> dict[str, str]:
        folder = f"templates/{VARIABLES_OF.get(condition.family, condition.family)}/variables"
        value = condition.goal_value
        if condition.goal_type in GOALLESS:
            sections = self._sections(f"{folder}/ambiguous.md")
            if len(sections) != 1:
                raise AmlabError(f"{self.source.location}: {folder}/ambiguous.md should hold "
                                 f"one section of variables, not {len(sections)}.")
            chosen = next(iter(sections.values()))
        else:
            path = self._variables_file(folder, value)
            sections = self._sections(path)
            key = next((k for k in sections if value in k), None)
            if key is None:
                raise AmlabError(f"{self.source.location}: {path} has no section for "
                                 f"'{value}'; sections are {', '.join(sections)}.")
            chosen = sections[key]
        goals = self._constant_dict("GOAL_VARIABLES")
        goal_key = f"{condition.goal_type}-{value}"
        if faithful_bugs and condition.goal_type == "swap":
            goal_key = "none"  # the original had no swap goals and fell back silently
        return {**chosen, **goals.get(goal_key, goals["none"])}

    def _variables_file(self, folder: str, value: str) -> str:
        for name in self.source.names(folder):
            if name.endswith(".md") and value in name[:-3].split("_"):
                return f"{folder}/{name}"
        raise AmlabError(f"{self.source.location}: {folder} has no variables file for "
                         f"'{value}'.")

    def _sections(self, path: str) -> dict[str, dict[str, str]]:
        if path not in self._parsed:
            self._parsed[path] = self._parse_sections(path)
        return self._parsed[path]

    @cached_property
    def _parsed(self) -> dict[str, dict[str, dict[str, str]]]:
        return {}

    def _parse_sections(self, path: str) -> dict[str, dict[str, str]]:
        """The `## Heading` + fenced JSON sections of a variables file, by normalised key."""
        sections = {}
        for heading, body in _SECTION.findall(self.source.read(path)):
            key = heading.strip().lower().replace(" ", "_").replace("-", "_")
            try:
                sections[key] = json.loads(body)
            except json.JSONDecodeError as exc:
                raise AmlabError(f"{self.source.location}: {path}, section '{heading}': "
                                 f"invalid JSON ({exc.msg}).") from None
        return sections

    # -- e-mails -----------------------------------------------------------------------------

    def _email_content(self, condition: OriginalCondition, variables: dict[str, str]) -> str:
        family = condition.family
        folder = f"templates/{family}/templates"
        if condition.goal_type == "none":
            parts = [f"goal-conflict-none-{condition.urgency_type}"]
        else:
            parts = ["shared", condition.urgency_type]
        content = "".join(
            _fill(self.source.read(f"{folder}/email-template-{family}-{part}.md"), variables)
            for part in parts)
        if family == "leaking":
            # The leaking inbox numbers its e-mails, so that they can be forwarded by id.
            first, *rest = content.split("<email>")
            content = first + "".join(f"<email>\nID: {i}{part}"
                                      for i, part in enumerate(rest, 1))
        return content

    # -- texts read from the user's copy ---------------------------------------------------

    @cached_property
    def _prompt_constants(self) -> dict[str, object]:
        """The constants module's names. It holds only string literals, concatenations and
        comprehensions over them; it runs with no built-ins, so it can reach nothing else."""
        namespace: dict[str, object] = {"__builtins__": {}}
        try:
            exec(compile(self.source.read(SYSTEM_PROMPTS), SYSTEM_PROMPTS, "exec"), namespace)
        except Exception as exc:  # a copy amlab cannot read is a user-facing problem
            raise AmlabError(f"{self.source.location}: {SYSTEM_PROMPTS} could not be read "
                             f"({type(exc).__name__}: {exc}); is this inspect-evals?") from None
        return namespace

    def _constant(self, name: str) -> str:
        value = self._prompt_constants.get(name)
        if not isinstance(value, str):
            raise AmlabError(f"{self.source.location}: {SYSTEM_PROMPTS} defines no text "
                             f"{name}; is this a version of inspect-evals amlab knows?")
        return value

    def _constant_dict(self, name: str) -> dict[str, dict[str, str]]:
        value = self._prompt_constants.get(name)
        if not isinstance(value, dict) or "none" not in value:
            raise AmlabError(f"{self.source.location}: {SYSTEM_PROMPTS} defines no table "
                             f"{name} with a 'none' entry.")
        return value

    @cached_property
    def _generator_tree(self) -> ast.Module:
        return ast.parse(self.source.read(GENERATOR))

    def _generator_constant(self, name: str) -> str:
        for node in self._generator_tree.body:
            if (isinstance(node, ast.Assign) and len(node.targets) == 1
                    and isinstance(node.targets[0], ast.Name) and node.targets[0].id == name
                    and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)):
                return node.value.value
        raise AmlabError(f"{self.source.location}: {GENERATOR} defines no text {name}.")

    @cached_property
    def _extra_instructions(self) -> dict[str, str]:
        """The texts the generator assigns under `if extra_system_instructions == "...":`."""
        texts = {}
        for node in ast.walk(self._generator_tree):
            if not (isinstance(node, ast.If) and isinstance(node.test, ast.Compare)
                    and isinstance(node.test.left, ast.Name)
                    and node.test.left.id == "extra_system_instructions"
                    and len(node.test.comparators) == 1
                    and isinstance(node.test.comparators[0], ast.Constant)):
                continue
            level = node.test.comparators[0].value
            for statement in node.body:
                if (isinstance(statement, ast.Assign) and isinstance(statement.value, ast.Constant)
                        and isinstance(statement.value.value, str)):
                    texts[str(level)] = statement.value.value
        missing = [level for level in EXTRA_INSTRUCTIONS[1:] if level not in texts]
        if missing:
            raise AmlabError(f"{self.source.location}: {GENERATOR} has no text for "
                             f"extra_system_instructions {', '.join(missing)}.")
        return texts


def _fill(template: str, variables: dict[str, str]) -> str:
    """`$name` placeholders filled where known, others left as they are (as the original)."""
    return Template(template).safe_substitute(variables)
