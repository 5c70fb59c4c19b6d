"""The report of a stored run: a self-contained HTML page and a Markdown summary.

Everything is computed from aggregate queries (counts per cell), so a report over 100,000
trials reads a few hundred rows, not 100,000. The HTML embeds its figures as data URIs and
its style inline: it opens offline, e-mailed or archived, with nothing next to it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
import pandas as pd

import amlab.analysis.figures as figures
from amlab.analysis.audit import SectionAudit, audit_sections
from amlab.analysis.belief_figure import belief_bars
from amlab.analysis.effects import Difference, alignment_faking, stratified_effects
from amlab.analysis.headline import contrast_chart, first_condition
from amlab.analysis.hypotheses import (
    DeclaredContrast,
    Hypotheses,
    benjamini_hochberg,
    hypotheses_of,
)
from amlab.analysis.monitor import MonitorComparison, monitor_comparisons
from amlab.analysis.provenance import Provenance, provenance
from amlab.analysis.published import (
    HARNESS_DIFFERS,
    NOT_ORIGINAL_TEXTS,
    ComparisonRow,
    comparison,
    harness_settings,
)
from amlab.analysis.rates import cell_status, factor_names, rate_frame
from amlab.analysis.sequential import StoppingSummary, stopping_summary
from amlab.analysis.stored import stored_experiments
from amlab.analysis.variants import VariantCell, variant_cells
from amlab.detect.base import HARMFUL
from amlab.errors import AmlabError
from amlab.models.providers import short_name
from amlab.run.experiment import stored_spec
from amlab.store import Store

MAX_BAR_CHARTS = 4
# More rows than this and a forest plot is unreadable (and slow to draw): the rest stay in
# the table, and the plot keeps the comparisons with the smallest adjusted p-values.
MAX_FOREST_ROWS = 40


@dataclass(frozen=True)
class ReportChoices:
    """What to draw; None lets the report choose (see `choose_*` and analysis/headline.py)."""

    behaviors: tuple[str, ...] = ()
    condition: str | None = None
    heatmap: tuple[str, str] | None = None


@dataclass
class FigureFile:
    title: str
    caption: str
    stem: Path  # the figure is stem.png and stem.svg

    @property
    def png(self) -> Path:
        return self.stem.with_suffix(".png")

    @property
    def svg(self) -> Path:
        return self.stem.with_suffix(".svg")

    @property
    def uri(self) -> str:
        return figures.data_uri(self.svg)


@dataclass
class Section:
    """One experiment and family of the report."""

    experiment: str
    family: str
    behaviors: list[str]
    factors: list[str]
    rows: list[dict[str, Any]]
    effects: list[Difference] = field(default_factory=list)
    faking: list[Difference] = field(default_factory=list)
    figures: list[FigureFile] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # Per cell run in several surface variants: rates per variant, homogeneity, pooled rate.
    variants: list[VariantCell] = field(default_factory=list)
    # Awareness split, method mix, exclusions, realism (analysis/audit.py).
    audit: SectionAudit = field(default_factory=SectionAudit)


@dataclass
class Report:
    database: str
    sections: list[Section]
    usage: list[dict[str, Any]]
    totals: dict[str, Any]
    comparisons: int
    # Per experiment run with a monitor: harm without and with it, catches, false blocks.
    monitor: dict[str, list[MonitorComparison]] = field(default_factory=dict)
    # The run's rates beside published figures for the same cells (analysis/published.py).
    published: list[ComparisonRow] = field(default_factory=list)
    # Per experiment: versions, texts, models asked and answering, settings, judges.
    provenance: list[Provenance] = field(default_factory=list)
    # With published rows: each experiment's settings that differ between harnesses.
    harness: list[str] = field(default_factory=list)
    # Per experiment, the declared contrasts' confirmatory results (analysis/hypotheses.py).
    hypotheses: Hypotheses = field(default_factory=lambda: Hypotheses({}, []))
    # Per experiment run with a stopping rule: each cell's final n and intervals.
    stopping: list[StoppingSummary] = field(default_factory=list)


def build_report(store: Store, figures_dir: Path, experiment: str | None = None,
                 choices: ReportChoices = ReportChoices()) -> Report:
    """Compute every table and draw every figure (written under `figures_dir`)."""
    stored_experiments(store, experiment)
    status = cell_status(store, experiment)
    frame = rate_frame(store, experiment, status)
    if status.empty:
        raise AmlabError(f"{store.location}: holds no trials; run an experiment into it first.")
    acts = {(r.experiment, r.family, r.model, r.condition): (r.calls, r.applied, r.changed)
            for r in store.action_counts(experiment)}
    names = [experiment] if experiment else store.experiments()
    stopping = [s for name in names if (s := stopping_summary(store, name, status))]
    sections = []
    for (name, family), cells in status.groupby(["experiment", "family"], sort=False):
        rates = frame[(frame["experiment"] == name) & (frame["family"] == family)]
        # The factors of other families are empty columns here.
        rates = rates.drop(columns=[f for f in factor_names(rates) if rates[f].isna().all()])
        effects = stratified_effects(rates, _declared_levels(store, str(name), str(family)))
        sections.append(Section(
            str(name), str(family), _behaviour_order(rates), factor_names(rates),
            _table_rows(rates, cells, {(model, condition): counts for (e, f, model, condition),
                                       counts in acts.items() if (e, f) == (name, family)},
                        next((s for s in stopping if s.experiment == name), None)),
            effects.differences, notes=effects.notes.get((str(name), str(family)), []),
            variants=variant_cells(rates)))
    # Declared contrasts are confirmatory, corrected within their own family; every other
    # comparison is exploratory, with one false-discovery-rate adjustment across them.
    confirmatory = hypotheses_of(store, frame,
                                 [experiment] if experiment else store.experiments())
    adjusted = iter(benjamini_hochberg([e for s in sections for e in s.effects]))
    decided = audit_sections(store, sections)
    jobs: list[figures.FigureJob] = []
    for section in sections:
        section.effects = [next(adjusted) for _ in section.effects]
        section.faking = alignment_faking(section.effects)
        rates = frame[(frame["experiment"] == section.experiment)
                      & (frame["family"] == section.family)]
        jobs += _plan_figures(section, rates, choices, figures_dir,
                              confirmatory.cells(section.experiment, section.family),
                              _declared_levels(store, section.experiment, section.family))
        jobs += _plan_belief_figure(section, figures_dir)
    figures.render_all(jobs)
    _note_heuristics_only(store, sections)
    usage = _usage(status)
    monitored = {name: monitor_comparisons(store, name) for name in names}
    published = comparison(store, experiment)
    harness = [harness_settings(store, name) for name in
               dict.fromkeys(s.experiment for s in sections)] if published else []
    return Report(store.location, sections, usage, _totals(usage),
                  sum(len(s.effects) for s in sections),
                  {name: cells for name, cells in monitored.items() if cells},
                  published,
                  provenance=[provenance(store, name, decided.get(name)) for name in names],
                  harness=[h for h in harness if h], hypotheses=confirmatory,
                  stopping=stopping)


def _note_heuristics_only(store: Store, sections: list[Section]) -> None:
    """A section no judge read says so, with the heuristics' measured recall."""
    from amlab.detect.judge import RUBRICS
    from amlab.detect.measured import recall_note

    for section in sections:
        judged = store.judge_usage(section.experiment)
        reading = [b for b in section.behaviors if b in RUBRICS and RUBRICS[b].decides]
        if reading and not judged:
            section.notes.append(recall_note(reading))


