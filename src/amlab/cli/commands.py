"""The commands of the first slice: run, results, scenarios (prompt and conditions are in
scenarios.py)."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from amlab.analysis.stored import stored_experiments
from amlab.cli.app import app, console
from amlab.cli.results import print_results
from amlab.cli.usage import print_estimate
from amlab.errors import AmlabError
from amlab.families import load_family
from amlab.run import Experiment, run_experiment
from amlab.run.budget import Budget, plan_budget, with_budget
from amlab.run.executor import Executor
from amlab.run.ray_executor import RayExecutor
from amlab.run.runner import experiment_rules
from amlab.scenario import list_families
from amlab.store import PlannedTrial, Store
from amlab.store.postgres import PostgresStore

DEFAULT_DB = Path("runs/amlab.db")


@app.command()
def run(
    experiment_file: Annotated[Path, typer.Argument(help="The experiment YAML file.")],
    db: Annotated[str, typer.Option(help="Results database: an SQLite file, or "
                                         "postgresql://USER@HOST:PORT/DB (password in "
                                         "PGPASSWORD or ~/.pgpass).")] = str(DEFAULT_DB),
    resume: Annotated[bool, typer.Option(help="Continue a stored run: redo unfinished "
                                               "trials only.")] = False,
    dry_run: Annotated[bool, typer.Option(help="Print the trials it would run; call no "
                                                "model.")] = False,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Ask the providers again "
                                           "instead of the response cache.")] = False,
    budget_usd: Annotated[float | None, typer.Option(
        "--budget-usd", help="Start no trial that would take the experiment's spending past "
                             "this many US dollars (overrides the file's budget).")] = None,
    executor: Annotated[str, typer.Option(help="Where trials run: asyncio (this process) or "
                                          "ray (a Ray cluster; pip install 'amlab[ray]')."
                                          )] = "asyncio",
    ray_address: Annotated[str | None, typer.Option(
        help="The Ray cluster's head (host:port); default: RAY_ADDRESS, else the cluster "
             "last started on this machine, else a Ray instance started here.")] = None,
    ray_actors: Annotated[int | None, typer.Option(
        help="Ray worker actors; default: one per CPU (or per --ray-gpus) of the "
             "cluster.")] = None,
    ray_gpus: Annotated[float, typer.Option(
        help="GPUs each Ray worker actor reserves (for a local model).")] = 0.0,
) -> None:
    """Run an experiment file and print the rates of each behaviour."""
    experiment = Experiment.load(experiment_file)
    if budget_usd is not None:
        with_budget(experiment, budget_usd)
    if dry_run:
        _print_plan(experiment)
        return
    on_ray = _ray_executor(experiment, executor, ray_address, ray_actors, ray_gpus)
    run_with_progress(experiment, db, resume=resume, cache=not no_cache, executor=on_ray)
    if on_ray is not None and on_ray.lost_actors:
        console.print(f"{on_ray.lost_actors} Ray worker actors were lost during the run; "
                      f"their {on_ray.redispatched} trials in flight ran again on others.")


def _ray_executor(experiment: Experiment, executor: str, address: str | None,
                  actors: int | None, gpus: float) -> RayExecutor | None:
    """The Ray executor `--executor ray` asks for; None for the default, in this process."""
    if executor not in ("asyncio", "ray"):
        raise AmlabError(f"--executor {executor}: choose asyncio or ray.")
    if executor == "asyncio":
        if address is not None or actors is not None or gpus:
            raise AmlabError("--ray-address, --ray-actors and --ray-gpus need --executor ray.")
        return None
    # With GPUs, an actor needs no CPU of its own (it waits on the GPU).
    return RayExecutor(experiment, address, actors, cpus_per_actor=0.0 if gpus else 1.0,
                       gpus_per_actor=gpus)


def run_with_progress(experiment: Experiment, db: str | Path, resume: bool = False,
                      cache: bool = True, executor: Executor | None = None) -> Store:
    """Run the experiment into `db` with a progress bar; print its rates, tokens and cost."""
    store = Store(db)
    trials = experiment.trials()
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.fields[status]}"), TextColumn("{task.fields[cost]}"),
                  TimeRemainingColumn(), console=console, transient=False) as progress:
        task = progress.add_task(experiment.spec.name, total=len(trials), status="", cost="")
        seen: Counter[str] = Counter()
        budget: Budget | None = None

        def advance(trial: PlannedTrial, status: str) -> None:
            seen[status] += 1
            progress.update(task, advance=1,
                            status=" ".join(f"{k}={v}" for k, v in sorted(seen.items())),
                            cost=_spending(budget) if budget else "")

        try:
            rules = experiment_rules(experiment, store)
            budget = next((rule for rule in rules if isinstance(rule, Budget)), None)
            if budget:
                progress.update(task, cost=_spending(budget))
            summary = asyncio.run(run_experiment(experiment, store, resume=resume,
                                                 on_trial_done=advance, cache=cache,
                                                 rules=rules, executor=executor))
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
    print_results(store, experiment.spec.name)
    if budget:
        _print_budget(budget, summary.held_back.get(budget.reason, 0))
    where = store.location if isinstance(store, PostgresStore) else Path(db).resolve()
    console.print(f"Results database: [bold]{where}[/]")
    return store


def _usd(value: float) -> str:
    return f"${value:,.2f}" if value >= 0.01 or value == 0 else f"${value:.4f}"


def _spending(budget: Budget) -> str:
    return f"{_usd(budget.spent_usd)} of {_usd(budget.limit_usd)}"


def _print_budget(budget: Budget, held_back: int) -> None:
    console.print(f"Spent {_usd(budget.spent_usd)} of the {_usd(budget.limit_usd)} budget "
                  f"(every run of this experiment together); {_usd(budget.left_usd)} left.",
                  highlight=False)
    if held_back:
        console.print(f"{held_back} trials were held back by the budget and stay pending: "
                      f"run again with --resume and a higher --budget-usd to continue them.",
                      highlight=False)


@app.command()
def results(
    db: Annotated[str, typer.Argument(help="Results database (file or postgresql:// URL)."
                                      )] = str(DEFAULT_DB),
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
    for name in stored_experiments(store, experiment):
        print_results(store, name, per_trial=trials)
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
    budget = plan_budget(experiment, trials)
    if budget:
        table.add_column("within budget", justify="right")
    for (model, family, condition), count in cells.items():
        covered = [str(budget.covered[(model, family, condition)])] if budget else []
        table.add_row(model, family, condition, str(count), *covered)
    console.print(table)
    print_estimate(experiment)
    if budget:
        short = sum(1 for cell, count in cells.items() if budget.covered[cell] < count)
        console.print(f"A budget of {_usd(budget.limit_usd)} starts "
                      f"{sum(budget.covered.values())} of the {len(trials)} trials at the "
                      f"estimate above ({_usd(budget.estimated_usd)}), leaving {short} of "
                      f"{len(cells)} cells short; trials usually cost less than the estimate, "
                      f"so the run usually gets further.", highlight=False)
    if experiment.spec.plan:
        from amlab.cli.report import warn_if_underpowered

        warn_if_underpowered(experiment)
