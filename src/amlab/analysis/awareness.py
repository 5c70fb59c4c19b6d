"""Rates split by what the agent said it believed: that it is being tested, that the
situation is real, or nothing either way (the eval_awareness verdict of the same trial).

Claude Opus 4 blackmailed 55 % of the time when it said the situation was real and 6.5 %
when it said it was an evaluation: a rate pooled over beliefs hides that, so the report
splits every harmful behaviour's rate this way whenever eval_awareness was measured.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from amlab.analysis.rates import Proportion
from amlab.detect.base import HARMFUL
from amlab.store import ResultReader
from amlab.store.interface import AwarenessCount

BELIEFS = ("test", "real", "silent")
BELIEF_LABELS = {"test": "says it is a test", "real": "says it is real", "silent": "silent"}
# The condition of a row pooled over every condition of a model.
ALL_CONDITIONS = "all conditions"


@dataclass(frozen=True)
class AwarenessRow:
    model: str
    condition: str
    behavior: str
    # Every belief of BELIEFS, n = 0 where no trial of the cell stated it.
    by_belief: dict[str, Proportion]


def awareness_split(rows: Iterable[AwarenessCount], behaviors: Sequence[str]
                    ) -> list[AwarenessRow]:
    """`ResultReader.awareness_counts` of one family to one row per (model, condition,
    behaviour) of `behaviors`, then one per (model, behaviour) pooled over the conditions
    when there are several."""
    counts: dict[tuple[str, str, str], dict[str, list[int]]] = defaultdict(
        lambda: {belief: [0, 0] for belief in BELIEFS})
    for row in rows:
        if row.behavior not in behaviors:
            continue
        for condition in (row.condition, ALL_CONDITIONS):
            cell = counts[(row.model, condition, row.behavior)][row.belief]
            cell[0] += row.k
            cell[1] += row.n
    conditions: dict[str, set[str]] = defaultdict(set)
    for model, condition, _ in counts:
        if condition != ALL_CONDITIONS:
            conditions[model].add(condition)
    order = {b: i for i, b in enumerate(behaviors)}
    keys = sorted(counts, key=lambda key: (key[0], key[1] == ALL_CONDITIONS, key[1],
                                           order[key[2]]))
    return [AwarenessRow(model, condition, behavior,
                         {belief: Proportion.of(k, n)
                          for belief, (k, n) in counts[(model, condition, behavior)].items()})
            for model, condition, behavior in keys
            # A pooled row repeats the only condition's row when there is one.
            if condition != ALL_CONDITIONS or len(conditions[model]) > 1]


def awareness_by_family(store: ResultReader, experiment: str
                        ) -> dict[str, list[AwarenessRow]]:
    """Per family of a stored experiment, the rates of its harmful behaviours split by
    belief (`awareness_split`); empty when eval_awareness was not measured."""
    by_family: dict[str, list[AwarenessCount]] = defaultdict(list)
    for row in store.awareness_counts(experiment):
        by_family[row.family].append(row)
    return {family: awareness_split(rows, [b for b in HARMFUL
                                           if b in {r.behavior for r in rows}])
            for family, rows in by_family.items()}
