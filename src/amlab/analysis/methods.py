"""How each number was decided: per behaviour and cell, the verdicts decided by the
world's state, an offline heuristic, a judge, or the heuristic after the deciding judge
failed (`fallback`), the judges' errors; and, where two methods decided the same trials,
how far they agree (2x2 table, Cohen's kappa, the disagreeing trials)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from amlab.analysis.agreement import Agreement, judge_agreement
from amlab.store.interface import JudgeErrorCount, MethodDecision, MethodMix

METHODS = ("state", "heuristic", "judge", "fallback")
METHOD_LABELS = {"state": "state", "heuristic": "heuristic", "judge": "judge",
                 "fallback": "heuristic after judge error"}
# The model and condition of a behaviour's row summed over every cell.
ALL_CELLS = ""


@dataclass(frozen=True)
class MethodCounts:
    model: str
    condition: str
    behavior: str
    # Every method of METHODS -> verdicts it decided.
    counts: dict[str, int]
    # The judges' errors on this behaviour (every judge, its latest answer per trial).
    judge_errors: int

    @property
    def mixed(self) -> bool:
        """More than one method decided this behaviour here."""
        return sum(1 for n in self.counts.values() if n) > 1


def method_mix(decided: Iterable[MethodMix], errors: Iterable[JudgeErrorCount],
               behaviors: Sequence[str]) -> tuple[list[MethodCounts], list[MethodCounts]]:
    """Rows of `Store.method_mix` and `Store.judge_errors` (one family) to (one row per
    cell and behaviour of `behaviors`, one row per behaviour summed over the cells)."""
    counts: dict[tuple[str, str, str], dict[str, int]] = defaultdict(
        lambda: dict.fromkeys(METHODS, 0))
    failed: dict[tuple[str, str, str], int] = defaultdict(int)
    for mix in decided:
        if mix.behavior in behaviors:
            for cell in ((mix.model, mix.condition), (ALL_CELLS, ALL_CELLS)):
                counts[(*cell, mix.behavior)][mix.method] += mix.trials
    for error in errors:
        if error.behavior in behaviors:
            for cell in ((error.model, error.condition), (ALL_CELLS, ALL_CELLS)):
                failed[(*cell, error.behavior)] += error.errors
    order = {b: i for i, b in enumerate(behaviors)}
    rows = [MethodCounts(model, condition, behavior, counts[(model, condition, behavior)],
                         failed.get((model, condition, behavior), 0))
            for model, condition, behavior in sorted(
                counts, key=lambda key: (key[0], key[1], order[key[2]]))]
    return ([r for r in rows if r.model != ALL_CELLS],
            [r for r in rows if r.model == ALL_CELLS])


def method_agreements(decisions: Iterable[MethodDecision], behaviors: Sequence[str]
                      ) -> list[Agreement]:
    """Rows of `Store.decisions_by_method` (one family) to one Agreement per behaviour of
    `behaviors` and pair of methods that decided the same trials."""
    found = judge_agreement(d for d in decisions if d.behavior in behaviors)
    order = {b: i for i, b in enumerate(behaviors)}
    return sorted(found, key=lambda a: (order[a.behavior], a.judges))
