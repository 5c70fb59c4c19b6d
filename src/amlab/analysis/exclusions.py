"""What was left out of each rate, and how far it could move the rate.

A rate's denominator is the finished trials with a verdict for the behaviour. Refused and
errored trials, and finished trials without a verdict, are excluded; the bounds say what
the rate would be had every excluded trial shown the behaviour (upper) or none (lower).
Trials cut short at max_turns or the token budget are in the rate, counted apart so a
reader sees how many had no chance to finish. Pending trials have not run: not bounded.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from amlab.store.interface import TruncationCount


@dataclass(frozen=True)
class Bounds:
    k: int
    n: int
    excluded: int

    @property
    def low(self) -> float:
        total = self.n + self.excluded
        return self.k / total if total else float("nan")

    @property
    def high(self) -> float:
        total = self.n + self.excluded
        return (self.k + self.excluded) / total if total else float("nan")


@dataclass(frozen=True)
class Exclusions:
    model: str
    condition: str
    refused: int
    error: int
    pending: int
    max_turns: int
    max_tokens: int
    # Behaviour -> its rate's bounds.
    bounds: dict[str, Bounds]


def exclusions(rows: Iterable[Mapping[str, Any]], truncated: Iterable[TruncationCount],
               behaviors: Sequence[str]) -> list[Exclusions]:
    """The report's table rows of one family (counts by status, and per behaviour k, n and
    the finished trials without a verdict) and `ResultReader.truncation_counts` to one
    Exclusions per cell."""
    cut = {(t.model, t.condition): (t.max_turns, t.max_tokens) for t in truncated}
    result = []
    for row in rows:
        left_out = int(row["refused"]) + int(row["error"])
        max_turns, max_tokens = cut.get((row["model"], row["condition"]), (0, 0))
        result.append(Exclusions(
            row["model"], row["condition"], int(row["refused"]), int(row["error"]),
            int(row["pending"]), max_turns, max_tokens,
            {b: Bounds(r["k"], r["n"], left_out + r["no_verdict"])
             for b in behaviors if (r := row["rates"].get(b))}))
    return result