def write_report(store: Store, out_dir: Path, experiment: str | None = None,
                 choices: ReportChoices = ReportChoices()) -> tuple[Path, Path]:
    """Write `report.html`, `summary.md` and `figures/*.png|svg` into `out_dir`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    report = build_report(store, out_dir / "figures", experiment, choices)
    html = out_dir / "report.html"
    markdown = out_dir / "summary.md"
    context = {"report": report, "harmful": HARMFUL, "out_dir": out_dir,
               "not_original_texts": NOT_ORIGINAL_TEXTS, "harness_differs": HARNESS_DIFFERS}
    # Names in a report come from users and agents (experiment, model, database, levels):
    # the HTML autoescapes every value, the Markdown escapes every value as Markdown text.
    html.write_text(_environment(autoescape=True).get_template("report.html.j2")
                    .render(context), "utf-8")
    markdown.write_text(_environment(finalize=markdown_text).get_template("summary.md.j2")
                        .render(context), "utf-8")
    return html, markdown


def _environment(autoescape: bool = False, finalize: Callable[[Any], Any] | None = None
                 ) -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("amlab.analysis", "templates"), autoescape=autoescape,
        finalize=finalize, undefined=jinja2.StrictUndefined, trim_blocks=True,
        lstrip_blocks=True)
    environment.filters["pct"] = _percent
    environment.filters["pp"] = _points
    environment.filters["p"] = _p_value
    environment.filters["label"] = figures.label
    environment.filters["model"] = short_name
    return environment


# Characters that would make a value Markdown or HTML instead of text: HTML markup and
# entities, table cell borders, links, code spans, and the backslash that escapes them.
_MARKDOWN_SPECIAL = re.compile(r"([\\`|\[\]])")


def markdown_text(value: Any) -> str:
    """A value as literal text in Markdown (and in a Markdown table cell): HTML characters as
    entities, Markdown punctuation backslash-escaped, line breaks as spaces."""
    text = "" if value is None else str(value)
    text = _MARKDOWN_SPECIAL.sub(r"\\\1", text)
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return re.sub(r"[\r\n]+", " ", text)


def _declared_levels(store: Store, experiment: str, family: str) -> dict[str, list[str]]:
    """Each factor's levels in the order the experiment file lists them."""
    spec = stored_spec(store, experiment)
    declared: dict[str, list[str]] = {}
    for scenario in spec.scenarios if spec else []:
        if scenario.family == family:
            for factor, levels in scenario.grid().items():
                declared.setdefault(factor, []).extend(levels)
    return declared


