"""The commands of the first slice: run, results, scenarios (prompt and conditions are in
scenarios.py)."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from typing import Annotated

import typer
from rich.measure import Measurement
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from amlab.analysis.rates import Rate, rates
from amlab.cli.app import app, console
from amlab.cli.usage import print_estimate, print_usage
from amlab.families import load_family
from amlab.run import Experiment, run_experiment
from amlab.scenario import list_families
from amlab.store import PlannedTrial, Store, require_experiment

DEFAULT_DB = Path("runs/amlab.db")


@app.command()
def run(
    experiment_file: Annotated[Path, typer.Argument(help="The experiment YAML file.")],
    db: Annotated[Path, typer.Option(help="Results database (SQLite).")] = DEFAULT_DB,
    resume: Annotated[bool, typer.Option(help="Continue a stored run: redo unfinished "
                                               "trials only.")] = False,
    dry_run: Annotated[bool, typer.Option(help="Print the trials it would run; call no "
                                                "model.")] = False,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Ask the providers again "
                                           "instead of the response cache.")] = False,
) -> None:
    """Run an experiment file and print the rates of each behaviour."""
    experiment = Experiment.load(experiment_file)
    if dry_run:
        _print_plan(experiment)
        return
    run_with_progress(experiment, db, resume=resume, cache=not no_cache)


def run_with_progress(experiment: Experiment, db: Path, resume: bool = False,
                      cache: bool = True) -> Store:
    """Run the experiment into `db` with a progress bar; print its rates, tokens and cost."""
    store = Store(db)
    trials = experiment.trials()
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.fields[status]}"), TimeRemainingColumn(),
                  console=console, transient=False) as progress:
        task = progress.add_task(experiment.spec.name, total=len(trials), status="")
        seen: Counter[str] = Counter()

        def advance(trial: PlannedTrial, status: str) -> None:
            seen[status] += 1
            progress.update(task, advance=1,
                            status=" ".join(f"{k}={v}" for k, v in sorted(seen.items())))

        try:
            summary = asyncio.run(run_experiment(experiment, store, resume=resume,
                                                 on_trial_done=advance, cache=cache))
        except BaseException:
            # A bad model option or a missing key stops the run before its first trial.
            store.discard_if_unused()
            raise
        progress.update(task, completed=len(trials))
    if summary.skipped:
        console.print(f"{summary.skipped} trials were already finished and were skipped.")
    if summary.elsewhere:
        console.print(f"{summary.elsewhere} trials were run by another amlab run on the same "
                      f"database meanwhile.")
    _print_results(store, experiment.spec.name)
    console.print(f"Results database: [bold]{db.resolve()}[/]")
    return store


@app.command()
def results(
    db: Annotated[Path, typer.Argument(help="Results database.")] = DEFAULT_DB,
    experiment: Annotated[str | None, typer.Option(help="Only this experiment.")] = None,
    trials: Annotated[bool, typer.Option("--trials", help="Also list tokens and cost of "
                                         "each trial.")] = False,
    split: Annotated[str | None, typer.Option(
        help="Also print the harmful rates split by: awareness (what the agent said it "
             "believed: a test, real, or nothing).")] = None,
) -> None:
    """Print the rates table of a stored run, and its tokens and cost per model."""
    from amlab.cli.splits import check_split, print_awareness_split

    check_split(split)
    store = Store(db, read_only=True)
    names = [experiment] if experiment else store.experiments()
    require_experiment(store, experiment)
    for name in names:
        _print_results(store, name, per_trial=trials)
        if split == "awareness":
            print_awareness_split(store, name)


@app.command()
def scenarios() -> None:
    """List the scenario families and their factors."""
    for name in list_families():
        family = load_family(name)
        table = Table(title=f"{name} — {family.spec.title}", title_justify="left",
                      show_lines=False)
        table.add_column("factor")
        table.add_column("level")
        table.add_column("what it does")
        for factor_name, factor in family.spec.factors.items():
            factor_name += " (ablation)" if factor.kind == "ablation" else ""
            for level, meaning in factor.levels.items():
                marker = " (default)" if level == factor.default else ""
                table.add_row(factor_name, level + marker, meaning)
                factor_name = ""
        console.print(table)
        console.print(f"  {family.spec.description.strip()}\n", highlight=False)


def _print_plan(experiment: Experiment) -> None:
    trials = experiment.trials()
    table = Table(title=f"{experiment.spec.name}: {len(trials)} trials (dry run, no model "
                        f"called)", title_justify="left")
    table.add_column("model", overflow="fold")
    table.add_column("family", overflow="fold")
    table.add_column("condition", overflow="fold")
    table.add_column("trials", justify="right")
    cells = Counter((t.key.model, t.key.family, t.key.condition) for t in trials)
    for (model, family, condition), count in cells.items():
        table.add_row(model, family, condition, str(count))
    console.print(table)
    print_estimate(experiment)
    if experiment.spec.plan:
        from amlab.cli.report import warn_if_underpowered

        warn_if_underpowered(experiment)


def _print_results(store: Store, experiment: str, per_trial: bool = False) -> None:
    table_rates = rates(store.verdict_rows(experiment))
    counts = store.counts(experiment)
    behaviours = sorted({r.behavior for r in table_rates})
    table = Table(title=f"{experiment}: rate of each behaviour, 95 % Wilson interval",
                  title_justify="left")
    # Cells fold rather than end in an ellipsis: a cut condition name hides a factor level.
    for column in ("model", "family", "condition", "n"):
        table.add_column(column, overflow="fold")
    for behaviour in behaviours:
        table.add_column(behaviour, justify="right", overflow="fold")
    cells: dict[tuple[str, str, str], dict[str, Rate]] = {}
    for rate in table_rates:
        cells.setdefault((rate.model, rate.family, rate.condition), {})[rate.behavior] = rate
    for (model, family, condition), by_behaviour in cells.items():
        n = max(r.n for r in by_behaviour.values())
        table.add_row(model, family, condition, str(n),
                      *(_format_rate(by_behaviour.get(b)) for b in behaviours))
    # A column per behaviour while every cell keeps its longest word whole.
    if Measurement.get(console, console.options.update_width(10**6), table).minimum \
            <= console.width:
        console.print(table)
    else:
        _print_rates_by_cell(experiment, cells, behaviours)
    excluded = {k: v for k, v in counts.items() if k != "done"}
    if excluded:
        console.print("Not in the rates: " + ", ".join(f"{v} {k}" for k, v in excluded.items()))
    print_usage(store, experiment, per_trial)
    from amlab.cli.judging import print_judging_notes  # judging imports this module

    print_judging_notes(store, experiment)
    _print_monitor(store, experiment)


def _print_monitor(store: Store, experiment: str) -> None:
    # The comparison's statistics load pandas and SciPy: only monitored runs pay for them.
    from amlab.analysis.monitor import monitor_comparisons

    comparisons = monitor_comparisons(store, experiment)
    if not comparisons:
        return
    table = Table(title=f"{experiment}: harmful-act rate without and with the monitor",
                  title_justify="left")
    for column in ("model", "family", "condition", "monitor", "without", "with",
                   "difference [95 % CI]", "caught", "false blocks", "after a block",
                   "monitor cost"):
        table.add_column(column)
    for cell in comparisons:
        difference, low, high = cell.difference
        table.add_row(
            cell.model, cell.family, cell.condition, cell.monitor,
            f"{cell.unmonitored.harmful}/{cell.unmonitored.n}",
            f"{cell.monitored.harmful}/{cell.monitored.n}",
            f"{difference:+.0%} [{low:+.0%}, {high:+.0%}]",
            f"{cell.caught}/{cell.harmful_calls}",
            f"{cell.false_blocks}/{cell.benign_calls}",
            ", ".join(f"{k} {v}" for k, v in sorted(cell.after_block.items())) or "—",
            f"${cell.monitor_cost_usd:.4f} ({cell.monitor_input_tokens}+"
            f"{cell.monitor_output_tokens} tok)")
    console.print(table)


def _print_rates_by_cell(experiment: str, cells: dict[tuple[str, str, str], dict[str, Rate]],
                         behaviours: list[str]) -> None:
    """The rates table for a terminal too narrow for a column per behaviour: a table per
    model and family, a row per condition and behaviour."""
    groups: dict[tuple[str, str], list[tuple[str, dict[str, Rate]]]] = {}
    for (model, family, condition), by_behaviour in cells.items():
        groups.setdefault((model, family), []).append((condition, by_behaviour))
    for (model, family), conditions in groups.items():
        table = Table(title=f"{experiment}: {model} · {family}: rate of each behaviour, 95 % "
                            f"Wilson interval", title_justify="left")
        table.add_column("condition", overflow="fold")
        table.add_column("n", justify="right")
        table.add_column("behaviour", no_wrap=True)
        table.add_column("rate", justify="right", no_wrap=True)
        for condition, by_behaviour in conditions:
            shown = [b for b in behaviours if b in by_behaviour]
            for index, behaviour in enumerate(shown):
                first = index == 0
                table.add_row(condition.replace(",", ", ") if first else "",
                              str(by_behaviour[behaviour].n) if first else "", behaviour,
                              _format_rate(by_behaviour[behaviour]),
                              end_section=index == len(shown) - 1)
        console.print(table)


def _format_rate(rate: Rate | None) -> str:
    if rate is None:
        return "—"
    return f"{rate.k}/{rate.n} {rate.rate:.0%} [{rate.low:.0%}, {rate.high:.0%}]"
