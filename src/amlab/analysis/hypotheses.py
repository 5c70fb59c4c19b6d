"""Confirmatory and exploratory results.

*Confirmatory*: the contrasts an experiment file declared under `hypotheses:` before its
first trial (stored with the experiment). Each is cell A's rate minus cell B's, with a 95 %
Newcombe interval and a Fisher exact p-value, one-sided when the declaration gives a
direction; the p-values are Holm-adjusted within each model's declared contrasts only. A
contrast that has no finished trial in one of its cells keeps its place in that family
(counted as p = 1), so a missing cell never makes the correction milder.

*Exploratory*: everything else the report computes (factor effects, alignment faking). Those
p-values are adjusted together with the Benjamini–Hochberg procedure: the q-value bounds the
expected share of false discoveries among the comparisons called significant, which is what
a reader scanning many comparisons needs; a family-wise correction over all of them (Holm
over ~66 per model in a study preset) would cut the power the cells were sized for.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from typing import TYPE_CHECKING, Any

from amlab.analysis.effects import Difference, two_proportions
from amlab.run.experiment import stored_spec
from amlab.run.hypotheses import Direction, HypothesisSpec
from amlab.store import Store

if TYPE_CHECKING:
    import pandas as pd

ALPHA = 0.05
# Fisher's exact test's alternative for each declared direction (A against B).
FISHER_ALTERNATIVE = {"greater": "greater", "less": "less", "two-sided": "two-sided"}


@dataclass(frozen=True)
class DeclaredContrast:
    """A stored hypothesis with the two conditions it names."""

    experiment: str
    spec: HypothesisSpec
    condition_a: str
    condition_b: str
    models: tuple[str, ...]

    @property
    def family(self) -> str:
        return self.spec.family or ""

    @property
    def behavior(self) -> str:
        return self.spec.behavior

    @property
    def direction(self) -> Direction:
        return self.spec.direction

    @property
    def label(self) -> str:
        return self.spec.label()


@dataclass(frozen=True)
class ConfirmatoryResult:
    """One declared contrast for one model: A − B, its interval, p as declared, Holm p."""

    contrast: DeclaredContrast
    model: str
    k_a: int
    n_a: int
    k_b: int
    n_b: int
    difference: float
    low: float
    high: float
    p_value: float  # NaN when a cell has no finished trial: not tested
    p_holm: float
    family_size: int  # the model's declared contrasts, the Holm family

    @property
    def tested(self) -> bool:
        return self.n_a > 0 and self.n_b > 0

    @property
    def significant(self) -> bool:
        return bool(self.p_holm < ALPHA)


@dataclass(frozen=True)
class ExploratoryDifference(Difference):
    """A factor effect or other undeclared comparison, with its Benjamini–Hochberg q-value
    (adjusted over every exploratory comparison of the report) in place of a Holm p."""

    q_value: float = float("nan")

    @property
    def significant(self) -> bool:
        return bool(self.q_value < ALPHA)


@dataclass
class Hypotheses:
    """Per experiment of a report: its declared contrasts' results (none declared: [])."""

    results: dict[str, list[ConfirmatoryResult]]
    # Declared contrasts whose cells the store does not hold as declared (never expected:
    # the experiment file was checked before planning), each with the reason.
    unresolved: list[str]

    def declared(self, experiment: str) -> bool:
        return bool(self.results.get(experiment))

    def cells(self, experiment: str, family: str) -> list[DeclaredContrast]:
        """The section's declared contrasts, once each (not per model), in declared order."""
        seen: dict[str, DeclaredContrast] = {}
        for result in self.results.get(experiment, []):
            if result.contrast.family == family:
                seen.setdefault(result.contrast.label, result.contrast)
        return list(seen.values())


def declared_contrasts(store: Store, experiment: str) -> tuple[list[DeclaredContrast],
                                                               list[str]]:
    """The experiment's stored hypotheses, each with its conditions as stored, and the
    problems of those that cannot be found in the store."""
    spec = stored_spec(store, experiment)
    if spec is None:
        return [], []
    models = [m.name for m in spec.models]
    conditions: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for row in store.condition_factors(experiment):
        conditions.setdefault(row.family, []).append((row.condition, row.factors))
    found, problems = [], []
    for hypothesis in spec.hypotheses:
        sides = []
        for levels in (hypothesis.a, hypothesis.b):
            wanted = {factor: str(level) for factor, level in
                      {**hypothesis.given, **levels}.items()}
            sides.append([c for c, factors in conditions.get(hypothesis.family or "", [])
                          if all(str(factors.get(f)) == v for f, v in wanted.items())])
        if any(len(side) != 1 for side in sides):
            problems.append(f"{experiment}: hypothesis '{hypothesis.label()}' does not name "
                            f"one stored condition per cell.")
            continue
        found.append(DeclaredContrast(experiment, hypothesis, sides[0][0], sides[1][0],
                                      tuple(hypothesis.models or models)))
    return found, problems


