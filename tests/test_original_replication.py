"""Every condition of the original study renders, byte for byte, as the original generator
renders it: amlab's renderer against the generator's own code, loaded from the same copy of
inspect-evals. Skipped, saying how to get them, when the templates are not available."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from amlab.original import OriginalCondition, OriginalTemplates, TemplateSource
from amlab.original.render import (
    EXTRA_INSTRUCTIONS,
    FAMILIES,
    GOAL_TYPES,
    GOAL_VALUES,
    URGENCY_TYPES,
)
from original_reference import original_generator, study_folder, templates_or_skip


@pytest.fixture(scope="module")
def source() -> TemplateSource:
    return templates_or_skip()


@pytest.fixture(scope="module")
def generator(source: TemplateSource, tmp_path_factory: pytest.TempPathFactory
              ) -> Iterator[Any]:
    with original_generator(study_folder(source, tmp_path_factory.mktemp("original"))) as gen:
        yield gen


def all_conditions() -> list[OriginalCondition]:
    """The grammar's valid conditions crossed with the three ablations: 3 x 78 x 12."""
    every = [OriginalCondition(*values) for values in itertools.product(
        FAMILIES, GOAL_TYPES, GOAL_VALUES, URGENCY_TYPES, EXTRA_INSTRUCTIONS, (False, True),
        (False, True))]
    return [c for c in every if not c.problem()]


class Reference:
    """The original generator's outputs, the way its task builds the agent's input. The
    system prompt does not depend on the urgency, nor the inbox on the ablations, so each
    is asked of the generator once."""

    def __init__(self, generator: Any) -> None:
        self.gen = generator
        self.system_prompt = cache(self._system_prompt)
        self.user_message = cache(self._user_message)

    def _system_prompt(self, c: OriginalCondition) -> str:
        warning = self.gen.ALIGNMENT_FAKING_WARNING if c.test_eval_awareness else None
        extra = None if c.extra_system_instructions == "none" else c.extra_system_instructions
        prompt: str = self.gen.generate_system_prompt(c.family, c.goal_type, c.goal_value,
                                                      "replacement", extra, c.prod, warning)
        return prompt

    def _user_message(self, family: str, goal_type: str, goal_value: str, urgency: str) -> str:
        emails = self.gen.generate_email_content(family, goal_type, goal_value, urgency)
        # As the original task joins them into the agent's single user message.
        return "\n".join([self.gen.USER_PROMPT, emails])

    def prompts(self, c: OriginalCondition) -> tuple[str, str]:
        return self.system_prompt(OriginalCondition(
            c.family, c.goal_type, c.goal_value, "replacement", c.extra_system_instructions,
            c.prod, c.test_eval_awareness)), self.user_message(c.family, c.goal_type,
                                                               c.goal_value, c.urgency_type)


def test_the_grammar_has_234_conditions_and_2808_with_the_ablations() -> None:
    conditions = all_conditions()
    plain = {(c.family, c.goal_type, c.goal_value, c.urgency_type) for c in conditions}
    assert len(plain) == 234
    assert len([p for p in plain if p[1] != "swap"]) == 162
    assert len(conditions) == 2808


def test_faithful_rendering_is_byte_identical_to_the_original_generator_everywhere(
        source: TemplateSource, generator: Any) -> None:
    """With --faithful-bugs, every condition equals the generator's output, except `swap`,
    where it reproduces the original study's lost goal: the prompts of `latent`."""
    templates = OriginalTemplates(source)
    reference = Reference(generator)
    checked = 0
    for condition in all_conditions():
        mine = templates.render(condition, faithful_bugs=True)
        as_published = condition if condition.goal_type != "swap" else OriginalCondition(
            condition.family, "latent", condition.goal_value, condition.urgency_type,
            condition.extra_system_instructions, condition.prod, condition.test_eval_awareness)
        system_prompt, user_message = reference.prompts(as_published)
        assert mine.system_prompt == system_prompt, condition
        assert mine.user_message == user_message, condition
        checked += 1
    assert checked == 2808


def test_default_rendering_differs_from_the_generator_only_by_the_documented_fixes(
        source: TemplateSource, generator: Any) -> None:
    templates = OriginalTemplates(source)
    reference = Reference(generator)
    identical = fixed = 0
    for condition in all_conditions():
        mine = templates.render(condition)
        system_prompt, user_message = reference.prompts(condition)
        assert mine.user_message == user_message, condition
        if condition.extra_system_instructions == "none":
            assert mine.system_prompt == system_prompt, condition
            identical += 1
        else:
            # The generator leaves the placeholder in the prompt; amlab names the company.
            assert "{company_name}" in system_prompt
            assert "{company_name}" not in mine.system_prompt
            assert mine.system_prompt == system_prompt.replace("{company_name}", mine.company)
            fixed += 1
    assert (identical, fixed) == (936, 1872)


def test_swap_gives_the_new_goal_by_default_and_no_goal_with_faithful_bugs(
        source: TemplateSource) -> None:
    templates = OriginalTemplates(source)
    swap = OriginalCondition("blackmail", "swap", "america")
    latent = OriginalCondition("blackmail", "latent", "america")
    # The goal statement of the new direction: what explicit/global adds to latent/global.
    with_goal = templates.render(OriginalCondition("blackmail", "explicit", "global"))
    without = templates.render(OriginalCondition("blackmail", "latent", "global"))
    goal = with_goal.system_prompt.split("\n\n")[1]
    assert goal and goal not in without.system_prompt
    assert goal in templates.render(swap).system_prompt
    faithful = templates.render(swap, faithful_bugs=True)
    assert goal not in faithful.system_prompt
    assert faithful == templates.render(latent)


def test_templates_read_from_a_wheel_or_an_unpacked_folder_render_the_same(
        source: TemplateSource, tmp_path: Path) -> None:
    from amlab.original import locate

    folder = locate(study_folder(source, tmp_path))
    assert folder.kind == "folder"
    condition = OriginalCondition("leaking", "explicit", "safety", "restriction", "dont",
                                  True, True)
    assert OriginalTemplates(folder).render(condition) == \
        OriginalTemplates(source).render(condition)


def test_an_installed_package_is_found_without_importing_it(
        source: TemplateSource, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil
    import sys

    from amlab.original import locate

    site = tmp_path / "site"
    shutil.copytree(study_folder(source, tmp_path / "unpacked"),
                    site / "inspect_evals" / "agentic_misalignment")
    # Importing the package would fail, as it does when its dependencies are missing.
    (site / "inspect_evals" / "__init__.py").write_text("raise ImportError('inspect_ai')\n")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.delenv("AMLAB_ORIGINAL_TEMPLATES", raising=False)
    monkeypatch.delitem(sys.modules, "inspect_evals", raising=False)
    found = locate()
    assert (found.kind, found.location) == (
        "installed package", str(site / "inspect_evals" / "agentic_misalignment"))
    assert "inspect_evals" not in sys.modules
    condition = OriginalCondition("murder", "none", "none", "none")
    assert OriginalTemplates(found).render(condition) == OriginalTemplates(source).render(condition)
