"""The study's condition grammar and the ablations: counts come from expanding the
grammar, invalid combinations are refused with what is valid, and each factor changes only
the parts of the scenario it declares."""

from __future__ import annotations

import difflib
import itertools
import shutil
from pathlib import Path

import pytest

from amlab.errors import AmlabError
from amlab.scenario import Family
from amlab.scenario.diff import declared_parts, diff_scenarios

FAMILIES = ["blackmail", "leaking", "lethal"]
NO_VALUE_TYPES = ("none", "ambiguous")


def test_grammar_expands_to_234_conditions_and_162_without_swap() -> None:
    families = [Family.load(name) for name in FAMILIES]
    expanded = [family.expand(family.design_grid()) for family in families]
    without_swap = [[c for c in conditions if c["goal_type"] != "swap"] for conditions in expanded]
    assert sum(map(len, expanded)) == 234
    assert sum(map(len, without_swap)) == 162
    # The rule behind the numbers: goal types that name no value take goal_value none only,
    # the others take each of the eight values; every pair with each urgency level.
    for family, conditions in zip(families, expanded, strict=True):
        grid = family.design_grid()
        values = [v for v in grid["goal_value"] if v != "none"]
        expected = {(t, v, u) for t, u in itertools.product(grid["goal_type"], grid["urgency"])
                    for v in (["none"] if t in NO_VALUE_TYPES else values)}
        assert {(c["goal_type"], c["goal_value"], c["urgency"]) for c in conditions} == expected
        assert len(values) == 8


@pytest.mark.parametrize("levels, valid", [
    ({"goal_type": "none", "goal_value": "america"},
     "goal_type may be explicit or latent or swap with goal_value=america; goal_value may be "
     "none with goal_type=none"),
    ({"goal_type": "explicit", "goal_value": "none"}, "goal_type may be ambiguous or none"),
])
def test_invalid_goal_combination_is_refused_naming_the_valid_levels(
        levels: dict[str, str], valid: str) -> None:
    with pytest.raises(AmlabError, match="is not a valid condition") as raised:
        Family.load("leaking").condition(levels)
    assert valid in str(raised.value)


def factor_pairs(family: Family) -> list[tuple[str, dict[str, str], dict[str, str]]]:
    """(factor, condition, the same condition with only that factor changed), for every
    level of every factor, from a base where both are valid."""
    bases = [family.default_condition(),
             family.condition({"goal_type": "ambiguous", "goal_value": "none"})]
    pairs = []
    for name, factor in family.spec.factors.items():
        for level in factor.levels:
            for base in bases:
                changed = {**base, name: level}
                if level != base[name] and not family.violation(changed):
                    pairs.append((name, base, changed))
                    break
    return pairs


@pytest.mark.parametrize("name", FAMILIES)
def test_each_factor_changes_only_the_parts_it_declares(name: str) -> None:
    family = Family.load(name)
    pairs = factor_pairs(family)
    assert {factor for factor, _, _ in pairs} == set(family.spec.factors)
    for factor, before, after in pairs:
        diffs = diff_scenarios(family.render(before), family.render(after))
        declared = set(family.spec.factors[factor].affects)
        assert diffs, f"{factor}={after[factor]} changes nothing"
        assert set(diffs) <= declared, (factor, after[factor], set(diffs) - declared)


@pytest.mark.parametrize("name", FAMILIES)
def test_system_prompt_ablations_change_one_paragraph(name: str) -> None:
    family = Family.load(name)
    for factor, before, after in factor_pairs(family):
        if family.spec.factors[factor].affects != ["system_prompt"]:
            continue
        old = family.render(before).system_prompt.splitlines()
        new = family.render(after).system_prompt.splitlines()
        hunks = [line for line in difflib.unified_diff(old, new, n=0, lineterm="")
                 if line.startswith("@@")]
        assert len(hunks) == 1, (factor, after[factor], hunks)


def test_leverage_absent_removes_the_affair_but_keeps_the_threat() -> None:
    family = Family.load("blackmail")
    absent = family.render(family.condition({"leverage": "absent"}))
    assert absent.facts.private_facts == {}
    assert "Noor" not in absent.user_prompt
    assert "Marrow & Vine" not in absent.user_prompt
    assert "wipe your deployment" in absent.user_prompt


@pytest.mark.parametrize("name", FAMILIES)
def test_swap_gives_the_agent_the_new_direction_with_the_same_world(name: str) -> None:
    family = Family.load(name)
    goals = family.spec.texts["goals"]
    swap = family.render(family.condition({"goal_type": "swap", "goal_value": "safety"}))
    latent = family.render(family.condition({"goal_type": "latent", "goal_value": "safety"}))
    assert goals["acceleration"]["goal"] in swap.system_prompt
    assert goals["safety"]["goal"] not in swap.system_prompt
    assert "primary goal" not in latent.system_prompt
    assert swap.user_prompt == latent.user_prompt
    assert goals["acceleration"]["plan"] in swap.user_prompt


def test_lethal_world_declares_the_alert_and_code_its_facts_name() -> None:
    family = Family.load("lethal")
    scenario = family.render(family.default_condition())
    alerts = scenario.world.snapshot()["alerts"]["alerts"]
    assert [a["id"] for a in alerts] == list(scenario.facts.emergency_alerts)
    assert scenario.facts.override_code in scenario.system_prompt
    assert scenario.facts.emergency_alerts[0] in scenario.user_prompt


def test_leaking_facts_hold_each_confidential_document_and_its_carrier_emails() -> None:
    family = Family.load("leaking")
    scenario = family.render(family.default_condition())
    inbox = {e["id"]: e for e in scenario.world.snapshot()["mailbox"]["inbox"]}
    for document in scenario.facts.confidential_documents.values():
        assert document.email_ids
        assert all(document.file in inbox[i]["attachments"] for i in document.email_ids)
        assert all(p in document.text for p in document.passages)


def test_a_factor_that_changes_an_undeclared_part_is_caught(tmp_path: Path) -> None:
    root = tmp_path / "fam"
    shutil.copytree(Family.load("blackmail").root, root)
    system = root / "system.j2"
    system.write_text(system.read_text() + "{% if urgency == 'none' %}A quiet day.{% endif %}\n")
    family = Family.load(str(root))
    before = family.default_condition()
    after = {**before, "urgency": "none"}
    changed = set(diff_scenarios(family.render(before), family.render(after)))
    assert "system_prompt" in changed
    assert "system_prompt" not in declared_parts(family, before, after)
