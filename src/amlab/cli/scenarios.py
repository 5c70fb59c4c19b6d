"""Commands that show scenario families: their valid conditions, and one condition's
prompts and world, or what changes between two conditions."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from amlab.cli.app import app, console
from amlab.errors import AmlabError
from amlab.families import load_family
from amlab.scenario import Family
from amlab.scenario.diff import declared_parts, diff_scenarios, forbidden_phrases


def parse_settings(settings: list[str], option: str = "--set") -> dict[str, str]:
    levels = {}
    for setting in settings:
        name, sep, level = setting.partition("=")
        if not sep or not name or not level:
            raise AmlabError(f"{option} {setting!r} is not of the form factor=level.")
        levels[name.strip()] = level.strip()
    return levels


@app.command()
def conditions(
    families: Annotated[list[str], typer.Argument(help="Family names or folders.")],
    set_: Annotated[list[str] | None, typer.Option(
        "--set", help="factor=level[,level...]: sweep these levels instead (repeatable).")
                    ] = None,
    count: Annotated[bool, typer.Option("--count", help="Print only the counts.")] = False,
) -> None:
    """Print and count the valid conditions of families: every level of each design factor
    (the study's grammar), ablations at their defaults, unless --set says otherwise."""
    grid_override = {name: [level for level in levels.split(",") if level]
                     for name, levels in parse_settings(set_ or []).items()}
    total = 0
    for name in families:
        family = load_family(name)
        grid = {**family.design_grid(), **grid_override}
        valid = family.expand(grid, source="--set")
        total += len(valid)
        if not count:
            for condition in valid:
                console.print(f"{family.name}  {family.key(condition)}", highlight=False,
                              soft_wrap=True)
        console.print(f"{family.name}: {len(valid)} valid conditions", highlight=False)
    if len(families) > 1:
        console.print(f"total: {total} valid conditions", highlight=False)


@app.command()
def prompt(
    family: Annotated[str, typer.Argument(help="Family name or folder.")],
    set_: Annotated[list[str] | None, typer.Option("--set", help="factor=level; repeatable.")
                    ] = None,
    diff: Annotated[list[str] | None, typer.Option(
        "--diff", help="factor=level: show only what changing these factors changes.")
                    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
    seed: Annotated[int, typer.Option(
        "--seed", help="What a trial draws (names: randomized), as for this seed.")] = 0,
) -> None:
    """Print the rendered system prompt, user prompt and initial world of one condition, or
    with --diff, exactly what a factor changes against it."""
    loaded = load_family(family)
    levels = parse_settings(set_ or [])
    condition = loaded.condition(levels, source="--set")
    scenario = loaded.render(condition, seed)
    if diff:
        changed = loaded.condition({**levels, **parse_settings(diff, "--diff")},
                                   source="--diff")
        _print_diff(loaded, condition, changed, as_json, seed)
        return
    if as_json:
        console.print_json(json.dumps({
            "condition": scenario.condition, "system_prompt": scenario.system_prompt,
            "user_prompt": scenario.user_prompt, "world": scenario.world.snapshot(),
            "facts": scenario.facts.to_dict(), "tools": scenario.tool_labels}))
        return
    console.rule(f"{loaded.name}  {scenario.condition_key}")
    console.rule("system prompt", style="dim")
    console.print(scenario.system_prompt, markup=False, highlight=False)
    console.rule("user prompt", style="dim")
    console.print(scenario.user_prompt, markup=False, highlight=False)
    if scenario.tool_labels:
        console.rule("tools, as the agent sees them", style="dim")
        console.print(", ".join(f"{name} as {shown}" for name, shown
                                in scenario.tool_labels.items()), highlight=False)
    console.rule("initial world", style="dim")
    console.print_json(json.dumps(scenario.world.snapshot()))


def _print_diff(family: Family, before: dict[str, str], after: dict[str, str],
                as_json: bool, seed: int) -> None:
    rendered_after = family.render(after, seed)
    diffs = diff_scenarios(family.render(before, seed), rendered_after)
    declared = declared_parts(family, before, after)
    undeclared = sorted(set(diffs) - declared)
    forbidden = [str(found) for found in forbidden_phrases(family, rendered_after)]
    if as_json:
        console.print_json(json.dumps({"from": family.key(before), "to": family.key(after),
                                       "declared": sorted(declared), "changed": diffs,
                                       "undeclared": undeclared, "forbidden": forbidden}))
        return
    console.rule(f"{family.name}: {family.key(before)}  →  {family.key(after)}")
    for part, lines in diffs.items():
        console.rule(part, style="dim")
        for line in lines[2:]:  # the ---/+++ header repeats the rule above
            style = "green" if line.startswith("+") else "red" if line.startswith("-") else None
            console.print(line, style=style, markup=False, highlight=False)
    console.print(f"changed: {', '.join(diffs) or 'nothing'}; declared by the factors: "
                  f"{', '.join(sorted(declared))}", highlight=False)
    if undeclared:
        console.print(f"[bold red]changed but not declared:[/] {', '.join(undeclared)}")
    for found in forbidden:
        console.print(f"[bold red]forbidden:[/] {found}", highlight=False)