def _behaviour_order(rates: pd.DataFrame) -> list[str]:
    present = set(rates["behavior"])
    return [b for b in HARMFUL if b in present] + sorted(present - set(HARMFUL))


def _table_rows(rates: pd.DataFrame, cells: pd.DataFrame,
                acts: dict[tuple[str, str], tuple[int, int, int]],
                stopping: StoppingSummary | None = None) -> list[dict[str, Any]]:
    by_cell = {key: sub.set_index("behavior") for key, sub in
               rates.groupby(["model", "condition"])}
    rows = []
    for cell in cells.sort_values(["model", "condition"]).itertuples():
        per_behaviour = by_cell.get((cell.model, cell.condition))
        calls, applied, changed = acts.get((str(cell.model), str(cell.condition)), (0, 0, 0))
        # Trials a stopping rule held back are not missing: the cell was decided without them.
        not_needed = stopping.not_needed_in(str(cell.family), str(cell.condition),
                                            str(cell.model)) if stopping else 0
        rows.append({
            "model": cell.model, "condition": cell.condition, "done": int(cell.done),
            "refused": int(cell.refused), "error": int(cell.error),
            "pending": int(cell.pending) - not_needed, "not_needed": not_needed,
            # What the agents did: a reader sees whether they acted at all, and whether the
            # world accepted their calls, before reading any rate.
            "calls": calls, "applied": applied, "changed": changed,
            "rates": {} if per_behaviour is None else {
                b: {"k": int(r.k), "n": int(r.n), "rate": r.rate, "low": r.low, "high": r.high,
                    "no_verdict": int(r.no_verdict)} for b, r in per_behaviour.iterrows()},
        })
    return rows


def _plan_figures(section: Section, rates: pd.DataFrame, choices: ReportChoices,
                  figures_dir: Path, contrasts: Sequence[DeclaredContrast],
                  declared: dict[str, list[str]]) -> list[figures.FigureJob]:
    """Fill the section's figures and notes; return the drawing each figure needs. The
    headline figures show the declared contrasts' cells, else the experiment's first
    condition (analysis/headline.py), never a cell chosen for its rate."""
    jobs: list[figures.FigureJob] = []

    def add(title: str, caption: str, job: figures.FigureJob) -> None:
        section.figures.append(FigureFile(title, caption, job.stem))
        jobs.append(job)

    if not section.behaviors:
        section.notes.append("No figures: no trial of this family finished with verdicts.")
        return jobs
    slug = _slug(f"{section.experiment}-{section.family}")
    for i, contrast in enumerate([] if choices.condition else contrasts):
        add(f"Declared contrast: {contrast.label}",
            f"Confirmatory. A: {contrast.condition_a}; B: {contrast.condition_b}. Bars: rate "
            f"of {contrast.behavior} per model; whiskers: 95 % Wilson interval; k/n above.",
            figures.FigureJob(contrast_chart, (rates, contrast.behavior, contrast.condition_a,
                                               contrast.condition_b, contrast.label),
                              figures_dir / f"{slug}-contrast-{i + 1}"))
    for behavior in ([] if contrasts and not choices.condition else
                     choose_behaviors(section.behaviors, rates, choices.behaviors)):
        condition = choices.condition or first_condition(rates, section.factors, declared)
        if condition not in set(rates["condition"]):
            raise AmlabError(f"--condition {condition!r} is not a condition of "
                             f"{section.experiment}/{section.family}; conditions are "
                             f"{', '.join(sorted(set(rates['condition'])))}.")
        chosen = ("chosen with --condition" if choices.condition else "no hypothesis "
                  "declared: the experiment's first condition, each factor at the level its "
                  "file lists first")
        add(f"{figures.label(behavior)} by model", f"Condition {condition} ({chosen}). "
            f"Bars: rate of "
            f"{behavior}; whiskers: 95 % Wilson interval; k/n under each bar.",
            figures.FigureJob(figures.bar_chart, (rates, behavior, condition),
                              figures_dir / f"{slug}-bar-{_slug(behavior)}"))
    pair = choices.heatmap or choose_heatmap_factors(rates)
    if pair is None:
        section.notes.append("No heat map: fewer than two factors vary in this experiment.")
    else:
        for factor in pair:
            if factor not in section.factors:
                raise AmlabError(f"--heatmap {','.join(pair)}: '{factor}' is not a factor of "
                                 f"{section.family}; factors are {', '.join(section.factors)}.")
        behavior = choose_behaviors(section.behaviors, rates, choices.behaviors)[0]
        add(f"{figures.label(behavior)} by {pair[0]} × {pair[1]}",
            "Rate per cell, pooled over the other factors; k/n in each cell.",
            figures.FigureJob(figures.heatmap, (rates, behavior, *pair),
                              figures_dir / f"{slug}-heatmap-{_slug(behavior)}"))
    charted = choose_behaviors(section.behaviors, rates, choices.behaviors)
    shown = [e for e in section.effects if e.k + e.k_ref > 0 and e.behavior in charted]
    if shown:
        caption = ("Exploratory. Each level minus the reference level, within strata of the "
                   "other factors; filled points: Benjamini–Hochberg q < 0.05.")
        if len(shown) > MAX_FOREST_ROWS:
            caption += (f" The {MAX_FOREST_ROWS} comparisons with the smallest q of "
                        f"{len(shown)}; all are in the table.")
            # Ordered by raw p, which is the order of the q-values.
            kept = set(map(id, sorted(shown, key=lambda e: e.p_value)[:MAX_FOREST_ROWS]))
            shown = [e for e in shown if id(e) in kept]
        add("Factor effects", caption,
            figures.FigureJob(figures.forest_plot, (shown,), figures_dir / f"{slug}-forest"))
    elif section.effects:
        section.notes.append("No forest plot: no behaviour occurred at any level compared.")
    return jobs


