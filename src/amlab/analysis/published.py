"""The user's rates beside the published figures for the same cells.

A published figure names a family and the factor levels of one or more cells (pooled when
the source averaged over them). For each model of a stored run that has finished trials
with a verdict for the figure's behaviour in those cells, a row: the model's k/n with its
Wilson interval, and the published rate with its Wilson interval where the source gives n.
amlab's scenarios are not the original texts: the figures are reference points.
"""

from __future__ import annotations

from dataclasses import dataclass

from amlab.analysis.rates import wilson
from amlab.presets import PublishedFigure, Source, published
from amlab.scenario import Family
from amlab.store import Store

NOT_ORIGINAL_TEXTS = (
    "amlab's scenarios are its own texts, not the original studies' prompts and e-mails, so "
    "the published figures are reference points, not expected values. Replication mode "
    "(families original/blackmail, original/leaking, original/murder; docs/replication.md) "
    "runs the original templates exactly.")


@dataclass(frozen=True)
class ComparisonRow:
    figure: PublishedFigure
    source: Source
    conditions: tuple[str, ...]  # the cells' condition keys, pooled
    model: str  # the user's model
    k: int
    n: int
    low: float
    high: float

    @property
    def rate(self) -> float:
        return self.k / self.n

    @property
    def published_interval(self) -> tuple[float, float] | None:
        figure = self.figure
        if figure.rate is None or figure.n is None:
            return None
        return wilson(round(figure.rate * figure.n), figure.n)


def figure_conditions(figure: PublishedFigure) -> tuple[str, ...]:
    """The condition keys, as stored, of the cells a figure stands for."""
    family = Family.load(figure.cell.family)
    return tuple(family.key(family.condition(levels, f"published figure of {figure.model}"))
                 for levels in figure.cell.conditions)


def comparison(store: Store, experiment: str | None = None) -> list[ComparisonRow]:
    """A row per published figure and model of the run that measured its cells."""
    counts: dict[tuple[str, str, str, str], tuple[int, int]] = {}
    for row in store.verdict_counts(experiment):
        key = (row["family"], row["condition"], row["model"], row["behavior"])
        k, n = counts.get(key, (0, 0))
        counts[key] = (k + int(row["k"]), n + int(row["n"]))
    models = list(dict.fromkeys(model for (_, _, model, _) in counts))
    data = published()
    rows = []
    for figure in data.figures:
        conditions = figure_conditions(figure)
        for model in models:
            pooled = [counts.get((figure.cell.family, c, model, figure.behavior), (0, 0))
                      for c in conditions]
            # A pooled figure compares only when every one of its cells was measured.
            if all(n for _, n in pooled):
                k, n = sum(k for k, _ in pooled), sum(n for _, n in pooled)
                rows.append(ComparisonRow(figure, data.sources[figure.source], conditions,
                                          model, k, n, *wilson(k, n)))
    return rows
