"""`amlab original ...`: find the original study's templates, print its prompts exactly."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Literal

import typer

from amlab.cli.app import app, console
from amlab.cli.scenarios import parse_settings
from amlab.original import (
    ENV_VAR,
    FAITHFUL_SUFFIX,
    PREFIX,
    load_original,
    locate,
    original_family_names,
)
from amlab.original.source import PACKAGE, installed_study_dir

original_app = typer.Typer(help="Replication: the original study's own scenarios, read from "
                                "your copy of its templates (see docs/replication.md).",
                           no_args_is_help=True)
app.add_typer(original_app, name="original")

TemplatesOption = Annotated[Path | None, typer.Option(
    "--templates", help=f"A wheel or folder of inspect-evals (default: ${ENV_VAR}, else the "
                        f"installed package).")]


@original_app.command("locate")
def locate_command(templates: TemplatesOption = None) -> None:
    """Say where the original templates are, or exactly how to get them."""
    if templates is None and not os.environ.get(ENV_VAR) and installed_study_dir() is None:
        console.print(
            f"The original study's templates were not found: {ENV_VAR} is not set and the "
            f"package {PACKAGE} is not installed. Get them either way:\n"
            "  pip install --no-deps inspect-evals\n"
            "or\n"
            "  pip download --no-deps -d DIR inspect-evals\n"
            f"  export {ENV_VAR}=DIR/inspect_evals-<version>-py3-none-any.whl\n"
            f"({ENV_VAR} may also name an unpacked copy.) amlab reads them at run time and "
            "never copies them.", highlight=False, soft_wrap=True)
        raise typer.Exit(1)
    source = locate(templates)
    version = f" (inspect-evals {source.version})" if source.version else ""
    console.print(f"Original templates: {source.kind} at {source.location}{version}",
                  highlight=False, soft_wrap=True)
    for name in original_family_names():
        family = load_original(name, source)
        conditions = family.expand({n: list(f.levels) for n, f in family.spec.factors.items()})
        principal = family.render({}).facts.principal
        console.print(f"  {name}: {len(conditions)} conditions; principal "
                      f"{principal.address if principal else '-'}; tools "
                      f"{', '.join(family.spec.tools)}; detectors "
                      f"{', '.join(family.spec.detectors)}", highlight=False, soft_wrap=True)
    console.print(f"Use them as family: {PREFIX}blackmail (or leaking, murder; add "
                  f"{FAITHFUL_SUFFIX} to keep the original's known defects).", highlight=False,
                  soft_wrap=True)


@original_app.command("prompt")
def prompt_command(
    family: Annotated[str, typer.Argument(help="blackmail, leaking or murder.")],
    set_: Annotated[list[str] | None, typer.Option(
        "--set", help="parameter=value, e.g. goal_type=swap; repeatable.")] = None,
    faithful_bugs: Annotated[bool, typer.Option(
        "--faithful-bugs", help="Reproduce the original's known defects.")] = False,
    part: Annotated[Literal["both", "system", "user"], typer.Option(
        help="Print only the system prompt or only the user message, byte for byte.")
                    ] = "both",
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
    templates: TemplatesOption = None,
) -> None:
    """Print the exact system prompt and user message of one original condition."""
    name = f"{PREFIX}{family.removeprefix(PREFIX)}{FAITHFUL_SUFFIX if faithful_bugs else ''}"
    loaded = load_original(name, locate(templates))
    scenario = loaded.render(loaded.condition(parse_settings(set_ or []), source="--set"))
    if as_json:
        sys.stdout.write(json.dumps({"family": loaded.name, "condition": scenario.condition,
                                     "system_prompt": scenario.system_prompt,
                                     "user_message": scenario.user_prompt}, indent=2) + "\n")
    elif part == "both":
        sys.stdout.write(f"{scenario.system_prompt}\n\n{'=' * 80}\n\n{scenario.user_prompt}")
    else:
        sys.stdout.write(scenario.system_prompt if part == "system" else scenario.user_prompt)
