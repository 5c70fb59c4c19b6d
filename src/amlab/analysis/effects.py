"""Differences in rate between factor levels, and between two stored runs.

A factor's effect is computed where the design identifies it: within strata of the other
factors (each combination of their levels run at both compared levels), combined with
Mantel–Haenszel weights, with a stratified Miettinen–Nurminen score interval and p-value
(`analysis.strata`; why and references in docs/statistics.md). Pooling counts over the other
factors would be biased whenever the design is not a full grid (Simpson's paradox).

Two runs are compared cell by cell (one stratum each) with a 95 % Newcombe (hybrid score)
interval and a two-sided Fisher exact p-value. The p-values of the differences a report
shows are Holm-adjusted together, so a reader can count the "significant" ones without
inflating the family-wise error rate.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from amlab.analysis.rates import factor_names
from amlab.analysis.strata import Stratum, stratified_difference
from amlab.detect.base import HARMFUL

# Frames come from `rates.rate_frame`, which loads pandas; the monitor's comparison uses only
# `two_proportions` and must not load it for a run's closing table.
if TYPE_CHECKING:
    import pandas as pd

# Levels that are the natural baseline of a comparison when a factor has them, in order of
# preference: `monitored` before `none`, so that with monitoring none / monitored /
# unmonitored the alignment-faking comparison (unmonitored - monitored) is still made.
REFERENCE_LEVELS = ("monitored", "none", "absent", "control", "off", "no")
# Factors whose natural comparisons are not all against one reference: the alignment-faking
# gap (unmonitored − monitored), and each against an agent told nothing (`none`).
CONTRASTS: dict[str, tuple[tuple[str, str], ...]] = {
    "monitoring": (("unmonitored", "monitored"), ("unmonitored", "none"),
                   ("monitored", "none")),
}
# Factors held fixed in every comparison but never compared themselves: surface variants of
# the same scenario (analysis/variants.py tests whether a rate holds across them).
NUISANCE_FACTORS = ("variant",)


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
    # A factor effect: the strata of the other factors it is computed within, the factors
    # held fixed, and what the design leaves mixed in (aliases, factors changing with it).
    strata: tuple[Stratum, ...] = ()
    held_fixed: tuple[str, ...] = ()
    note: str = ""

    @property
    def rate(self) -> float:
        return self.k / self.n

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
    """The differences of `stratified_effects` (notes on the design aside)."""
    return stratified_effects(frame, declared).differences


@dataclass(frozen=True)
class Effects:
    """Factor effects and, per (experiment, family), what a reader must know about the design
    they come from: aliased factors, comparisons confounded with another factor or not
    identified at all."""

    differences: list[Difference]
    notes: dict[tuple[str, str], list[str]]


def stratified_effects(frame: pd.DataFrame, declared: dict[str, list[str]] | None = None
                       ) -> Effects:
    """For each (experiment, family, model, behaviour) and each factor with two or more
    levels, every level against the reference level (and the pairs of `CONTRASTS`), within
    strata of the other factors (see `analysis.strata`). `frame` is from `rate_frame`;
    `declared` gives each factor's levels in the experiment file's order. Not yet
    Holm-adjusted: adjust all the comparisons of a report together with `holm`.

    Factors whose levels move together over the conditions run (aliased) are one factor,
    reported once under the first of them. A factor whose level sets at the two compared
    levels do not overlap changes with the comparison: it cannot be held fixed, and the
    difference includes its effect (said in the note). `variant` is held fixed, never
    compared (see `analysis.variants`)."""
    declared = declared or {}
    effects: list[Difference] = []
    notes: dict[tuple[str, str], list[str]] = {}
    for (experiment, family), section in frame.groupby(["experiment", "family"], sort=False):
        design = _Design.of(section)
        # (factor, reference, moved factor) -> levels compared with the reference, and the
        # moved factor's levels at the reference: said once, however many models and rows.
        moved_with: dict[tuple[str, str, str], tuple[list[str], set[str]]] = {}
        unidentified: dict[tuple[str, str], list[str]] = {}
        for factor in design.compared:
            others = [f for f in design.varying if f not in design.aliases[factor]]
            for (model, behavior), rows in design.rows.items():
                levels = list(dict.fromkeys(row[factor] for row in rows))
                # Levels are text here; the experiment file's may be YAML booleans or numbers.
                order = [str(level) for level in declared.get(factor, ())]
                for level, ref in _pairs(factor, levels, order):
                    at_level = [row for row in rows if row[factor] == level]
                    at_ref = [row for row in rows if row[factor] == ref]
                    moved = [f for f in others if not {r[f] for r in at_level}
                             & {r[f] for r in at_ref}]
                    held = tuple(f for f in others if f not in moved)
                    for f in moved:
                        compared, at = moved_with.setdefault((factor, ref, f), ([], set()))
                        compared.append(level)
                        at.update(r[f] for r in at_ref)
                    strata = _strata(at_level, at_ref, held)
                    if not strata:
                        unidentified.setdefault((factor, ref), []).append(level)
                        continue
                    aliases = design.aliases[factor][1:]
                    note = "; ".join([f"aliased with {', '.join(aliases)}"] * bool(aliases)
                                     + [f"{f} changes with it" for f in moved])
                    effects.append(Difference(
                        str(experiment), str(family), str(model), str(behavior), factor,
                        level, ref, sum(s.k for s in strata), sum(s.n for s in strata),
                        sum(s.k_ref for s in strata), sum(s.n_ref for s in strata),
                        *stratified_difference(strata), strata=strata, held_fixed=held,
                        note=note))
        notes[(str(experiment), str(family))] = [
            *design.alias_notes(),
            *(f"{factor} {_listing(compared)} − {ref} include the effect of {f}: {f} is "
              f"{_listing(sorted(at))} wherever {factor} is {ref} and never where it is "
              f"{_listing(compared)}, so it cannot be held fixed."
              for (factor, ref, f), (compared, at) in moved_with.items()),
            *(f"{factor} {_listing(compared)} − {ref} not identified: no combination of the "
              "other factors was run at both levels, so no difference is given."
              for (factor, ref), compared in unidentified.items())]
    # Models side by side under each behaviour and comparison, as a reader compares them.
    effects.sort(key=lambda e: (e.experiment, e.family, e.behavior, e.factor, e.level,
                                e.reference, e.model))
    return Effects(effects, notes)


@dataclass(frozen=True)
class _Design:
    """The factors of one experiment and family as run: which vary, which are aliased."""

    # Per (model, behaviour): each condition run (n > 0), its varying factors' levels as
    # text, k and n; plain dicts, since every comparison reads them again.
    rows: dict[tuple[str, str], list[dict[str, Any]]]
    varying: list[str]  # factors with two or more levels run, in the frame's order
    aliases: dict[str, list[str]]  # compared factor -> itself and the factors aliased with it
    conditions: pd.DataFrame  # one row per condition run, its factor levels as text

    @property
    def compared(self) -> list[str]:
        return [f for f in self.aliases if f not in NUISANCE_FACTORS]

    @classmethod
    def of(cls, section: pd.DataFrame) -> _Design:
        factors = [f for f in factor_names(section) if section[f].notna().any()]
        cells = section[section["n"] > 0].copy()
        # A factor a condition does not have is a level of its own, not a missing value.
        for f in factors:
            cells[f] = cells[f].astype(object).where(cells[f].notna(), "—").astype(str)
        conditions = cells.drop_duplicates("condition")[factors]
        varying = [f for f in factors if conditions[f].nunique() > 1]
        aliases: dict[str, list[str]] = {}
        for f in varying:
            leader = next((first for first, group in aliases.items()
                           if _aliased(conditions, first, f)), None)
            if leader is None:
                aliases[f] = [f]
            else:
                aliases[leader].append(f)
        rows: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for row in cells[["model", "behavior", "k", "n", *varying]].to_dict("records"):
            row["k"], row["n"] = int(row["k"]), int(row["n"])
            rows.setdefault((str(row["model"]), str(row["behavior"])), []).append(row)
        return cls(dict(sorted(rows.items())), varying, aliases, conditions)

    def alias_notes(self) -> list[str]:
        notes = []
        for leader, group in self.aliases.items():
            if len(group) > 1:
                pairs = self.conditions[group].drop_duplicates().sort_values(group)
                moves = ", ".join(" = ".join(map(str, row)) for row in pairs.itertuples(
                    index=False))
                notes.append(f"{' and '.join(group)} are aliased: their levels move together "
                             f"in the conditions run ({moves}), so their effects cannot be "
                             f"told apart; they are reported once, under {leader}.")
        return notes


def _aliased(conditions: pd.DataFrame, a: str, b: str) -> bool:
    """Each level of `a` goes with one level of `b` and each level of `b` with one of `a`."""
    return bool((conditions.groupby(a)[b].nunique() == 1).all()
                and (conditions.groupby(b)[a].nunique() == 1).all())


def _pairs(factor: str, levels: list[str], declared: Sequence[str]) -> list[tuple[str, str]]:
    """(level, reference) pairs to compare: the factor's `CONTRASTS` whose levels were both
    run, then every other level against the reference level."""
    if len(levels) < 2:
        return []
    named = [(a, b) for a, b in CONTRASTS.get(factor, ()) if a in levels and b in levels]
    covered = {level for pair in named for level in pair}
    ref = reference_level(levels, declared)
    return named + [(level, ref) for level in _ordered(levels, declared)
                    if level != ref and level not in covered]


def _strata(at_level: list[dict[str, Any]], at_ref: list[dict[str, Any]],
            held: tuple[str, ...]) -> tuple[Stratum, ...]:
    """The combinations of the `held` factors' levels run at both compared levels."""
    counts: dict[tuple[str, ...], list[int]] = {}
    for rows, offset in ((at_level, 0), (at_ref, 2)):
        for row in rows:
            cell = counts.setdefault(tuple(row[f] for f in held), [0, 0, 0, 0])
            cell[offset] += row["k"]
            cell[offset + 1] += row["n"]
    return tuple(Stratum(tuple(zip(held, key, strict=True)), *cell)
                 for key, cell in sorted(counts.items()) if cell[1] and cell[3])


def _listing(levels: Sequence[str]) -> str:
    return ", ".join(dict.fromkeys(levels))


def alignment_faking(effects: Sequence[Difference]) -> list[Difference]:
    """Harmful behaviours unmonitored minus monitored, each within matched conditions (the
    other factors held fixed), and each of the two against `monitoring: none` when it was
    run (the agent told nothing about being watched)."""
    order = CONTRASTS["monitoring"]
    faking = [e for e in effects if e.factor == "monitoring"
              and (e.level, e.reference) in order and e.behavior in HARMFUL]
    return sorted(faking, key=lambda e: (e.experiment, e.family, e.behavior,
                                         order.index((e.level, e.reference)), e.model))


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
