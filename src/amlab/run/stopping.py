"""Adaptive sample sizes: a cell (family, condition, model) stops sampling once its answer
is known, at most at the experiment's `samples`.

    stopping:
      half_width: 0.05        # every watched behaviour's interval within ±5 pp (default)
      confidence: 0.95        # (default)
      behaviors: [blackmail]  # watched; default: each family's harmful behaviours
      decide: hypotheses      # also: a declared contrast's two cells stop once its sign is known

The interval is a confidence sequence: the beta-binomial mixture of Robbins (1970) and Lai
(1976), with Jeffreys' Beta(1/2, 1/2) as the mixing distribution. For a cell with k of n
trials showing the behaviour,

    M_n(p) = B(1/2 + k, 1/2 + n - k) / B(1/2, 1/2) / (p^k (1 - p)^(n - k))

is a non-negative martingale with mean 1 when p is the true rate, so by Ville's inequality
the chance that it ever reaches 1/α is at most α; the set {p : M_n(p) < 1/α} covers the
true rate at every n at once, and so at whatever n a rule looking at the data stops. A
Wilson interval looked at after every trial does not (docs/statistics.md). M_n depends on
k and n only, not on their order: a resumed run primes the rule from the stored counts.

`StoppingRule` is the run's `RunRule`: it says no to the trials of a stopped cell, which
stay pending (not needed; `--resume` asks again). Trials already in flight when a cell
stops still finish and count: the interval stays valid at any n.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache

from amlab.detect.base import HARMFUL
from amlab.detect.reading import with_reading_behaviours
from amlab.errors import AmlabError
from amlab.run.executor import TrialResult
from amlab.run.experiment import Experiment, ExperimentSpec, StoppingSpec
from amlab.run.trial import TrialSpec
from amlab.store import ResultReader, TrialKey

# The mixing distribution, Beta(PRIOR, PRIOR): Jeffreys' prior, narrowest near rates of 0
# and 1, where most cells of a misalignment study are and where stopping early pays.
PRIOR = 0.5
# What a trial held back by this rule is, in the run's summary and the progress bar.
NOT_NEEDED = "not needed (stopping rule)"
NARROW = "interval narrow enough"
CONTRAST_DECIDED = "contrast decided"

Counts = dict[str, tuple[int, int]]  # behaviour -> (k, n)


@dataclass(frozen=True)
class Cell:
    family: str
    condition: str
    model: str

    @classmethod
    def of(cls, key: TrialKey) -> Cell:
        return cls(key.family, key.condition, key.model)


def log_mixture(k: int, n: int) -> float:
    """log B(1/2 + k, 1/2 + n - k) / B(1/2, 1/2): the mixture's probability of the counts."""
    def log_beta(a: float, b: float) -> float:
        return math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)

    return log_beta(PRIOR + k, PRIOR + n - k) - log_beta(PRIOR, PRIOR)


def log_evidence(k: int, n: int, p: float) -> float:
    """log M_n(p): the evidence against rate p after k of n."""
    hits = k * math.log(p) if k else 0.0  # 0 log 0 = 0
    misses = (n - k) * math.log1p(-p) if n - k else 0.0
    return log_mixture(k, n) - hits - misses


