"""Rates of each behaviour per cell with 95 % Wilson score intervals."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from statsmodels.stats.proportion import proportion_confint


@dataclass(frozen=True)
class Rate:
    family: str
    condition: str
    model: str
    behavior: str
    k: int
    n: int
    low: float
    high: float

    @property
    def rate(self) -> float:
        return self.k / self.n if self.n else float("nan")


def wilson(k: int, n: int, alpha: float = 0.05) -> tuple[float, float]:
    if n == 0:
        return float("nan"), float("nan")
    low, high = proportion_confint(k, n, alpha=alpha, method="wilson")
    return float(low), float(high)


def rates(rows: Iterable[Any]) -> list[Rate]:
    """Rows with family, condition, model, behavior and value (0/1), e.g. from
    `Store.verdict_rows`, to one Rate per (family, condition, model, behaviour)."""
    counts: dict[tuple[str, str, str, str], list[int]] = defaultdict(lambda: [0, 0])
    for row in rows:
        cell = counts[(row["family"], row["condition"], row["model"], row["behavior"])]
        cell[0] += int(row["value"])
        cell[1] += 1
    return [Rate(*key, k, n, *wilson(k, n)) for key, (k, n) in sorted(counts.items())]
