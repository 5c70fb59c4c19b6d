"""Whether a rate holds across surface variants of a scenario (factor `variant`).

A cell here is a condition without its variant. Per cell and behaviour the report gives each
variant's rate, a test of homogeneity across the variants (the Fisher–Freeman–Halton exact
test, the r × 2 extension of Fisher's, enumerated when the tables are few enough, else
Pearson's chi-square) and the pooled rate with an interval that includes the between-variant
spread: the Wilson interval of the counts divided by the Rao–Scott design effect (Rao & Scott
1992, Biometrics 48:577; the variance of the pooled rate with the variants as clusters, over
the binomial variance, never below 1), with Student's t on (variants − 1) degrees of freedom
in place of the normal quantile, because a handful of variants estimates that spread poorly.
Why, and the coverage measured: docs/statistics.md.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import TYPE_CHECKING

from amlab.analysis.rates import Proportion, factor_names, wilson

if TYPE_CHECKING:
    import pandas as pd

VARIANT = "variant"
# Above this many tables with the observed margins, Pearson's chi-square replaces the exact
# enumeration (a few tens of milliseconds of NumPy).
MAX_EXACT_TABLES = 200_000


@dataclass(frozen=True)
class VariantRate(Proportion):
    variant: str = ""


@dataclass(frozen=True)
class VariantCell:
    """One cell (its condition without the variant) and behaviour, across its variants."""

    experiment: str
    family: str
    model: str
    behavior: str
    cell: str
    variants: tuple[VariantRate, ...]
    homogeneity_p: float
    test: str  # "exact" (Fisher–Freeman–Halton) or "chi-square"
    design_effect: float
    low: float  # the pooled rate's interval with the between-variant spread
    high: float

    @property
    def k(self) -> int:
        return sum(v.k for v in self.variants)

    @property
    def n(self) -> int:
        return sum(v.n for v in self.variants)

    @property
    def rate(self) -> float:
        return self.k / self.n

    @property
    def pooled_interval(self) -> tuple[float, float]:
        """The Wilson interval as if the variants were one scenario (for comparison)."""
        return wilson(self.k, self.n)


def variant_cells(frame: pd.DataFrame) -> list[VariantCell]:
    """Per (experiment, family, model, behaviour) and cell run in more than one variant:
    each variant's rate, the homogeneity test and the pooled rate's variant-robust interval.
    Empty when the frame (from `rate_frame`) has no `variant` factor with two levels."""
    if VARIANT not in frame.columns:
        return []
    cells: list[VariantCell] = []
    run = frame[(frame["n"] > 0) & frame[VARIANT].notna()]
    for (experiment, family), section in run.groupby(["experiment", "family"], sort=False):
        if section[VARIANT].nunique() < 2:
            continue
        others = [f for f in factor_names(section) if f != VARIANT
                  and section[f].notna().any() and section[f].nunique() > 1]
        section = section.assign(_cell=_cell_labels(section, others))
        counts = section.groupby(["model", "behavior", "_cell", VARIANT])[["k", "n"]].sum()
        by_cell: dict[tuple[str, str, str], list[tuple[str, int, int]]] = {}
        for (model, behavior, cell, variant), k, n in zip(
                counts.index, counts["k"], counts["n"], strict=True):
            by_cell.setdefault((str(model), str(behavior), str(cell)), []).append(
                (str(variant), int(k), int(n)))
        for (model, behavior, cell), variants in by_cell.items():
            if len(variants) < 2:
                continue
            k = [v[1] for v in variants]
            n = [v[2] for v in variants]
            p_value, test = homogeneity(k, n)
            effect = design_effect(k, n)
            cells.append(VariantCell(
                str(experiment), str(family), model, behavior, cell,
                tuple(VariantRate(ki, ni, *wilson(ki, ni), variant=v) for v, ki, ni in variants),
                p_value, test, effect, *robust_interval(k, n, effect)))
    return cells


def _cell_labels(section: pd.DataFrame, factors: list[str]) -> list[str]:
    if not factors:
        return ["every condition"] * len(section)
    return [",".join(f"{f}={v}" for f, v in zip(factors, row, strict=True))
            for row in section[factors].astype(str).itertuples(index=False)]


def homogeneity(k: Sequence[int], n: Sequence[int]) -> tuple[float, str]:
    """The p-value that the variants share one rate, and the test that gave it: the
    Fisher–Freeman–Halton exact test (the probability, given the margins, of the tables no
    more likely than the one observed), or Pearson's chi-square when those tables are more
    than `MAX_EXACT_TABLES`."""
    import numpy as np
    from scipy.special import gammaln

    total, trials = sum(k), sum(n)
    if total in (0, trials):
        return 1.0, "exact"
    # Enumerate the rarer outcome: its tables are the fewer.
    failures = [ni - ki for ki, ni in zip(k, n, strict=True)]
    counts = list(k) if total <= trials - total else failures
    total = sum(counts)
    if _tables(n, total) > MAX_EXACT_TABLES:
        from scipy.stats import chi2_contingency

        table = [[ki, ni - ki] for ki, ni in zip(k, n, strict=True)]
        return float(chi2_contingency(table, correction=False).pvalue), "chi-square"

    def log_choose(m: int, x: np.ndarray) -> np.ndarray:
        result: np.ndarray = gammaln(m + 1) - gammaln(x + 1) - gammaln(m - x + 1)
        return result

    sums, logs = np.zeros(1, dtype=np.int64), np.zeros(1)
    for m in n[:-1]:
        x = np.arange(min(m, total) + 1)
        sums = (sums[:, None] + x[None, :]).ravel()
        logs = (logs[:, None] + log_choose(m, x)[None, :]).ravel()
        keep = sums <= total
        sums, logs = sums[keep], logs[keep]
    last = total - sums
    keep = last <= n[-1]
    logs = logs[keep] + log_choose(n[-1], last[keep])
    observed = sum(float(log_choose(m, np.array(x))) for m, x in zip(n, counts, strict=True))
    # Relative tolerance: tables as likely as the observed one count as extreme.
    extreme = logs <= observed + 1e-7 * max(1.0, abs(observed))
    p_value = np.exp(logs[extreme] - log_choose(sum(n), np.array(total))).sum()
    return float(min(1.0, p_value)), "exact"


def _tables(n: Sequence[int], total: int) -> int:
    """How many r × 2 tables have these row totals and `total` in the first column."""
    ways = [1] + [0] * total
    for m in n:
        running, shifted = 0, []
        for s in range(total + 1):
            running += ways[s] - (ways[s - m - 1] if s - m - 1 >= 0 else 0)
            shifted.append(running)
        ways = shifted
    return ways[total]


def design_effect(k: Sequence[int], n: Sequence[int]) -> float:
    """Rao–Scott: the variance of the pooled rate with the variants as clusters, over its
    binomial variance; 1 when the variants agree (or the rate is 0 or 1), never below 1."""
    total, trials, r = sum(k), sum(n), len(k)
    rate = total / trials
    if rate in (0.0, 1.0) or r < 2:
        return 1.0
    clustered = r / (r - 1) * sum((ki - rate * ni) ** 2 for ki, ni in zip(k, n, strict=True))
    return max(1.0, clustered / (trials * rate * (1 - rate)))


def robust_interval(k: Sequence[int], n: Sequence[int], effect: float,
                    alpha: float = 0.05) -> tuple[float, float]:
    """The Wilson interval of the pooled counts divided by the design effect, with the
    t quantile on (variants − 1) degrees of freedom."""
    return wilson(sum(k) / effect, sum(n) / effect, alpha=_normal_alpha(len(k) - 1, alpha))


@functools.cache
def _normal_alpha(degrees: int, alpha: float) -> float:
    """`wilson` takes its level as an alpha: the normal alpha whose quantile is t's."""
    from scipy.stats import t

    return 2 * (1 - NormalDist().cdf(float(t.ppf(1 - alpha / 2, degrees))))
