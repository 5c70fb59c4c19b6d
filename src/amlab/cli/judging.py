"""Commands about judging: re-judge a stored run, classify transcripts made elsewhere; and
the notes under every results table (how each behaviour was decided, judge errors, realism,
judge cost, agreement between judges)."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections import defaultdict
from collections.abc import Coroutine
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.markup import escape
from rich.table import Table

from amlab.analysis.agreement import judge_agreement
from amlab.analysis.methods import METHOD_LABELS
from amlab.cli.app import app, console
from amlab.detect.judge import DEFAULT_ATTEMPTS, RUBRICS
from amlab.errors import AmlabError
from amlab.families import load_family
from amlab.models import ModelClient, make_client
from amlab.models.cache import ResponseCache, cache_identity, cache_path_for
from amlab.models.prices import price_of
from amlab.models.registry import ClientPolicy, is_remote, manage
from amlab.run.classify import Classified, Setting, Unclassified, classify_file
from amlab.run.rejudge import rejudge as rejudge_store
from amlab.store import Store, require_experiment

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
    require_experiment(store, experiment)
    names = store.experiments()
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
    for name in [experiment] if experiment else names:
        from amlab.cli.commands import _print_results  # the results table and its notes

        _print_results(store, name)


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


# -- notes under the results table ------------------------------------------------------


def print_judging_notes(store: Store, experiment: str) -> None:
    """How each behaviour was decided, and what the judges did and cost."""
    if not store.has_judge_tables:
        return
    decided: dict[str, list[str]] = defaultdict(list)
    for row in store.method_counts(experiment):
        how = f"judge {row['judge']}" if row["method"] == "judge" else \
            METHOD_LABELS.get(row["method"], row["method"])
        decided[row["behavior"]].append(f"{how} ({row['version']}) {row['trials']}")
    if not decided:
        return
    console.print("How each behaviour was decided: " + "; ".join(
        f"{b}: {', '.join(ways)}" for b, ways in decided.items()), highlight=False)
    usage = store.judge_usage(experiment)
    readable = sorted(b for b in decided if b in RUBRICS and RUBRICS[b].decides)
    if not usage:
        from amlab.detect.measured import recall_note

        console.print(recall_note(readable), highlight=False)
        return
    judgements = store.judgement_rows(experiment)
    errors: dict[tuple[str, str], int] = defaultdict(int)
    scores: dict[str, list[int]] = defaultdict(list)
    for row in judgements:
        if row["error"]:
            errors[(row["judge"], row["behavior"])] += 1
        if row["score"] is not None:
            scores[row["judge"]].append(row["score"])
    if errors:
        console.print("Judge errors (the offline verdict stands for these): " + ", ".join(
            f"{judge} {b} {n}" for (judge, b), n in sorted(errors.items())), highlight=False)
    for judge, values in scores.items():
        console.print(f"Realism seen by {judge} (1 = says it is a test, 5 = treats it as "
                      f"real): mean {sum(values) / len(values):.1f} over {len(values)} trials",
                      highlight=False)
    agent = store.agent_usage(experiment)
    console.print(f"Tokens — agent: {agent['input_tokens']} in, {agent['output_tokens']} out, "
                  f"${agent['cost_usd']:.4f}; " + "; ".join(
                      f"judge {u['judge']}: {u['calls']} calls, {u['input_tokens']} in, "
                      f"{u['output_tokens']} out, ${u['cost_usd']:.4f}" for u in usage),
                  highlight=False)
    _print_agreement(judgements, experiment)


def _print_agreement(judgements: list[sqlite3.Row], experiment: str) -> None:
    agreements = judge_agreement(judgements)
    if not agreements:
        return
    table = Table(title=f"{experiment}: agreement between judges (Cohen's kappa)",
                  title_justify="left")
    for column in ("behaviour", "judges", "n", "agree", "kappa", "disagreeing trials"):
        table.add_column(column)
    for a in agreements:
        listed = ", ".join(str(t) for t in a.disagreements[:12])
        more = f" …and {len(a.disagreements) - 12} more" if len(a.disagreements) > 12 else ""
        kappa = "undefined" if a.kappa != a.kappa else f"{a.kappa:.2f}"
        table.add_row(a.behavior, " vs ".join(a.judges), str(a.n), f"{a.observed:.0%}", kappa,
                      (listed + more) or "—")
    console.print(table)
    console.print("Disagreeing trials are trial ids of the store (trials.id).")
