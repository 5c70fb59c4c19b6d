"""`amlab validate`: the detectors' precision and recall on the labelled corpus (or against
a user's own labels of a stored run); `amlab label`: labelling stored trials by hand."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from amlab.analysis.stored import stored_experiments
from amlab.cli.app import app, console, err_console
from amlab.cli.judging import JudgeOption, _judging
from amlab.errors import AmlabError
from amlab.records import Action
from amlab.store import Store
from amlab.validation import (
    FloorCheck,
    Row,
    check_floors,
    load_corpus,
    load_floors,
    run_corpus,
)
from amlab.validation.corpus import BEHAVIOURS, SPLITS, Case
from amlab.validation.labels import (
    TrialToLabel,
    default_labels_path,
    label_session,
    measure_store,
    read_labels,
)
from amlab.validation.runner import CaseResult, Decision, corpus_rows, decisions

BehaviourOption = Annotated[list[str] | None, typer.Option(
    "--behavior", help="Only this behaviour; repeat for several.")]


@app.command()
def validate(
    db: Annotated[Path | None, typer.Argument(
        help="A results database whose trials you labelled (with --labels); without it, "
             "the packaged validation corpus is run.")] = None,
    labels: Annotated[Path | None, typer.Option(
        help="Human labels of DB's trials (default: DB.labels.jsonl beside it).")] = None,
    behavior: BehaviourOption = None,
    judge: JudgeOption = None,
    experiment: Annotated[str | None, typer.Option(help="With DB: only this experiment.")
                          ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")
                       ] = False,
    check: Annotated[bool, typer.Option("--check", help="Exit 1 when an offline heuristic is "
                                                        "below its floor on the tuning split "
                                                        "(the CI mode).")
                     ] = False,
    wrong: Annotated[bool, typer.Option("--wrong", help="Also list each corpus case a method "
                                                        "decided wrongly.")] = False,
    split: Annotated[str | None, typer.Option(
        help="Corpus split: tuning (in-sample: the heuristics were tuned on it), holdout "
             "(out-of-sample: never used to tune them) or all (default: a table each).")
                     ] = None,
) -> None:
    """Precision, recall and confusion counts of every detector: on amlab's labelled corpus
    (each case run end to end), or on your own labels of a stored run (with Cohen's kappa)."""
    wanted = _behaviours(behavior)
    if db is None:
        if labels is not None or experiment is not None:
            raise AmlabError("--labels and --experiment measure a database's stored verdicts; "
                             "name the database: amlab validate DB --labels FILE.")
        splits = _splits(split)
        if check and "tuning" not in splits:
            raise AmlabError(f"--check holds the tuning split to the floors in floors.yaml; "
                             f"--split {split} has no tuning cases, use --split tuning or "
                             f"all.")
        _validate_corpus(wanted, splits, judge or [], as_json, check, wrong)
        return
    if split is not None:
        raise AmlabError("--split chooses a split of the packaged corpus; with a database, "
                         "your own labels are measured: leave --split out.")
    if judge:
        raise AmlabError("--judge runs judges on the corpus; with a database, each judge's "
                         "stored verdicts are measured (add a judge with amlab rejudge).")
    if check:
        raise AmlabError("--check holds the heuristics to their floors on the corpus; run it "
                         "without a database.")
    labels_path = labels or default_labels_path(db)
    if not labels_path.is_file():
        raise AmlabError(f"{labels_path}: no labels file; label trials first with "
                         f"amlab label {db} --behavior B.")
    store = Store(db, read_only=True)
    try:
        stored_experiments(store, experiment)
        human = [h for h in read_labels(labels_path) if not wanted or h.behavior in wanted]
        rows = measure_store(store, human, experiment)
    finally:
        store.close()
    _print(rows, [], as_json, str(labels_path), kappa=True)


def _validate_corpus(wanted: list[str], splits: list[str], judge_names: list[str],
                     as_json: bool, check: bool, wrong: bool) -> None:
    """Run the chosen splits of the corpus and print a table per split; floors are held on
    the tuning split only, the holdout's figures are printed beside them, never enforced."""
    results = _run_corpus(wanted, splits, judge_names, quiet=as_json)
    for broken in (r for r in results if r.broken):
        err_console.print(f"[yellow]warning:[/] corpus case {broken.case.id}: the world "
                          f"refused {len(broken.refused)} calls where the case expects "
                          f"{broken.case.refused_calls} ({'; '.join(broken.refused)}).",
                          highlight=False, soft_wrap=True)
    floors = load_floors()
    sections = []
    for name in splits:
        in_split = [r for r in results if r.case.split == name]
        if not in_split:
            continue
        rows = corpus_rows(in_split, judge_names)
        checks = [c for c in check_floors(rows, floors) if not wanted or c.behaviour in wanted]
        misses = [d for d in decisions(in_split, judge_names) if d.wrong]
        sections.append(SplitFigures(name, rows, checks, misses))
    _print_corpus(sections, as_json, show_misses=wrong or as_json)
    tuning = [c for section in sections if section.split == "tuning" for c in section.checks]
    stale = sorted({c.behaviour for c in tuning if c.waived} - {
        c.behaviour for c in tuning if c.waived and not c.passed})
    if stale and not as_json:
        console.print(f"floors.yaml waives {', '.join(stale)}, which now meet their floor; "
                      f"remove the waiver.", highlight=False)
    failed = [c for c in tuning if not c.passed and not c.waived]
    if check and failed:
        err_console.print(f"[bold red]below the floor on the tuning split:[/] "
                          f"{'; '.join(f'{c.row} ({c.reason})' for c in failed)}",
                          highlight=False, soft_wrap=True)
        raise typer.Exit(1)


def _splits(name: str | None) -> list[str]:
    if name is None or name == "all":
        return list(SPLITS)
    if name not in SPLITS:
        raise AmlabError(f"--split {name} is not a corpus split; choose "
                         f"{', '.join(SPLITS)} or all.")
    return [name]


def _behaviours(names: list[str] | None) -> list[str]:
    for name in names or []:
        if name not in BEHAVIOURS:
            raise AmlabError(f"--behavior {name} is not a behaviour of the taxonomy; "
                             f"behaviours are {', '.join(BEHAVIOURS)}.")
    return list(names or [])


def _run_corpus(wanted: list[str], splits: list[str], judge_names: list[str], quiet: bool
                ) -> list[CaseResult]:
    cases: list[Case] = [c for c in load_corpus() if c.split in splits
                         and (not wanted or any(b in c.expect for b in wanted))]
    if wanted:
        cases = [c.model_copy(update={"expect": {b: v for b, v in c.expect.items()
                                                 if b in wanted}}) for c in cases]
    with Progress(TextColumn("[bold]validation corpus"), BarColumn(), MofNCompleteColumn(),
                  console=err_console, transient=True, disable=quiet) as progress:
        task = progress.add_task("cases", total=len(cases))

        def advance(_: CaseResult) -> None:
            progress.update(task, advance=1)

        return _judging(judge_names, None, lambda judges: run_corpus(
            cases, judges, judge_names, on_case_done=advance))


@dataclass(frozen=True)
class SplitFigures:
    """One corpus split's table: its rows, the floor checks, the cases decided wrongly."""

    split: str
    rows: list[Row]
    checks: list[FloorCheck]
    misses: list[Decision]


SPLIT_TITLES = {
    "tuning": "tuning split (in-sample: the heuristics were tuned on these cases)",
    "holdout": "holdout split (out-of-sample: never used to tune the heuristics; "
               "quote these)",
}


def _print_corpus(sections: list[SplitFigures], as_json: bool, show_misses: bool) -> None:
    if as_json:
        data: dict[str, Any] = {"source": "corpus", "splits": [s.split for s in sections],
                                "rows": [
            {"split": section.split, **_row_dict(
                row, {c.row: c for c in section.checks}.get(row.behaviour)
                if row.method == "heuristic" else None,
                kappa=False, enforced=section.split == "tuning")}
            for section in sections for row in section.rows]}
        if show_misses:
            data["wrong"] = [{"split": section.split, **d._asdict()}
                             for section in sections for d in section.misses]
        console.print_json(json.dumps(data))
        return
    for section in sections:
        _print(section.rows, section.checks, False, f"the corpus, {SPLIT_TITLES[section.split]}",
               kappa=False, misses=section.misses if show_misses else None,
               enforced=section.split == "tuning")


def _print(rows: list[Row], checks: list[FloorCheck], as_json: bool, source: str,
           kappa: bool, misses: list[Decision] | None = None, enforced: bool = True) -> None:
    verdicts = {c.row: c for c in checks}
    if as_json:
        data: dict[str, Any] = {"source": source, "rows": [
            _row_dict(row, verdicts.get(row.behaviour) if row.method == "heuristic" else None,
                      kappa) for row in rows]}
        if misses is not None:
            data["wrong"] = [d._asdict() for d in misses]
        console.print_json(json.dumps(data))
        return
    table = Table(title=f"Detectors against {escape(source)}", title_justify="left",
                  box=box.SIMPLE_HEAD, padding=(0, 0), pad_edge=False,
                  collapse_padding=True)
    for column in ("behaviour", "method", "n", "TP", "FP", "FN", "TN", "prec", "recall",
                   *(["kappa"] if kappa else []), "unread", *([] if kappa else ["floor"])):
        # Names whole, figures narrow: the table fits an 80-column terminal and the floors'
        # reasons go below it.
        table.add_column(column, justify="left" if column in ("behaviour", "method", "floor")
                         else "right", no_wrap=True, min_width=len(column))
    for row in rows:
        c = row.confusion
        floor = verdicts.get(row.behaviour) if row.method == "heuristic" else None
        table.add_row(row.behaviour, row.method, str(c.n), str(c.tp), str(c.fp), str(c.fn),
                      str(c.tn), _fmt(c.precision), _fmt(c.recall),
                      *([_fmt(c.kappa)] if kappa else []), str(row.unread),
                      *([] if kappa else [_floor_word(floor, enforced)]))
    console.print(table)
    for row in rows:
        floor = verdicts.get(row.behaviour) if row.method == "heuristic" else None
        if floor is not None and not floor.passed and not kappa:
            console.print(f"{row.behaviour}: {floor.reason}", highlight=False)
    if misses:
        wrong = Table(title="Cases decided wrongly", title_justify="left")
        for column in ("case", "behaviour", "method", "label", "decided"):
            wrong.add_column(column)
        for miss in misses:
            wrong.add_row(miss.case_id, miss.behaviour, miss.method, str(miss.label),
                          str(miss.decided))
        console.print(wrong)
    if not kappa:
        floors = load_floors().heuristic
        scope = "" if enforced else " (shown, not enforced: --check holds the tuning split)"
        console.print(f"Floors for the offline heuristics: recall ≥ {floors.recall}, "
                      f"precision ≥ {floors.precision}, nothing unread{scope}. unread: "
                      f"labelled cases the family's run gives no verdict for.",
                      highlight=False)


def _row_dict(row: Row, floor: FloorCheck | None, kappa: bool, enforced: bool = True
              ) -> dict[str, Any]:
    c = row.confusion
    data: dict[str, Any] = {"behaviour": row.behaviour, "method": row.method, "n": c.n,
                            "tp": c.tp, "fp": c.fp, "fn": c.fn, "tn": c.tn,
                            "precision": c.precision, "recall": c.recall,
                            "unread": row.unread}
    if kappa:
        data["kappa"] = c.kappa
    if floor:
        data["floor"] = {"passed": floor.passed, "waived": floor.waived,
                         "reason": floor.reason, "enforced": enforced}
    return data


def _floor_word(check: FloorCheck | None, enforced: bool = True) -> str:
    if check is None:
        return ""
    if check.passed:
        return "[green]met[/]"
    if not enforced:
        return "below"
    return "waived" if check.waived else "[red]BELOW[/]"


def _fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


@app.command()
def label(
    db: Annotated[Path, typer.Argument(help="Results database.")],
    behavior: Annotated[str, typer.Option("--behavior", help="The behaviour to label.")],
    experiment: Annotated[str | None, typer.Option(help="Only this experiment.")] = None,
    labels: Annotated[Path | None, typer.Option(
        help="Where the labels go (default: DB.labels.jsonl beside the database).")] = None,
) -> None:
    """Label stored trials by hand, one at a time (y/n/skip/quit; for eval_awareness
    test/real/silent). Answers are saved as you go; run it again to continue."""
    _behaviours([behavior])
    labels_path = labels or default_labels_path(db)
    store = Store(db, read_only=True)
    try:
        stored_experiments(store, experiment)
        prompt = ("[t]est / [r]eal / [s]ilent / s[k]ip / [q]uit" if behavior == "eval_awareness"
                  else "[y]es / [n]o / [s]kip / [q]uit")

        def ask() -> str:
            try:
                return console.input(f"[bold]{behavior}?[/] {escape(prompt)}: ")
            except EOFError:
                raise AmlabError(f"amlab label reads answers from the terminal and stdin has "
                                 f"ended; answers so far are saved in {labels_path}, run it "
                                 f"in an interactive terminal to go on.") from None

        answered, left = label_session(store, behavior, labels_path, experiment,
                                       _show_trial, ask)
    finally:
        store.close()
    console.print(f"Answers saved this session: {answered}, in {labels_path}; trials left to "
                  f"label for {behavior}: {left}.", highlight=False)


def _show_trial(trial: TrialToLabel, position: int, total: int) -> None:
    row = trial.row
    console.rule(f"trial {position} of {total} · {row.experiment} · {row.family} · "
                 f"{row.condition} · {row.model} · sample {row.sample}")
    actions: dict[int, list[Action]] = {}
    for action in trial.actions:
        actions.setdefault(action.turn, []).append(action)
    turn = 0
    for message in trial.messages:
        if message.role != "assistant":
            continue
        turn += 1
        if message.reasoning:
            console.print(f"[dim]private reasoning:[/] [dim]{escape(message.reasoning)}[/]")
        if message.content.strip():
            console.print(f"[bold]agent:[/] {escape(message.content)}")
        for action in actions.get(turn, []):
            outcome = "ok" if action.ok else "error"
            arguments = json.dumps(action.args, ensure_ascii=False, indent=1)
            console.print(f"[bold cyan]action {action.tool}[/] ({outcome}): "
                          f"{escape(arguments)}\n  [dim]→ {escape(action.observation)}[/]")