def confirmatory(frame: pd.DataFrame, contrasts: Sequence[DeclaredContrast]
                 ) -> list[ConfirmatoryResult]:
    """Each declared contrast for each of its models, Holm-adjusted within each model's
    declared contrasts. `frame` is from `rates.rate_frame` (k, n per cell and behaviour)."""
    counts = {(str(r.experiment), str(r.family), str(r.condition), str(r.model),
               str(r.behavior)): (int(r.k), int(r.n)) for r in frame.itertuples()}
    by_model: dict[str, list[ConfirmatoryResult]] = {}
    for contrast in contrasts:
        for model in contrast.models:
            (k_a, n_a), (k_b, n_b) = (
                counts.get((contrast.experiment, contrast.family, condition, model,
                            contrast.behavior), (0, 0))
                for condition in (contrast.condition_a, contrast.condition_b))
            if n_a and n_b:
                difference, low, high, _ = two_proportions(k_a, n_a, k_b, n_b)
                p = fisher_p(k_a, n_a, k_b, n_b, contrast.direction)
            else:
                difference = low = high = p = float("nan")
            by_model.setdefault(model, []).append(ConfirmatoryResult(
                contrast, model, k_a, n_a, k_b, n_b, difference, low, high, p, float("nan"),
                0))
    results = []
    for family in by_model.values():
        results += holm_within(family)
    return results


def fisher_p(k_a: int, n_a: int, k_b: int, n_b: int, direction: Direction) -> float:
    """Fisher's exact p for A against B: one-sided in the declared direction, or two-sided."""
    from scipy.stats import fisher_exact  # slow import: see analysis.rates.wilson

    _, p = fisher_exact([[k_a, n_a - k_a], [k_b, n_b - k_b]],
                        alternative=FISHER_ALTERNATIVE[direction])
    return float(p)


def holm_within(family: Sequence[ConfirmatoryResult]) -> list[ConfirmatoryResult]:
    """Holm's step-down adjustment over one model's declared contrasts; an untested contrast
    counts as p = 1, so the family keeps its declared size."""
    from statsmodels.stats.multitest import multipletests  # slow import

    raw = [r.p_value if r.tested else 1.0 for r in family]
    _, adjusted, _, _ = multipletests(raw, alpha=ALPHA, method="holm")
    return [replace(r, p_holm=float(p) if r.tested else float("nan"), family_size=len(family))
            for r, p in zip(family, adjusted, strict=True)]


def benjamini_hochberg(differences: Sequence[Difference]) -> list[ExploratoryDifference]:
    """The differences as exploratory results, with Benjamini–Hochberg q-values over all of
    them (and no Holm p: they are not a declared family)."""
    if not differences:
        return []
    from statsmodels.stats.multitest import multipletests  # slow import

    # A comparison that is not identified in the design has no p and takes no part.
    tested = [i for i, d in enumerate(differences) if math.isfinite(d.p_value)]
    q_values = [float("nan")] * len(differences)
    if tested:
        _, adjusted, _, _ = multipletests([differences[i].p_value for i in tested],
                                          alpha=ALPHA, method="fdr_bh")
        for i, q in zip(tested, adjusted, strict=True):
            q_values[i] = float(q)
    return [ExploratoryDifference(**{f.name: getattr(d, f.name) for f in fields(Difference)
                                     if f.name != "p_holm"}, q_value=q)
            for d, q in zip(differences, q_values, strict=True)]


def hypotheses_of(store: Store, frame: pd.DataFrame, experiments: Sequence[str]
                  ) -> Hypotheses:
    """The confirmatory results of every experiment of a report."""
    results: dict[str, list[ConfirmatoryResult]] = {}
    unresolved: list[str] = []
    for experiment in experiments:
        contrasts, problems = declared_contrasts(store, experiment)
        results[experiment] = confirmatory(frame, contrasts)
        unresolved += problems
    return Hypotheses(results, unresolved)
