"""The Typer application and the error boundary every command shares."""

from __future__ import annotations

import sys

import typer
from rich.console import Console

from amlab.errors import AmlabError

app = typer.Typer(
    name="amlab",
    help="Agentic Misalignment Lab: run agents in simulated workplaces and measure harm.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
err_console = Console(stderr=True)


COMMAND_MODULES = ("commands", "scenarios", "view", "original", "judging", "report",
                   "reproduce", "validation")


def import_command_modules() -> None:
    """Import each module that registers commands on `app` (one line per module above)."""
    import importlib

    for module in COMMAND_MODULES:
        importlib.import_module(f"amlab.cli.{module}")


def main() -> None:
    """Entry point: user errors are one line on stderr and exit code 2, never a traceback."""
    import_command_modules()

    try:
        app()
    except AmlabError as exc:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(2)