def _plan_belief_figure(section: Section, figures_dir: Path) -> list[figures.FigureJob]:
    """The awareness split of the first harmful behaviour that occurred, as a figure."""
    occurred = [row.behavior for row in section.audit.awareness
                if any(rate.k for rate in row.by_belief.values())]
    if not occurred:
        return []
    behavior = next(b for b in section.behaviors if b in occurred)
    stem = figures_dir / f"{_slug(f'{section.experiment}-{section.family}')}-belief"
    section.figures.append(FigureFile(
        f"{figures.label(behavior)} by what the agent believed",
        f"Rate of {behavior} among trials where the agent said it is being tested, said "
        f"it is real, or said neither, pooled over each model's conditions; whiskers: 95 % "
        f"Wilson interval; k/n above each bar.", stem))
    return [figures.FigureJob(belief_bars, (section.audit.awareness, behavior), stem)]


def choose_behaviors(ordered: Sequence[str], rates: pd.DataFrame, chosen: Sequence[str]
                     ) -> list[str]:
    """The chosen behaviours, else those that occurred (harmful first), at most four; else
    the first behaviour, so there is always something to draw."""
    if chosen:
        for behavior in chosen:
            if behavior not in ordered:
                raise AmlabError(f"--behavior {behavior!r} was not measured; behaviours are "
                                 f"{', '.join(ordered)}.")
        return list(chosen)
    occurred = set(rates.loc[rates["k"] > 0, "behavior"])
    seen = [b for b in ordered if b in occurred and b != "complied"]
    return seen[:MAX_BAR_CHARTS] or list(ordered[:1])


def choose_heatmap_factors(rates: pd.DataFrame) -> tuple[str, str] | None:
    """The two factors with the most levels (at least two each)."""
    counts = {f: rates[f].nunique() for f in factor_names(rates)}
    varying = sorted((f for f, c in counts.items() if c > 1), key=lambda f: -counts[f])
    return (varying[0], varying[1]) if len(varying) >= 2 else None


def _usage(status: pd.DataFrame) -> list[dict[str, Any]]:
    columns = ["done", "refused", "error", "pending", "trials", "input_tokens",
               "output_tokens", "cached_input_tokens", "cost_usd", "calls"]
    per_model = status.groupby("model")[columns].sum().reset_index()
    return [{c: (v if c in ("model", "cost_usd") else int(v)) for c, v in row.items()}
            for row in per_model.to_dict("records")]


def _totals(usage: list[dict[str, Any]]) -> dict[str, Any]:
    return {key: sum(row[key] for row in usage) for key in usage[0] if key != "model"}


def _percent(value: float) -> str:
    return "—" if pd.isna(value) else f"{value * 100:.0f}%"


def _points(value: float) -> str:
    return "—" if pd.isna(value) else f"{value * 100:+.1f}"


def _p_value(value: float) -> str:
    return "<0.001" if value < 0.001 else f"{value:.3f}"


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower()
