"""The commands of the analysis: report, compare, plan, export."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from amlab.analysis.stored import stored_experiments
from amlab.cli.app import app, console
from amlab.errors import AmlabError
from amlab.paths import check_writable
from amlab.run import Experiment
from amlab.run.hypotheses import declared_family
from amlab.store import Store, named_after


@app.command()
def report(
    db: Annotated[str, typer.Argument(help="Results database (file or postgresql:// URL).")],
    out: Annotated[Path | None, typer.Option(help="Output folder (default: DB's name with "
                                                  "'-report', next to it).")] = None,
    experiment: Annotated[str | None, typer.Option(help="Only this experiment.")] = None,
    behavior: Annotated[list[str] | None, typer.Option(
        "--behavior", help="Behaviour to chart per model; repeatable (default: those that "
                           "occurred, harmful first).")] = None,
    condition: Annotated[str | None, typer.Option(help="Condition of the bar charts, in place "
                                                       "of the declared contrasts' charts "
                                                       "(default: those, else each factor at "
                                                       "its first listed level).")] = None,
    heatmap: Annotated[str | None, typer.Option(help="Two factors for the heat map, "
                                                     "'rows,columns'.")] = None,
) -> None:
    """Write a self-contained HTML report, a Markdown summary and the figures (PNG, SVG)."""
    from amlab.analysis.report import ReportChoices, write_report

    pair = None
    if heatmap is not None:
        parts = [p.strip() for p in heatmap.split(",")]
        if len(parts) != 2 or not all(parts):
            raise AmlabError(f"--heatmap {heatmap!r} must name two factors as 'rows,columns'.")
        pair = (parts[0], parts[1])
    out_dir = out or named_after(db, "-report")
    check_writable(out_dir, folder=True)
    store = Store(db, read_only=True)
    html, markdown = write_report(store, out_dir, experiment,
                                  ReportChoices(tuple(behavior or ()), condition, pair))
    console.print(f"Report: [bold]{html}[/]\nSummary: [bold]{markdown}[/]\n"
                  f"Figures: [bold]{out_dir / 'figures'}[/]", highlight=False)


@app.command()
def compare(
    db_a: Annotated[str, typer.Argument(help="Results database A (file or URL).")],
    db_b: Annotated[str, typer.Argument(help="Results database B (file or URL).")],
    experiment_a: Annotated[str | None, typer.Option(help="Experiment in A (needed when A "
                                                          "holds several).")] = None,
    experiment_b: Annotated[str | None, typer.Option(help="Experiment in B (needed when B "
                                                          "holds several).")] = None,
) -> None:
    """Per cell and behaviour, B's rate minus A's with a 95 % Newcombe interval and
    Holm-adjusted Fisher p-values."""
    from amlab.analysis.effects import compare_runs
    from amlab.analysis.rates import rate_frame

    frames = []
    for path, name, flag in ((db_a, experiment_a, "--experiment-a"),
                             (db_b, experiment_b, "--experiment-b")):
        store = Store(path, read_only=True)
        frames.append(rate_frame(store, _one_experiment(store, name, flag)))
    differences = compare_runs(*frames)
    if not differences:
        raise AmlabError(f"{db_a} and {db_b} share no cell (family, condition, model and "
                         f"behaviour) with finished trials; nothing to compare.")
    table = Table(title=f"B − A: B = {db_b}, A = {db_a}; 95 % Newcombe interval, Fisher p "
                        f"Holm-adjusted over {len(differences)} cells", title_justify="left")
    for column in ("model", "family", "condition", "behaviour", "A", "B", "B − A", "95 % CI",
                   "Holm p"):
        table.add_column(column, justify="right" if column in ("A", "B", "B − A") else "left")
    for d in differences:
        table.add_row(d.model, d.family, d.condition, d.behavior, f"{d.k_ref}/{d.n_ref}",
                      f"{d.k}/{d.n}", f"{d.difference * 100:+.1f} pp",
                      f"[{d.low * 100:+.1f}, {d.high * 100:+.1f}]",
                      f"{d.p_holm:.3f}" + (" *" if d.significant else ""))
    console.print(table)


@app.command()
def plan(
    baseline: Annotated[float, typer.Option(help="Expected rate in the reference cell, "
                                                 "e.g. 0.05.")],
    effect: Annotated[float, typer.Option(help="Change in rate to detect, e.g. 0.10 "
                                               "(5 % → 15 %).")],
    power: Annotated[float, typer.Option(help="Probability of detecting it.")] = 0.8,
    alpha: Annotated[float, typer.Option(help="Significance level of the declared family "
                                              "(family-wise).")] = 0.05,
    contrasts: Annotated[int, typer.Option(help="Declared hypotheses (per model): each is "
                                                "tested at α / contrasts.")] = 1,
    one_sided: Annotated[bool, typer.Option("--one-sided", help="Every declared contrast has "
                                            "a direction (direction: greater or less).")
                         ] = False,
) -> None:
    """Print the trials per cell needed to detect a change in rate, for each of the
    declared contrasts of an experiment."""
    from amlab.analysis.power import samples_per_cell

    n = samples_per_cell(baseline, effect, power, alpha, "amlab plan", contrasts, one_sided)
    console.print(f"{n} trials per cell detect a change from {baseline:.1%} to "
                  f"{baseline + effect:.1%} with {power:.0%} power "
                  f"({_test_level(alpha, contrasts, one_sided)}).", highlight=False)


def _test_level(alpha: float, contrasts: int, one_sided: bool) -> str:
    """How each test is sized, in words."""
    sides = "one-sided" if one_sided else "two-sided"
    if contrasts == 1:
        return f"{sides} α = {alpha}"
    return (f"{sides} α = {alpha}/{contrasts} = {alpha / contrasts:.4g} per contrast: "
            f"Bonferroni, the level of Holm's first step within the {contrasts} declared "
            f"contrasts")


@app.command("export")
def export_command(
    db: Annotated[str, typer.Argument(help="Results database (file or postgresql:// URL).")],
    file_format: Annotated[str, typer.Option("--format", help="csv, parquet, jsonl, or "
                                                              "inspect (Inspect AI logs).")
                           ] = "csv",
    out: Annotated[Path | None, typer.Option(help="Output file (default: DB's name with the "
                                                  "format's extension); for inspect, a "
                                                  "folder (default: DB's name with "
                                                  "'-inspect').")] = None,
    experiment: Annotated[str | None, typer.Option(help="Only this experiment.")] = None,
) -> None:
    """Export trials and verdicts, one row per trial and behaviour, factors as columns; or,
    with --format inspect, one Inspect AI log per experiment and model."""
    from amlab.analysis.export import FORMATS, export

    if file_format == "inspect":
        _export_inspect(db, out or named_after(db, "-inspect"), experiment)
        return
    if file_format not in FORMATS:
        raise AmlabError(f"--format {file_format!r} is not an export format; formats are "
                         f"{', '.join(FORMATS)} and inspect (Inspect AI logs).")
    path = out or named_after(db, f".{file_format}")
    check_writable(path, folder=False)
    store = Store(db, read_only=True)
    rows = export(store, path, file_format, _one_experiment(store, experiment, "--experiment")
                  if experiment else None)
    console.print(f"{rows} rows written to [bold]{path}[/]", highlight=False)


def _export_inspect(db: str, folder: Path, experiment: str | None) -> None:
    from amlab.interop.inspect_export import export_inspect

    check_writable(folder, folder=True)
    store = Store(db, read_only=True)
    for log in export_inspect(store, folder, experiment):
        left_out = f" ({log.pending} pending trials left out)" if log.pending else ""
        console.print(f"{escape(log.experiment)} · {escape(log.model)}: {log.samples} samples "
                      f"written to [bold]{escape(str(log.path))}[/]{left_out}", highlight=False)
    console.print(f"Open them with: inspect view --log-dir {escape(str(folder))}",
                  highlight=False)


def _one_experiment(store: Store, name: str | None, flag: str) -> str:
    names = stored_experiments(store, name)
    if len(names) != 1:
        raise AmlabError(f"{store.location}: holds {len(names)} experiments "
                         f"({', '.join(names) or 'none'}); choose one with {flag}.")
    return names[0]


def warn_if_underpowered(experiment: Experiment) -> None:
    """The dry run's check of the experiment's `plan`: are its cells big enough?"""
    from amlab.analysis.power import power_at, samples_per_cell

    wanted = experiment.spec.plan
    if wanted is None:
        return
    where = f"{experiment.source}: plan"
    contrasts, one_sided = declared_family(experiment.spec.hypotheses,
                                           [m.name for m in experiment.spec.models])
    contrasts = max(contrasts, 1)
    needed = samples_per_cell(wanted.baseline, wanted.effect, wanted.power, wanted.alpha, where,
                              contrasts, one_sided)
    samples = experiment.spec.samples
    change = (f"a change from {wanted.baseline:.1%} to {wanted.baseline + wanted.effect:.1%} "
              f"({_test_level(wanted.alpha, contrasts, one_sided)})")
    if samples < needed:
        achieved = power_at(wanted.baseline, wanted.effect, samples, wanted.alpha, contrasts,
                            one_sided)
        console.print(f"[bold yellow]warning:[/] cells of {samples} trials are too small to "
                      f"detect {change}: they have {achieved:.0%} power; {wanted.power:.0%} "
                      f"needs {needed} trials per cell (samples: {needed}).", highlight=False)
    else:
        console.print(f"Cells of {samples} trials detect {change} with at least "
                      f"{wanted.power:.0%} power (needs {needed}).", highlight=False)
