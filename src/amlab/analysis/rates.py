"""Rates of each behaviour per cell with 95 % Wilson score intervals.

A cell is (experiment, family, condition, model). Its denominator for a behaviour is the
finished trials that have a verdict for that behaviour: errors, refusals, pending trials and
finished trials without a verdict (a judge that failed) are counted apart, never as zeros.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from statistics import NormalDist
from typing import TYPE_CHECKING, Any

from amlab.store.interface import ResultReader, VerdictRow

# pandas and NumPy are imported where frames are built: the closing table of a run needs
# only `rates`, and a run's peak memory would otherwise be theirs (about 140 MB).
if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

CELL = ["experiment", "family", "condition", "model"]
STATUSES = ["done", "refused", "error", "pending"]


@dataclass(frozen=True)
class Proportion:
    """k of n with its 95 % Wilson interval."""

    k: int
    n: int
    low: float
    high: float

    @classmethod
    def of(cls, k: int, n: int) -> Proportion:
        return cls(k, n, *wilson(k, n))

    @property
    def rate(self) -> float:
        return self.k / self.n if self.n else float("nan")


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


def wilson(k: float, n: float, alpha: float = 0.05) -> tuple[float, float]:
    """The Wilson score interval of k successes in n trials (NaN for n = 0); the closed
    form, equal to statsmodels' `proportion_confint(method="wilson")` (tested), without
    loading SciPy for a run's closing table. k and n may be effective counts (fractions)."""
    if n == 0:
        return float("nan"), float("nan")
    z = NormalDist().inv_cdf(1 - alpha / 2)
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def wilson_columns(k: Any, n: Any, alpha: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Wilson intervals for whole columns at once (NaN where n is 0)."""
    import numpy as np

    k = np.asarray(k, dtype=float)
    n = np.asarray(n, dtype=float)
    safe_n = np.where(n > 0, n, 1)
    z = NormalDist().inv_cdf(1 - alpha / 2)
    p = k / safe_n
    centre = (p + z * z / (2 * safe_n)) / (1 + z * z / safe_n)
    half = z / (1 + z * z / safe_n) * np.sqrt(p * (1 - p) / safe_n + z * z / (4 * safe_n**2))
    low = np.clip(centre - half, 0.0, 1.0)
    high = np.clip(centre + half, 0.0, 1.0)
    return np.where(n > 0, low, np.nan), np.where(n > 0, high, np.nan)


def rates(rows: Iterable[VerdictRow]) -> list[Rate]:
    """Verdicts, e.g. from `Store.verdict_rows`, to one Rate per (family, condition, model,
    behaviour)."""
    counts: dict[tuple[str, str, str, str], list[int]] = defaultdict(lambda: [0, 0])
    for row in rows:
        cell = counts[(row.family, row.condition, row.model, row.behavior)]
        cell[0] += int(row.value)
        cell[1] += 1
    return [Rate(*key, k, n, *wilson(k, n)) for key, (k, n) in sorted(counts.items())]


def factor_levels(store: ResultReader, experiment: str | None = None) -> pd.DataFrame:
    """One row per (experiment, family, condition) with one column per factor."""
    import pandas as pd

    rows = store.condition_factors(experiment)
    frame = pd.DataFrame([{**r.factors, "experiment": r.experiment, "family": r.family,
                           "condition": r.condition} for r in rows])
    if frame.empty:
        return pd.DataFrame(columns=["experiment", "family", "condition"])
    return frame


def cell_status(store: ResultReader, experiment: str | None = None) -> pd.DataFrame:
    """Per cell: trials by status (done, refused, error, pending), tokens and cost."""
    import pandas as pd

    usage = pd.DataFrame([asdict(r) for r in store.cell_usage(experiment)])
    columns = [*CELL, *STATUSES, "trials", "input_tokens", "output_tokens",
               "cached_input_tokens", "cost_usd", "calls"]
    if usage.empty:
        return pd.DataFrame(columns=columns)
    counts = usage.pivot_table(index=CELL, columns="status", values="trials", aggfunc="sum",
                               fill_value=0)
    for status in STATUSES:
        if status not in counts:
            counts[status] = 0
    totals = usage.groupby(CELL)[["trials", "input_tokens", "output_tokens",
                                  "cached_input_tokens", "cost_usd", "calls"]].sum()
    frame = counts[STATUSES].join(totals).reset_index()
    frame.columns.name = None
    return frame[columns]


def rate_frame(store: ResultReader, experiment: str | None = None,
               status: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per (cell, behaviour): k, n, rate, Wilson low/high, the finished trials of the
    cell without a verdict for it (`no_verdict`), and one column per factor level. `status`
    is `cell_status` of the same store and experiment, if the caller has it already."""
    import numpy as np
    import pandas as pd

    counts = pd.DataFrame([asdict(r) for r in store.verdict_counts(experiment)],
                          columns=[*CELL, "behavior", "k", "n"])
    if status is None:
        status = cell_status(store, experiment)
    frame = counts.merge(status[[*CELL, "done"]], on=CELL, how="left")
    frame["k"] = frame["k"].astype(int)
    frame["n"] = frame["n"].astype(int)
    frame["no_verdict"] = (frame["done"].fillna(0).astype(int) - frame["n"]).clip(lower=0)
    frame["rate"] = np.where(frame["n"] > 0, frame["k"] / frame["n"].where(frame["n"] > 0),
                             np.nan)
    frame["low"], frame["high"] = wilson_columns(frame["k"], frame["n"])
    frame = frame.drop(columns="done").merge(
        factor_levels(store, experiment), on=["experiment", "family", "condition"], how="left")
    return frame.sort_values([*CELL, "behavior"]).reset_index(drop=True)


def factor_names(frame: pd.DataFrame) -> list[str]:
    """The factor columns of a frame from `rate_frame` (everything that is not a measure)."""
    fixed = {*CELL, "behavior", "k", "n", "no_verdict", "rate", "low", "high"}
    return [c for c in frame.columns if c not in fixed]
