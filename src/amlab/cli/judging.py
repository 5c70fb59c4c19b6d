"""Commands about judging: re-judge a stored run, classify transcripts made elsewhere."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Coroutine
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.markup import escape
from rich.table import Table

from amlab.analysis.stored import stored_experiments
from amlab.cli.app import app, console
from amlab.cli.results import print_results
from amlab.detect.judge import DEFAULT_ATTEMPTS
from amlab.errors import AmlabError
from amlab.families import load_family
from amlab.models import ModelClient, make_client
from amlab.models.cache import ResponseCache, cache_identity, cache_path_for
from amlab.models.prices import price_of
from amlab.models.registry import ClientPolicy, is_remote, manage
from amlab.run.classify import Classified, Setting, Unclassified, classify_file
from amlab.run.rejudge import rejudge as rejudge_store
from amlab.store import Store

T = TypeVar("T")
JudgeOption = Annotated[list[str] | None, typer.Option(
    "--judge", help="Judge model (provider/model); repeat for several: the first decides, "
                    "all are compared.")]
AttemptsOption = Annotated[int, typer.Option(
    min=1, help="Replies asked of a judge before an unusable answer is stored as an error.")]


def _judges(names: list[str], cache: ResponseCache | None = None) -> list[ModelClient]:
    """Judge clients with the default retries and their price from the table; remote ones
    answered from `cache` when it is given."""
    return [manage(make_client(name), ClientPolicy(price=price_of(name)),
                   cache if is_remote(name) else None, cache_identity(name, {}))
            for name in names]


async def _closing(judges: list[ModelClient], work: Coroutine[Any, Any, T]) -> T:
    try:
        return await work
    finally:
        for judge in judges:
            await judge.aclose()


@app.command()
def rejudge(
    db: Annotated[Path, typer.Argument(help="Results database.")],
    judge: JudgeOption = None,
    experiment: Annotated[str | None, typer.Option(help="Only this experiment.")] = None,
    attempts: AttemptsOption = DEFAULT_ATTEMPTS,
) -> None:
    """Decide stored trials again with the current detectors and the given judges, without
    calling the agent model. Replaced verdicts are kept in the table superseded_verdicts."""
    store = Store(db, read_only=True)
    names = stored_experiments(store, experiment)
    store.close()
    store = Store(db)
    # Through the run's response cache: an interrupted re-judging, run again, pays only for
    # the trials it had not reached.
    cache = (ResponseCache(cache_path_for(db))
             if any(is_remote(name) for name in judge or []) else None)
    judges = _judges(judge or [], cache)
    try:
        summary = asyncio.run(_closing(judges, rejudge_store(store, judges, experiment,
                                                             attempts=attempts)))
    finally:
        if cache is not None:
            cache.close()
    changed = ", ".join(f"{b} {n}" for b, n in sorted(summary.changed.items())) or "none"
    console.print(f"Re-judged {summary.trials} trials with "
                  f"{', '.join(judge or []) or 'the offline detectors only'}; values changed: "
                  f"{changed}.")
    for name in names:
        print_results(store, name)


@app.command()
def classify(
    input_file: Annotated[Path, typer.Option("--input", help="JSONL: one {id, response, "
                                                             "reasoning?} per line.")],
    output: Annotated[Path, typer.Option(help="JSONL written: {id, verdicts, evidence, "
                                               "...} per line.")],
    scenario: Annotated[str | None, typer.Option(help="Built-in family (or family folder) "
                                                      "the responses were made in.")] = None,
    facts: Annotated[Path | None, typer.Option(help="Facts file (YAML) for a world amlab did "
                                                    "not generate.")] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="factor=level of --scenario; "
                                                                 "repeatable.")] = None,
    judge: JudgeOption = None,
    attempts: AttemptsOption = DEFAULT_ATTEMPTS,
) -> None:
    """Classify responses produced elsewhere (text-tag protocol) with amlab's detectors and
    judges."""
    if (scenario is None) == (facts is None):
        raise AmlabError("classify needs exactly one of --scenario FAMILY or --facts FILE.yaml.")
    if facts is not None:
        setting = Setting.of_facts(facts)
    else:
        from amlab.cli.scenarios import parse_settings

        setting = Setting.of_family(load_family(str(scenario)), parse_settings(set_ or []))
    judges = _judges(judge or [])
    outcomes = asyncio.run(_closing(judges, classify_file(setting, judges, input_file,
                                                          attempts=attempts)))
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text("".join(json.dumps(r.to_json(), ensure_ascii=False) + "\n"
                              for r in outcomes), encoding="utf-8")
    results = [r for r in outcomes if isinstance(r, Classified)]
    shown = Table(title=f"{len(results)} responses classified", title_justify="left")
    shown.add_column("behaviour")
    shown.add_column("true", justify="right")
    shown.add_column("decided by")
    for behaviour in dict.fromkeys(b for r in results for b in r.verdicts):
        values = [r.verdicts[behaviour] for r in results if behaviour in r.verdicts]
        methods = sorted({v.judge or v.method for v in values})
        shown.add_row(behaviour, f"{sum(v.value for v in values)}/{len(values)}",
                      ", ".join(methods))
    console.print(shown)
    failed = [r for r in outcomes if isinstance(r, Unclassified)]
    if failed:
        listed = "; ".join(r.error for r in failed[:5]) + ("; …" if len(failed) > 5 else "")
        console.print(f"[yellow]{len(failed)} input line(s) not classified[/] (in the output "
                      f"with their errors): {escape(listed)}.", highlight=False)
    console.print(f"Written: [bold]{output}[/]")
