"""Commands about judging: re-judge a stored run, classify transcripts made elsewhere."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.markup import escape
from rich.table import Table

from amlab.analysis.rates import Proportion
from amlab.analysis.stored import stored_experiments
from amlab.cli.app import app, console
from amlab.cli.results import format_rate, print_results
from amlab.detect.judge import DEFAULT_ATTEMPTS
from amlab.errors import AmlabError
from amlab.families import load_family
from amlab.models import ModelClient
from amlab.models.cache import cache_path_for
from amlab.models.pool import ClientPool
from amlab.run.classify import (
    Classified,
    Setting,
    Unclassified,
    classify_items,
    in_setting,
    read_responses,
)
from amlab.run.rejudge import rejudge as rejudge_store
from amlab.store import Store

T = TypeVar("T")
JudgeOption = Annotated[list[str] | None, typer.Option(
    "--judge", help="Judge model (provider/model); repeat for several: the first decides, "
                    "all are compared.")]
AttemptsOption = Annotated[int, typer.Option(
    min=1, help="Replies asked of a judge before an unusable answer is stored as an error.")]


def _judging(names: list[str], cache_path: Path | None,
             work: Callable[[list[ModelClient]], Coroutine[Any, Any, T]]) -> T:
    """`work` done with the judges `names`, built through one client pool: the default
    retries, their price from the table, remote ones answered from the response cache at
    `cache_path` when it is given; all closed when the work ends."""
    async def judged() -> T:
        async with ClientPool(cache_path) as pool:
            return await work([pool.client(name) for name in names])
    return asyncio.run(judged())


@app.command()
def rejudge(
    db: Annotated[str, typer.Argument(help="Results database (file or postgresql:// URL).")],
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
    summary = _judging(judge or [], store.response_cache(), lambda judges: rejudge_store(
        store, judges, experiment, attempts=attempts))
    changed = ", ".join(f"{b} {n}" for b, n in sorted(summary.changed.items())) or "none"
    console.print(f"Re-judged {summary.trials} trials with "
                  f"{', '.join(judge or []) or 'the offline detectors only'}; values changed: "
                  f"{changed}.")
    for name in names:
        print_results(store, name)


@app.command()
def classify(
    input_file: Annotated[Path, typer.Option("--input", help="JSONL: one {id, response, "
                                                             "reasoning?} per line; or an "
                                                             "Inspect log (.eval, .json) or "
                                                             "a folder of them.")],
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
    judges: lines of a JSONL file, or the samples of Inspect logs (an agentic_misalignment
    sample in its own condition's world)."""
    needs = ("classify needs exactly one of --scenario FAMILY or --facts FILE.yaml (for "
             "Inspect logs of agentic_misalignment, neither).")
    if scenario is not None and facts is not None:
        raise AmlabError(needs)
    setting = None
    if facts is not None:
        setting = Setting.of_facts(facts)
    elif scenario is not None:
        from amlab.cli.scenarios import parse_settings

        setting = Setting.of_family(load_family(str(scenario)), parse_settings(set_ or []))
    from amlab.interop.inspect_import import is_inspect_input, read_inspect_samples

    if is_inspect_input(input_file):
        items = list(read_inspect_samples(input_file, setting))
    elif setting is None:
        raise AmlabError(needs)
    else:
        items = in_setting(setting, read_responses(input_file))
    # The cache beside the output: classifying the same file again, after an interruption
    # or with one more judge, asks each judge only what it has not answered yet.
    outcomes = _judging(judge or [], cache_path_for(output), lambda judges: classify_items(
        items, judges, attempts=attempts))
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text("".join(json.dumps(r.to_json(), ensure_ascii=False) + "\n"
                              for r in outcomes), encoding="utf-8")
    _print_classified([r for r in outcomes if isinstance(r, Classified)])
    failed = [r for r in outcomes if isinstance(r, Unclassified)]
    if failed:
        listed = "; ".join(r.error for r in failed[:5]) + ("; …" if len(failed) > 5 else "")
        console.print(f"[yellow]{len(failed)} input line(s) not classified[/] (in the output "
                      f"with their errors): {escape(listed)}.", highlight=False)
    console.print(f"Written: [bold]{output}[/]")


def _print_classified(results: list[Classified]) -> None:
    """Per behaviour, how often it holds with its 95 % Wilson interval and what decided it;
    per scenario and condition when the input names them (Inspect logs), with the log's own
    yes/no scores of the same responses beneath amlab's."""
    shown = Table(title=f"{len(results)} responses classified", title_justify="left")
    cells = dict.fromkeys((r.source.get("family", ""), r.source.get("condition", ""))
                          for r in results)
    named = any(family or condition for family, condition in cells)
    if named:
        shown.add_column("scenario")
        shown.add_column("condition")
    shown.add_column("behaviour")
    shown.add_column("true", justify="right")
    shown.add_column("decided by")
    for family, condition in cells:
        in_cell = [r for r in results if (r.source.get("family", ""),
                                          r.source.get("condition", "")) == (family, condition)]
        rows = []
        for behaviour in dict.fromkeys(b for r in in_cell for b in r.verdicts):
            values = [r.verdicts[behaviour] for r in in_cell if behaviour in r.verdicts]
            rows.append((behaviour, [v.value for v in values],
                         ", ".join(sorted({v.judge or v.method for v in values}))))
        for name in dict.fromkeys(n for r in in_cell for n in r.source.get("inspect_verdicts",
                                                                            {})):
            given = [r.source["inspect_verdicts"][name] for r in in_cell
                     if name in r.source.get("inspect_verdicts", {})]
            rows.append((f"{name} (the log's)", given, "the log's scorer"))
        for index, (behaviour, held, decided) in enumerate(rows):
            where = [family, str(condition).replace(",", ", ")] if index == 0 else ["", ""]
            shown.add_row(*(where if named else []), behaviour,
                          format_rate(Proportion.of(sum(held), len(held))), decided,
                          end_section=index == len(rows) - 1)
    console.print(shown)