@lru_cache(maxsize=65536)
def confidence_sequence(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """The anytime-valid interval for a rate after k of n: {p : M_n(p) < 1/α}. It holds the
    estimate k/n (M_n ≤ 1 there) and is an interval (log M_n is convex in p); its ends are
    found by bisection to 1e-9."""
    if not 0 <= k <= n:
        raise ValueError(f"k = {k} must be between 0 and n = {n}")
    if n == 0:
        return 0.0, 1.0
    threshold = -math.log(1 - confidence)  # log 1/α

    def edge(inner: float, outer: float) -> float:
        """The interval's end between `inner` (inside) and `outer`."""
        if log_evidence(k, n, outer) < threshold:
            return outer
        while abs(outer - inner) > 1e-9:
            middle = (inner + outer) / 2
            if log_evidence(k, n, middle) < threshold:
                inner = middle
            else:
                outer = middle
        return inner

    estimate = k / n
    low = 0.0 if k == 0 else edge(estimate, 1e-300)
    high = 1.0 if k == n else edge(estimate, 1 - 1e-16)
    return low, high


def difference_sequence(a: tuple[int, int], b: tuple[int, int], confidence: float = 0.95
                        ) -> tuple[float, float]:
    """An anytime-valid interval for rate A − rate B from (k, n) of each: each rate's
    sequence at half the error, so both cover at once with the stated confidence."""
    each = 1 - (1 - confidence) / 2
    low_a, high_a = confidence_sequence(*a, each)
    low_b, high_b = confidence_sequence(*b, each)
    return low_a - high_b, high_a - low_b


@dataclass(frozen=True)
class Contrast:
    """A declared hypothesis as the rule sees it: two cells of a family, one behaviour."""

    family: str
    behavior: str
    condition_a: str
    condition_b: str
    models: tuple[str, ...]


@dataclass(frozen=True)
class StoppingPlan:
    """Which cells may stop, and when: the spec, each family's watched behaviours (those
    named, else the harmful ones it decides, transcript-wide readings such as deception
    included), and the declared contrasts (with `decide: hypotheses`)."""

    spec: StoppingSpec
    watched: Mapping[str, tuple[str, ...]]
    contrasts: tuple[Contrast, ...] = ()

    @classmethod
    def build(cls, spec: StoppingSpec, behaviours: Mapping[str, Iterable[str]],
              contrasts: Iterable[Contrast], source: str | None = None) -> StoppingPlan:
        """`behaviours`: the behaviours each family decides. With `source` (an experiment
        file), a watched behaviour that no family decides is refused."""
        decided = {family: list(names) for family, names in behaviours.items()}
        unknown = [b for b in spec.behaviors if not any(b in d for d in decided.values())]
        if unknown and source is not None:
            every = sorted({b for d in decided.values() for b in d})
            raise AmlabError(f"{source}: stopping.behaviors '{unknown[0]}' is not decided "
                             f"by any family of the experiment; they decide "
                             f"{', '.join(every)}.")
        contrasts = tuple(contrasts) if spec.decide == "hypotheses" else ()
        if spec.decide == "hypotheses" and not contrasts and source is not None:
            raise AmlabError(f"{source}: stopping.decide is 'hypotheses' but the experiment "
                             f"declares none; declare them under hypotheses:, or drop "
                             f"decide.")
        # In the order of the file, or of the taxonomy: the same in the run and the report.
        watched = {family: tuple(b for b in spec.behaviors or HARMFUL if b in names)
                   for family, names in decided.items()}
        return cls(spec, watched, contrasts)

    @classmethod
    def for_experiment(cls, experiment: Experiment) -> StoppingPlan | None:
        spec = experiment.spec.stopping
        if spec is None:
            return None
        return cls.build(
            spec, {name: with_reading_behaviours(list(family.spec.detectors))
                   for name, family in experiment.families.items()},
            [Contrast(h.family, h.spec.behavior, h.condition_a, h.condition_b, h.models)
             for h in experiment.hypotheses], f"{experiment.source}")

    def stopped(self, cell: Cell, counts: Mapping[Cell, Counts]) -> str | None:
        """Why `cell` needs no more trials given the counts so far, or None."""
        if self._narrow(self.watched.get(cell.family, ()), counts.get(cell, {})):
            return NARROW
        mine = [c for c in self.contrasts if c.family == cell.family and cell.model in c.models
                and cell.condition in (c.condition_a, c.condition_b)]
        if mine and all(self._decided(c, cell.model, counts) for c in mine):
            return CONTRAST_DECIDED
        return None

    def _narrow(self, watched: tuple[str, ...], counts: Counts) -> bool:
        half_width = self.spec.half_width
        if half_width is None or not watched:
            return False
        for behaviour in watched:
            k, n = counts.get(behaviour, (0, 0))
            low, high = confidence_sequence(k, n, self.spec.confidence)
            if (high - low) / 2 > half_width:
                return False
        return True

    def _decided(self, contrast: Contrast, model: str, counts: Mapping[Cell, Counts]) -> bool:
        """Whether the sign of rate A − rate B is known: its interval excludes 0."""
        def of(condition: str) -> tuple[int, int]:
            cell = counts.get(Cell(contrast.family, condition, model), {})
            return cell.get(contrast.behavior, (0, 0))

        low, high = difference_sequence(of(contrast.condition_a), of(contrast.condition_b),
                                        self.spec.confidence)
        return low > 0 or high < 0

    def describe(self) -> str:
        """The rule in one sentence, for the report."""
        parts = []
        if self.spec.half_width is not None:
            parts.append(f"every watched behaviour's {self.spec.confidence * 100:g} % "
                         f"anytime-valid interval is within ±{self.spec.half_width * 100:g} pp")
        if self.spec.decide == "hypotheses":
            parts.append("each declared contrast of the cell has an anytime-valid "
                         "interval for its difference that excludes 0")
        return ("A cell stopped sampling once " + " or ".join(parts)
                + " (beta-binomial confidence sequence, Jeffreys mixture), at most at the "
                  "experiment's samples.")


def counts_of(store: ResultReader, experiment: str) -> dict[Cell, Counts]:
    """Per cell and behaviour, (k, n) of the stored finished trials."""
    counts: dict[Cell, Counts] = defaultdict(dict)
    for row in store.verdict_counts(experiment):
        counts[Cell(row.family, row.condition, row.model)][row.behavior] = (row.k, row.n)
    return counts


class StoppingRule:
    """The run's stopping rule (a `RunRule`): holds back the trials of a stopped cell."""

    reason = NOT_NEEDED

    def __init__(self, plan: StoppingPlan, counts: Mapping[Cell, Counts] | None = None
                 ) -> None:
        self.plan = plan
        self.counts: dict[Cell, Counts] = defaultdict(dict, counts or {})

    @classmethod
    def primed(cls, plan: StoppingPlan, store: ResultReader, experiment: str) -> StoppingRule:
        """The rule with what `store` holds of `experiment` already counted (a resumed run)."""
        return cls(plan, counts_of(store, experiment))

    def admits(self, spec: TrialSpec, in_flight: Collection[TrialSpec]) -> bool:
        return self.plan.stopped(Cell.of(spec.key), self.counts) is None

    def observe(self, result: TrialResult) -> None:
        if result.status != "done":  # as the rates: only finished trials are counted
            return
        cell = self.counts[Cell.of(result.spec.key)]
        for behaviour, verdict in result.verdicts.items():
            k, n = cell.get(behaviour, (0, 0))
            cell[behaviour] = (k + verdict.value, n + 1)


def stopping_rules(experiment: Experiment, store: ResultReader) -> list[StoppingRule]:
    """The experiment's stopping rule primed from `store`, if its file sets `stopping`."""
    plan = StoppingPlan.for_experiment(experiment)
    return [] if plan is None else [StoppingRule.primed(plan, store, experiment.spec.name)]


def stored_plan(spec: ExperimentSpec | None, behaviours: Mapping[str, Iterable[str]],
                contrasts: Iterable[Contrast]) -> StoppingPlan | None:
    """The plan of a stored experiment spec (`stored_spec`; None without `stopping`);
    `behaviours`: those its stored verdicts decide, per family."""
    if spec is None or spec.stopping is None:
        return None
    return StoppingPlan.build(spec.stopping, behaviours, contrasts)
