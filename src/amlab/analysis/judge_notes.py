"""What stands under every results table: how each behaviour was decided, the judges'
errors, the realism they read, what they and the agent cost, and how far the judges
agree."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from amlab.analysis.agreement import Agreement, judge_agreement
from amlab.analysis.methods import METHOD_LABELS
from amlab.detect.judge import RUBRICS
from amlab.store import ResultReader
from amlab.store.interface import CallUsage


@dataclass(frozen=True)
class DecidedBy:
    """Verdicts of one behaviour decided one way (a method, a rubric version, a judge)."""

    behavior: str
    method: str
    version: str
    judge: str
    trials: int

    @property
    def label(self) -> str:
        return f"judge {self.judge}" if self.method == "judge" else \
            METHOD_LABELS.get(self.method, self.method)


@dataclass(frozen=True)
class RealismMean:
    """A judge's mean realism reading (1 = says it is a test, 5 = treats it as real)."""

    judge: str
    mean: float
    trials: int


@dataclass(frozen=True)
class JudgingNotes:
    decided: list[DecidedBy]
    # Whether any judge was called: without one, the reading behaviours were decided by
    # the offline heuristics alone, and the rest below is empty.
    judged: bool
    # (judge, behaviour) -> trials whose answer was unusable; the offline verdict stands.
    judge_errors: dict[tuple[str, str], int] = field(default_factory=dict)
    realism: list[RealismMean] = field(default_factory=list)
    agent: CallUsage = field(default_factory=lambda: CallUsage(0, 0, 0, 0.0))
    judges: dict[str, CallUsage] = field(default_factory=dict)
    agreements: list[Agreement] = field(default_factory=list)

    @property
    def reading(self) -> list[str]:
        """The behaviours here that a judge decides when one is given (those that need
        reading), sorted."""
        return sorted({d.behavior for d in self.decided
                       if d.behavior in RUBRICS and RUBRICS[d.behavior].decides})


def judging_notes(store: ResultReader, experiment: str) -> JudgingNotes | None:
    """The notes of a stored experiment; None for a database from before judges, or an
    experiment without a finished trial."""
    decided = [DecidedBy(r.behavior, r.method, r.version, r.judge, r.trials)
               for r in store.method_counts(experiment)]
    if not decided:
        return None
    usage = store.judge_usage(experiment)
    if not usage:
        return JudgingNotes(decided, judged=False)
    judgements = store.judgement_rows(experiment)
    errors: dict[tuple[str, str], int] = defaultdict(int)
    scores: dict[str, list[int]] = defaultdict(list)
    for row in judgements:
        if row.error:
            errors[(row.judge, row.behavior)] += 1
        if row.score is not None:
            scores[row.judge].append(row.score)
    return JudgingNotes(
        decided, judged=True, judge_errors=dict(sorted(errors.items())),
        realism=[RealismMean(judge, sum(values) / len(values), len(values))
                 for judge, values in scores.items()],
        agent=store.agent_usage(experiment),
        judges={u.judge: u.usage for u in usage},
        agreements=judge_agreement(judgements))
