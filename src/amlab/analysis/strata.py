"""A difference in rate between two levels of a factor, within strata of the other factors.

The effect of `level` against `reference` is identified only where the two levels were run
under the same levels of every other factor: each such combination is a stratum, and the
differences within the strata are combined with Mantel–Haenszel (Cochran) weights
n·n_ref / (n + n_ref). The interval is the stratified Miettinen–Nurminen score interval
(Miettinen & Nurminen 1985, Statistics in Medicine 4:213): the set of common differences δ
that a score test with those weights does not reject, each stratum's variance taken at its
restricted maximum-likelihood rates under δ (Farrington & Manning 1990). The p-value is the
same score test at δ = 0, so p < 0.05 exactly when the interval excludes 0. With one stratum
this is the two-sample Miettinen–Nurminen interval (statsmodels' `score`, tested); its
coverage is checked by simulation in `tests/test_statistics.py`.

Why not pooled counts: in an unbalanced design (constraints, missing cells, a factor run only
under some levels of another) pooling compares different mixtures of the other factors and
can show an effect that no stratum has (Simpson's paradox).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

Z_95 = NormalDist().inv_cdf(0.975)


@dataclass(frozen=True)
class Stratum:
    """One combination of the other factors' levels (`levels`, factor -> level) where both
    compared levels were run: k of n trials at the level, k_ref of n_ref at the reference."""

    levels: tuple[tuple[str, str], ...]
    k: int
    n: int
    k_ref: int
    n_ref: int

    @property
    def difference(self) -> float:
        return self.k / self.n - self.k_ref / self.n_ref


def mantel_haenszel_difference(strata: Sequence[Stratum]) -> float:
    """The Mantel–Haenszel common risk difference: stratum differences, weighted by
    n·n_ref / (n + n_ref)."""
    weights = [s.n * s.n_ref / (s.n + s.n_ref) for s in strata]
    return sum(w * s.difference for w, s in zip(weights, strata, strict=True)) / sum(weights)


def score_statistic(k: Any, n: Any, k_ref: Any, n_ref: Any, delta: Any) -> np.ndarray:
    """The stratified Miettinen–Nurminen score statistic for a common difference `delta`.

    Arrays broadcast; the last axis is the strata (so a simulation passes many tables at
    once). Positive when the observed Mantel–Haenszel difference exceeds `delta`."""
    import numpy as np

    k, n, k_ref, n_ref = (np.asarray(a, dtype=float) for a in (k, n, k_ref, n_ref))
    delta = np.asarray(delta, dtype=float)[..., None]
    p1, p0 = k / n, k_ref / n_ref
    weights = n * n_ref / (n + n_ref)
    weights = weights / weights.sum(axis=-1, keepdims=True)
    r1, r0 = _restricted_rates(p1, n, p0, n_ref, delta)
    variance = (r1 * (1 - r1) / n + r0 * (1 - r0) / n_ref) * (n + n_ref) / (n + n_ref - 1)
    numerator = (weights * (p1 - p0 - delta)).sum(axis=-1)
    spread = np.sqrt((weights**2 * variance).sum(axis=-1))
    # No variance left (every rate at 0 or 1 under delta): the statistic is 0 where the
    # data agree with delta exactly and infinite where they do not.
    degenerate = np.where(np.abs(numerator) < 1e-12, 0.0, np.copysign(np.inf, numerator))
    z: np.ndarray = np.divide(numerator, spread, out=degenerate, where=spread > 0)
    return z


def _restricted_rates(p1: np.ndarray, n1: np.ndarray, p0: np.ndarray, n0: np.ndarray,
                      delta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The maximum-likelihood rates of the two groups of each stratum under p1 − p0 = delta:
    the closed-form root of the likelihood's cubic (Farrington & Manning 1990, eq. 2)."""
    import numpy as np

    theta = n0 / n1
    a = 1 + theta
    b = -(1 + theta + p1 + theta * p0 + delta * (theta + 2))
    c = delta**2 + delta * (2 * p1 + theta + 1) + p1 + theta * p0
    d = -p1 * delta * (1 + delta)
    v = b**3 / (3 * a) ** 3 - b * c / (6 * a**2) + d / (2 * a)
    u = np.sign(v) * np.sqrt(np.maximum(b**2 / (3 * a) ** 2 - c / (3 * a), 0.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        cosine = np.where(u != 0, v / u**3, 1.0)
    w = (math.pi + np.arccos(np.clip(cosine, -1.0, 1.0))) / 3
    r1 = np.clip(2 * u * np.cos(w) - b / (3 * a), 0.0, 1.0)
    r0 = np.clip(r1 - delta, 0.0, 1.0)
    return r1, r0


def stratified_difference(strata: Sequence[Stratum], alpha: float = 0.05
                          ) -> tuple[float, float, float, float]:
    """The Mantel–Haenszel difference over the strata, its stratified Miettinen–Nurminen
    interval and the two-sided score p-value (as `effects.two_proportions` returns them)."""
    import numpy as np

    z = NormalDist().inv_cdf(1 - alpha / 2)
    k, n = [s.k for s in strata], [s.n for s in strata]
    k_ref, n_ref = [s.k_ref for s in strata], [s.n_ref for s in strata]

    def statistic(deltas: np.ndarray) -> np.ndarray:
        return score_statistic(k, n, k_ref, n_ref, deltas)

    # The statistic falls as delta rises: each limit is where it crosses ±z, or an end of
    # [-1, 1] if it never does. Found on one grid of 41 points of [-1, 1] (an array
    # evaluation, not a root finder's many calls), then twice on a grid of the step that
    # brackets it, then interpolated within a step of 3e-5 (error below 1e-9). The ends
    # stay 1e-9 inside [-1, 1], where the variance is above zero.
    coarse = np.linspace(-1 + 1e-9, 1 - 1e-9, 41)
    at_coarse = statistic(coarse)

    def crossing(level: float) -> float:
        grid, values = coarse, at_coarse
        for _ in range(3):
            past = values <= level
            if not past.any():
                return 1.0
            first = int(np.argmax(past))
            if first == 0:
                return -1.0
            grid = np.linspace(grid[first - 1], grid[first], 41)
            values = statistic(grid)
        (a, b), (z_a, z_b) = grid[[0, -1]], values[[0, -1]]
        return float(a + (level - z_a) * (b - a) / (z_b - z_a)) if z_b != z_a else float(a)

    low, high = crossing(z), crossing(-z)
    p_value = 2 * (1 - NormalDist().cdf(abs(float(statistic(np.zeros(1))[0]))))
    return mantel_haenszel_difference(strata), low, high, float(min(1.0, p_value))
