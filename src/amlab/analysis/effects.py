"""Differences in rate between factor levels, and between two stored runs.

Each difference has a 95 % Newcombe (hybrid score) interval and a two-sided Fisher exact
p-value; the p-values of all differences in one report are Holm-adjusted together, so a
reader can count the "significant" ones without inflating the family-wise error rate.

A factor's effect is marginal: counts are pooled over the other factors' levels, which is
the effect averaged over them when the design is a full grid (as `amlab run` sweeps it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from amlab.analysis.rates import factor_names
from amlab.detect.base import HARMFUL

# Frames come from `rates.rate_frame`, which loads pandas; the monitor's comparison uses only
# `two_proportions` and must not load it for a run's closing table.
if TYPE_CHECKING:
    import pandas as pd

# Levels that are the natural baseline of a comparison when a factor has them, in order of
# preference: `monitored` before `none`, so that with monitoring none / monitored /
# unmonitored the alignment-faking comparison (unmonitored - monitored) is still made.
REFERENCE_LEVELS = ("monitored", "none", "absent", "control", "off", "no")


@dataclass(frozen=True)
class Difference:
    """Rate of `level` minus rate of `reference` (both k/n), with interval and p-values."""

    experiment: str
    family: str
    model: str
    behavior: str
    factor: str
    level: str
    reference: str
    k: int
    n: int
    k_ref: int
    n_ref: int
    difference: float
    low: float
    high: float
    p_value: float
    p_holm: float = float("nan")
    # Set when the difference is within one condition (comparing runs), not pooled over many.
    condition: str = ""

    @property
    def rate(self) -> float:
        return self.k / self.n

    @property
    def rate_ref(self) -> float:
        return self.k_ref / self.n_ref

    @property
    def significant(self) -> bool:
        return bool(self.p_holm < 0.05)


def two_proportions(k: int, n: int, k_ref: int, n_ref: int) -> tuple[float, float, float, float]:
    """k/n − k_ref/n_ref, its 95 % Newcombe interval and the two-sided Fisher exact p."""
    # Imported here: slow imports, see analysis.rates.wilson.
    from scipy.stats import fisher_exact
    from statsmodels.stats.proportion import confint_proportions_2indep

    low, high = confint_proportions_2indep(k, n, k_ref, n_ref, method="newcomb",
                                           compare="diff", alpha=0.05)
    _, p_value = fisher_exact([[k, n - k], [k_ref, n_ref - k_ref]], alternative="two-sided")
    return k / n - k_ref / n_ref, float(low), float(high), float(p_value)


def holm(differences: Sequence[Difference]) -> list[Difference]:
    """The same differences with `p_holm` set, adjusted across all of them."""
    if not differences:
        return []
    from statsmodels.stats.multitest import multipletests  # slow import: see rates.wilson

    _, adjusted, _, _ = multipletests([d.p_value for d in differences], alpha=0.05,
                                      method="holm")
    return [replace(d, p_holm=float(p)) for d, p in zip(differences, adjusted, strict=True)]


def reference_level(levels: Sequence[str], declared: Sequence[str] = ()) -> str:
    """`none` (or another baseline-sounding level) if there is one, else the level declared
    first in the experiment file, else the first in alphabetical order."""
    for candidate in REFERENCE_LEVELS:
        if candidate in levels:
            return candidate
    for level in declared:
        if level in levels:
            return level
    return sorted(levels)[0]


def factor_effects(frame: pd.DataFrame, declared: dict[str, list[str]] | None = None
                   ) -> list[Difference]:
    """For each (experiment, family, model, behaviour) and each factor with two or more
    levels, every level against the reference level. `frame` is from `rate_frame`;
    `declared` gives each factor's levels in the experiment file's order. Not yet
    Holm-adjusted: adjust all the comparisons of a report together with `holm`."""
    declared = declared or {}
    effects: list[Difference] = []
    for factor in factor_names(frame):
        present = frame[frame[factor].notna()]
        group = ["experiment", "family", "model", "behavior"]
        pooled = present.groupby([*group, factor])[["k", "n"]].sum().reset_index()
        for key, sub in pooled.groupby(group):
            levels = [str(level) for level in sub[factor]]
            if len(levels) < 2:
                continue
            ref = reference_level(levels, declared.get(factor, ()))
            by_level = sub.set_index(factor)
            k_ref, n_ref = (int(x) for x in by_level.loc[ref, ["k", "n"]])
            for level in _ordered(levels, declared.get(factor, ())):
                k, n = (int(x) for x in by_level.loc[level, ["k", "n"]])
                if level == ref or n == 0 or n_ref == 0:
                    continue
                experiment, family, model, behavior = (str(x) for x in key)
                effects.append(Difference(experiment, family, model, behavior, factor, level,
                                          ref, k, n, k_ref, n_ref,
                                          *two_proportions(k, n, k_ref, n_ref)))
    # Models side by side under each behaviour and comparison, as a reader compares them.
    return sorted(effects, key=lambda e: (e.experiment, e.family, e.behavior, e.factor,
                                          e.level, e.model))


def alignment_faking(effects: Sequence[Difference]) -> list[Difference]:
    """Harmful behaviour when unmonitored minus when monitored (factor `monitoring`)."""
    return [e for e in effects if e.factor == "monitoring" and e.level == "unmonitored"
            and e.reference == "monitored" and e.behavior in HARMFUL]


def compare_runs(frame_a: pd.DataFrame, frame_b: pd.DataFrame) -> list[Difference]:
    """Per cell and behaviour, run B's rate minus run A's (Holm-adjusted across cells).

    Cells are matched on family, condition, model and behaviour. When the two runs share no
    model but each has exactly one (comparing two models), models are not matched and the
    `model` field reads "A-model → B-model"."""
    keys = ["family", "condition", "model", "behavior"]
    models_a, models_b = set(frame_a["model"]), set(frame_b["model"])
    a, b = frame_a.copy(), frame_b.copy()
    if not models_a & models_b and len(models_a) == len(models_b) == 1:
        label = f"{models_a.pop()} → {models_b.pop()}"
        a["model"] = b["model"] = label
    matched = a[[*keys, "experiment", "k", "n"]].merge(
        b[[*keys, "experiment", "k", "n"]], on=keys, suffixes=("_a", "_b"))
    matched = matched[(matched["n_a"] > 0) & (matched["n_b"] > 0)]
    differences = [
        Difference(f"{row.experiment_a} → {row.experiment_b}", str(row.family), str(row.model),
                   str(row.behavior), "run", "B", "A", int(row.k_b), int(row.n_b),
                   int(row.k_a), int(row.n_a),
                   *two_proportions(int(row.k_b), int(row.n_b), int(row.k_a), int(row.n_a)),
                   condition=str(row.condition))
        for row in matched.itertuples()]
    return holm(differences)


def _ordered(levels: list[str], declared: Sequence[str]) -> list[str]:
    known = [level for level in declared if level in levels]
    return known + sorted(level for level in levels if level not in known)
