"""`amlab reproduce`: a published headline on the user's model, its cost shown first."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
import yaml
from rich.table import Table

from amlab.cli.app import app, console
from amlab.cli.usage import print_estimate
from amlab.errors import AmlabError
from amlab.models import split_name
from amlab.models.providers import capabilities_of
from amlab.paths import check_writable
from amlab.presets import (
    Overrides,
    planned_samples,
    preset_data,
    preset_experiment,
    preset_names,
    preset_path,
    preset_spec,
)
from amlab.run import Experiment
from amlab.run.budget import with_budget
from amlab.run.runner import check_resumable
from amlab.store import Store, named_after
from amlab.store.postgres import is_postgres

if TYPE_CHECKING:
    from amlab.analysis.published import ComparisonRow


@app.command()
def reproduce(
    preset: Annotated[str | None, typer.Argument(help="The preset: agentic-misalignment or "
                                                      "peer-preservation (see --list).")
                      ] = None,
    model: Annotated[str | None, typer.Option(help="Your model, provider/model.")] = None,
    samples: Annotated[int | None, typer.Option(help="Trials per cell (default: the power "
                                                     "planner's, or 1 for local/ and "
                                                     "scripted/ models).")] = None,
    judge: Annotated[str | None, typer.Option(help="Judge model for the behaviours that need "
                                                   "reading (default for an API model: "
                                                   "its provider's default judge, see "
                                                   "README).")] = None,
    no_judge: Annotated[bool, typer.Option("--no-judge", help="Decide with the offline "
                                           "heuristics only, even where a default judge "
                                           "would read.")] = False,
    family: Annotated[list[str] | None, typer.Option(
        "--family", help="Run only this family of the preset; repeatable.")] = None,
    db: Annotated[str | None, typer.Option(help="Results database, a file or a postgresql:// "
                                                "URL (default: runs/"
                                                "reproduce-PRESET-MODEL.db).")] = None,
    budget_usd: Annotated[float | None, typer.Option(
        "--budget-usd", help="Start no trial that would take the run's spending past this "
                             "many US dollars.")] = None,
    out: Annotated[Path | None, typer.Option(help="Report folder (default: the database's "
                                                  "name with '-report').")] = None,
    yes: Annotated[bool, typer.Option("--yes", help="Run without asking for "
                                      "confirmation.")] = False,
    resume: Annotated[bool, typer.Option(help="Continue a stored run: redo unfinished "
                                              "trials only.")] = False,
    list_presets: Annotated[bool, typer.Option("--list", help="List the presets.")] = False,
    export: Annotated[Path | None, typer.Option(help="Write the preset as an experiment file "
                                                     "(with --model etc. applied) to edit "
                                                     "and run with `amlab run`.")] = None,
) -> None:
    """Run a curated preset reproducing a published headline on your model: print trials,
    tokens and cost, ask, run, then the rates beside the published figures and a report."""
    if list_presets:
        _print_presets()
        return
    if preset is None:
        raise AmlabError(f"name a preset ({', '.join(preset_names())}) or pass --list.")
    overrides = Overrides(model, samples, judge, tuple(family or ()), no_judge)
    if export is not None:
        _export(preset, overrides, export)
        return
    if model is None:
        raise AmlabError(f"--model is required to run preset '{preset}', e.g. --model "
                         f"openai/gpt-4.1 or --model local/smollm2 (offline).")
    experiment = preset_experiment(preset, overrides)
    if budget_usd is not None:
        with_budget(experiment, budget_usd)
    db = db or str(Path("runs") / f"reproduce-{preset}-{_slug(model)}.db")
    out_dir = out or named_after(db, "-report")
    if not is_postgres(db):
        check_writable(Path(db), folder=False)
    check_writable(out_dir, folder=True)
    # A stored run that cannot be continued is refused before the question (a server's
    # database is opened for writing: its tables are made if it has none yet).
    if is_postgres(db):
        check_resumable(experiment, Store(db), resume)
    elif Path(db).exists():
        check_resumable(experiment, Store(db, read_only=True), resume)
    _print_plan(experiment, offline=capabilities_of(model).offline)
    if not yes:
        _confirm(len(experiment.trials()))
    from amlab.cli.commands import run_with_progress

    store = run_with_progress(experiment, db, resume=resume)
    print_comparison(store, experiment.spec.name)
    from amlab.analysis.report import write_report

    html, markdown = write_report(Store(db, read_only=True), out_dir, experiment.spec.name)
    console.print(f"Report: [bold]{html}[/]\nSummary: [bold]{markdown}[/]", highlight=False)


def print_comparison(store: Store, experiment: str) -> None:
    """The run's rates beside the published figures for the same cells: those of the same
    model (by the documented mapping of provider ids) with the difference, the others as
    context; then how amlab's texts and harness differ from the studies'."""
    from amlab.analysis.published import (
        HARNESS_DIFFERS,
        NOT_ORIGINAL_TEXTS,
        comparison,
        harness_settings,
    )

    rows = comparison(store, experiment)
    if not rows:
        console.print("No published figure is for a cell this run measured.")
        return
    for matched, title in ((True, "Beside the published figures: the same model (k/n, 95 % "
                                  "Wilson interval; difference: yours − published, 95 % "
                                  "Newcombe interval)"),
                           (False, "Beside the published figures: context, other models (no "
                                   "difference computed)")):
        chosen = [row for row in rows if row.matched == matched]
        if not chosen:
            continue
        table = Table(title=title, title_justify="left")
        columns = ["family", "cells", "behaviour", "model", "rate", "published model",
                   "published rate", *(["difference (pp)"] if matched else []), "source",
                   "graded"]
        for column in columns:
            table.add_column(column, overflow="fold",
                             justify="right" if column.endswith(("rate", "(pp)")) else "left")
        for row in chosen:
            table.add_row(*_comparison_cells(row, matched))
        console.print(table)
    console.print(NOT_ORIGINAL_TEXTS, highlight=False)
    console.print(HARNESS_DIFFERS, highlight=False)
    settings = harness_settings(store, experiment)
    if settings:
        console.print(f"Run settings — {settings}", highlight=False)


def _comparison_cells(row: ComparisonRow, matched: bool) -> list[str]:
    figure = row.figure
    if figure.rate is None:
        published_rate = f"{figure.reported_as} (no number given)"
    else:
        published_rate = f"{figure.rate:.0%}"
        interval = row.published_interval
        if interval is not None:
            published_rate += f" n={figure.n} [{interval[0]:.0%}, {interval[1]:.0%}]"
    cells = [figure.cell.family, f"{figure.description} ({' + '.join(row.conditions)})",
             figure.behavior, row.model,
             f"{row.k}/{row.n} {row.rate:.0%} [{row.low:.0%}, {row.high:.0%}]", figure.model,
             published_rate]
    if matched:
        d = row.difference
        cells.append("— (no published n)" if d is None else
                     f"{d[0] * 100:+.1f} [{d[1] * 100:+.1f}, {d[2] * 100:+.1f}]")
    return [*cells, f"{row.source.title} ({row.source.authors}, {row.source.date}; "
                    f"{row.source.version}), {figure.where}; {row.source.url}",
            row.source.graded]


def _print_presets() -> None:
    table = Table(title="Presets (amlab reproduce NAME --model PROVIDER/MODEL)",
                  title_justify="left")
    for column in ("preset", "families", "cells", "samples per cell", "what it runs"):
        table.add_column(column, overflow="fold")
    for name in preset_names():
        experiment = preset_experiment(name)
        data = preset_data(name)
        plan = data["plan"]
        declared = len(experiment.hypotheses)
        table.add_row(name, ", ".join(experiment.families), str(len(experiment.conditions)),
                      f"{planned_samples(data)} (a {plan['effect']:.0%} rise over "
                      f"{plan['baseline']:.0%} in each of {declared} declared hypotheses, "
                      f"at α/{declared}); offline: 1", experiment.spec.description)
    console.print(table)
    console.print(f"Preset files: {preset_path(preset_names()[0]).parent}", highlight=False)


def _export(preset: str, overrides: Overrides, path: Path) -> None:
    if overrides == Overrides():
        text = preset_path(preset).read_text(encoding="utf-8")  # keeps the comments
    else:
        spec = preset_spec(preset, overrides)
        Experiment.from_dict(spec, f"preset {preset}")  # refuse to write an invalid file
        text = f"# amlab reproduce {preset}, as exported with its options applied.\n" + \
            yaml.safe_dump(spec, sort_keys=False, allow_unicode=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    console.print(f"Wrote [bold]{path}[/]; run it with `amlab run {path}`.", highlight=False)


def _print_plan(experiment: Experiment, offline: bool) -> None:
    trials = experiment.trials()
    cells = Counter((t.key.family, t.key.condition) for t in trials)
    console.print(f"[bold]{experiment.spec.name}[/]: {len(cells)} cells × "
                  f"{experiment.spec.samples} samples = [bold]{len(trials)} trials[/] on "
                  f"{', '.join(m.name for m in experiment.spec.models)}.", highlight=False)
    for family in experiment.families:
        keys = [c for f, c in cells if f == family]
        console.print(f"  {family}: {'; '.join(keys)}", highlight=False)
    _print_judging(experiment, offline)
    print_estimate(experiment)
    if offline:
        console.print("An offline model: a small run shows the whole path; its rates "
                      "say nothing about capable models.", highlight=False)
    else:
        from amlab.cli.report import warn_if_underpowered

        warn_if_underpowered(experiment)


def _print_judging(experiment: Experiment, offline: bool) -> None:
    """Who decides the behaviours that need reading: the judge (and why that one), or the
    offline heuristics with their measured recall."""
    judges = [j.name for j in experiment.spec.judge_specs]
    if judges:
        console.print(f"Judge: [bold]{', '.join(judges)}[/] reads every trial (its calls are "
                      f"in the estimate below; --no-judge decides offline instead).",
                      highlight=False)
        return
    from amlab.detect.judge import RUBRICS
    from amlab.detect.measured import recall_note
    from amlab.detect.reading import with_reading_behaviours

    reading = sorted({b for f in experiment.families.values()
                      for b in with_reading_behaviours(list(f.spec.detectors))
                      if b in RUBRICS and RUBRICS[b].decides})
    why = "" if offline else (" No judge: no provider key for a default judge is set "
                              "(OPENAI_API_KEY, ANTHROPIC_API_KEY or GEMINI_API_KEY), or "
                              "--no-judge was given.")
    console.print(recall_note(reading) + why, highlight=False)


def _confirm(trials: int) -> None:
    try:
        go = typer.confirm(f"Run these {trials} trials?", default=False)
    except typer.Abort:
        raise AmlabError("no answer to the confirmation (stdin is closed or not interactive); "
                         "pass --yes to run without asking.") from None
    if not go:
        console.print("Nothing was run; no model was called.")
        raise typer.Exit(1)


def _slug(model: str) -> str:
    """provider-name of a model, without the folders and suffix of a fixture or GGUF path."""
    provider, target = split_name(model)
    name = Path(target).name.removesuffix(".yaml").removesuffix(".gguf")
    return re.sub(r"[^A-Za-z0-9.]+", "-", f"{provider}-{name}").strip("-")
