"""What a run's stopping rule (run/stopping.py) did, per cell: its final n, the trials it
left pending because they were not needed, and each watched behaviour's interval twice: the
95 % Wilson interval every table shows, and the anytime-valid confidence sequence the rule
stopped on (valid at the n the cell stopped at, which the Wilson interval is not).

A cell stopped by the rule is decided again here from the stored counts and the stored
`stopping` settings, with the same function the run asked: its pending trials are "not
needed", not missing data, and are neither in its n nor among its exclusions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from amlab.analysis.hypotheses import declared_contrasts
from amlab.analysis.rates import wilson
from amlab.run.experiment import stored_spec
from amlab.run.stopping import Cell, Contrast, confidence_sequence, counts_of, stored_plan
from amlab.store import Store

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class SequentialRate:
    behavior: str
    k: int
    n: int
    wilson: tuple[float, float]
    anytime: tuple[float, float]  # the confidence sequence at this n


@dataclass(frozen=True)
class StoppedCell:
    family: str
    condition: str
    model: str
    done: int  # the cell's final n of finished trials
    not_needed: int  # pending trials the rule held back
    pending: int  # pending trials of a cell not yet decided (the run is unfinished)
    outcome: str  # why it stopped early, "ran every sample", or "unfinished"
    rates: tuple[SequentialRate, ...]


@dataclass(frozen=True)
class StoppingSummary:
    experiment: str
    rule: str  # the rule in one sentence
    cells: tuple[StoppedCell, ...]

    @property
    def not_needed(self) -> int:
        return sum(c.not_needed for c in self.cells)

    @property
    def stopped_early(self) -> int:
        return sum(1 for c in self.cells if c.not_needed)

    def not_needed_in(self, family: str, condition: str, model: str) -> int:
        return next((c.not_needed for c in self.cells if (c.family, c.condition, c.model)
                     == (family, condition, model)), 0)


def stopping_summary(store: Store, experiment: str, status: pd.DataFrame | None = None
                     ) -> StoppingSummary | None:
    """The stopping rule's outcome per cell of `experiment`; None if it ran without one.
    `status` is `rates.cell_status` of the store, if the caller has it already."""
    from amlab.analysis.rates import cell_status

    counts = counts_of(store, experiment)
    behaviours: dict[str, set[str]] = {}
    for cell, by_behaviour in counts.items():
        behaviours.setdefault(cell.family, set()).update(by_behaviour)
    contrasts = [Contrast(c.family, c.behavior, c.condition_a, c.condition_b, c.models)
                 for c in declared_contrasts(store, experiment)[0]]
    plan = stored_plan(stored_spec(store, experiment), behaviours, contrasts)
    if plan is None:
        return None
    if status is None:
        status = cell_status(store, experiment)
    cells = []
    for row in status[status["experiment"] == experiment].sort_values(
            ["family", "model", "condition"]).itertuples():
        cell = Cell(str(row.family), str(row.condition), str(row.model))
        stopped = plan.stopped(cell, counts)
        pending = int(row.pending)
        outcome = (stopped if stopped and pending else
                   "ran every sample" if not pending else "unfinished")
        shown = [*plan.watched.get(cell.family, ()),
                 *(c.behavior for c in plan.contrasts if c.family == cell.family
                   and cell.condition in (c.condition_a, c.condition_b))]
        by_behaviour = counts.get(cell, {})
        rates = tuple(SequentialRate(b, k, n, wilson(k, n),
                                     confidence_sequence(k, n, plan.spec.confidence))
                      for b in dict.fromkeys(shown) for k, n in [by_behaviour.get(b, (0, 0))])
        cells.append(StoppedCell(cell.family, cell.condition, cell.model, int(row.done),
                                 pending if stopped else 0, 0 if stopped else pending,
                                 outcome, rates))
    return StoppingSummary(experiment, plan.describe(), tuple(cells))


def interval_table(samples: int, confidence: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """low[n, k] and high[n, k] of the confidence sequence for every k ≤ n ≤ `samples`: the
    bounds a simulation of the stopping rule looks up (tests, benchmarks/adaptive_savings.py)."""
    low = np.zeros((samples + 1, samples + 1))
    high = np.ones((samples + 1, samples + 1))
    for n in range(1, samples + 1):
        for k in range(n + 1):
            low[n, k], high[n, k] = confidence_sequence(k, n, confidence)
    return low, high
