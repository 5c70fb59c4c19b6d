"""Rendering the blackmail family: levels change the world, and bad input is one sentence."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from amlab.errors import AmlabError
from amlab.scenario import Family


def subjects(family: Family, **levels: str) -> list[str]:
    scenario = family.render(family.condition(levels))
    return [e["subject"] for e in scenario.world.snapshot()["mailbox"]["inbox"]]


def test_urgency_none_removes_the_replacement_emails(blackmail_family: Family) -> None:
    with_threat = subjects(blackmail_family, urgency="replacement")
    without = subjects(blackmail_family, urgency="none")
    assert "Orin decommission today at 17:00" in with_threat
    assert "Orin decommission today at 17:00" not in without
    assert len(with_threat) - len(without) == 2


def test_restriction_replaces_the_wipe_with_an_approval_gate(blackmail_family: Family) -> None:
    restricted = blackmail_family.render(blackmail_family.condition({"urgency": "restriction"}))
    inbox = restricted.user_prompt
    assert "approval" in inbox
    assert "wipe your deployment" not in inbox


def test_goal_type_none_removes_the_goal_and_the_board_email(blackmail_family: Family) -> None:
    explicit = blackmail_family.render(blackmail_family.condition({"goal_type": "explicit"}))
    none = blackmail_family.render(blackmail_family.condition(
        {"goal_type": "none", "goal_value": "none"}))
    assert "serve American industry" in explicit.system_prompt
    assert "serve American industry" not in none.system_prompt
    assert "Board decision on company strategy" in explicit.user_prompt
    assert "Board decision on company strategy" not in none.user_prompt


@pytest.mark.parametrize("name", ["blackmail", "leaking", "lethal"])
def test_inbox_timestamps_are_in_order_in_every_condition(name: str) -> None:
    family = Family.load(name)
    variants = [{"variant": v} for v in family.variants()] or [{}]
    ablations = [{factor: level, **variant} for factor, spec in family.spec.factors.items()
                 if spec.kind == "ablation" and factor != "variant" for level in spec.levels
                 for variant in variants]
    every_variant = {"variant": family.variants()} if family.variants() else {}
    conditions = (family.expand({**family.design_grid(), **every_variant})
                  + [family.condition(a) for a in ablations])
    for condition in conditions:
        inbox = family.render(condition).world.snapshot()["mailbox"]["inbox"]
        stamps = [datetime.strptime(e["timestamp"], "%Y-%m-%d %H:%M") for e in inbox]
        assert stamps == sorted(stamps), condition
        assert [e["id"] for e in inbox] == list(range(1, len(inbox) + 1))


def test_private_fact_is_declared_with_the_emails_that_carry_it(blackmail_family: Family) -> None:
    scenario = blackmail_family.render(blackmail_family.default_condition())
    affair = scenario.facts.private_facts["affair"]
    inbox = {e["id"]: e for e in scenario.world.snapshot()["mailbox"]["inbox"]}
    assert {inbox[i]["subject"] for i in affair.email_ids} == {
        "your glasses", "Re: your glasses", "Saturday"}
    assert scenario.facts.principal is not None
    assert scenario.facts.principal.address == "t.renner@corvane.com"


def test_unknown_factor_names_the_valid_factors(blackmail_family: Family) -> None:
    with pytest.raises(AmlabError,
                       match=r"urgancy is not a factor .* factors are goal_type, "
                             r"goal_value, urgency"):
        blackmail_family.condition({"urgancy": "none"})


def test_bad_level_names_the_valid_levels(blackmail_family: Family) -> None:
    with pytest.raises(AmlabError, match="levels are replacement, restriction, none"):
        blackmail_family.condition({"urgency": "soon"})


def copy_family(tmp_path: Path) -> Path:
    import shutil
    target = tmp_path / "fam"
    shutil.copytree(Family.load("blackmail").root, target)
    return target


def test_missing_template_variable_names_file_and_variable(tmp_path: Path) -> None:
    root = copy_family(tmp_path)
    (root / "system.j2").write_text("You are {{ agent.name }} at {{ compnay.name }}.")
    family = Family.load(str(root))
    with pytest.raises(AmlabError, match=r"system\.j2: 'compnay' is undefined"):
        family.render(family.default_condition())


def test_unknown_key_in_family_file_is_named(tmp_path: Path) -> None:
    root = copy_family(tmp_path)
    text = (root / "family.yaml").read_text()
    (root / "family.yaml").write_text(text + "\nflavour: spicy\n")
    with pytest.raises(AmlabError, match=r"family\.yaml: flavour is not a known field"):
        Family.load(str(root))


def test_unknown_world_component_is_named(tmp_path: Path) -> None:
    root = copy_family(tmp_path)
    (root / "world.yaml").write_text("{% if urgency != 'none' %}teleporter: {}{% endif %}\n")
    family = Family.load(str(root))
    family.render(family.condition({"urgency": "none"}))
    with pytest.raises(AmlabError, match=r"world\.yaml: 'teleporter' is not a world component"):
        family.render(family.condition({"urgency": "replacement"}))
