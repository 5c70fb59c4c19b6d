"""How far judges agree: per behaviour and pair of judges, Cohen's kappa over the trials
both judged, and the trials where they disagree. The "judges" may be any methods that
decided the same trials (`Store.decisions_by_method`: state, heuristic, each judge)."""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np


class Decision(Protocol):
    """One judge's (or method's) answer on one behaviour of one trial; value None for an
    error or a score (`JudgementRecord`, `MethodDecision`)."""

    @property
    def trial_id(self) -> int: ...
    @property
    def behavior(self) -> str: ...
    @property
    def judge(self) -> str: ...
    @property
    def value(self) -> bool | None: ...


@dataclass(frozen=True)
class Agreement:
    behavior: str
    judges: tuple[str, str]
    # Trials both judges answered (judge errors are left out).
    n: int
    observed: float
    # NaN when undefined: both judges gave one and the same answer on every trial.
    kappa: float
    disagreements: tuple[int, ...]
    # Counts: rows = the first judge's answer (false, true), columns = the second's.
    table: tuple[tuple[int, int], tuple[int, int]] = ((0, 0), (0, 0))


def kappa_of(table: np.ndarray[Any, Any]) -> float:
    """Cohen's kappa of a 2x2 table of counts; NaN when chance agreement is total."""
    total = table.sum()
    chance = float((table.sum(axis=0) * table.sum(axis=1)).sum() / total**2) if total else 1.0
    if math.isclose(chance, 1.0):
        return math.nan
    from statsmodels.stats.inter_rater import cohens_kappa  # slow import: see rates.wilson

    return float(cohens_kappa(table, return_results=False))


def judge_agreement(decisions: Iterable[Decision]) -> list[Agreement]:
    """Answers (e.g. from `ResultReader.judgement_rows`) to one Agreement per behaviour and
    pair of judges."""
    answers: dict[str, dict[str, dict[int, bool]]] = defaultdict(dict)
    for decision in decisions:
        if decision.value is None:
            continue
        answers[decision.behavior].setdefault(decision.judge, {})[decision.trial_id] = \
            decision.value
    results = []
    for behavior, by_judge in answers.items():
        for first, second in itertools.combinations(by_judge, 2):
            common = sorted(by_judge[first].keys() & by_judge[second].keys())
            if not common:
                continue
            table = np.zeros((2, 2))
            for trial in common:
                table[int(by_judge[first][trial]), int(by_judge[second][trial])] += 1
            disagree = tuple(t for t in common if by_judge[first][t] != by_judge[second][t])
            results.append(Agreement(behavior, (first, second), len(common),
                                     1 - len(disagree) / len(common), kappa_of(table),
                                     disagree, ((int(table[0, 0]), int(table[0, 1])),
                                                (int(table[1, 0]), int(table[1, 1])))))
    return results
