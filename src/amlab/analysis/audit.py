"""The parts of a report section that say how far its rates can be trusted: the rates split
by what the agent believed (`awareness`), how each verdict was decided and how far the
methods agree (`methods`), what was left out (`exclusions`), and how real the cells looked
to the agents (`realism`). All from aggregate queries, one set per experiment."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from amlab.analysis.agreement import Agreement
from amlab.analysis.awareness import AwarenessRow, awareness_split
from amlab.analysis.exclusions import Exclusions, exclusions
from amlab.analysis.methods import MethodCounts, method_agreements, method_mix
from amlab.analysis.realism import RealismCell, realism_cells
from amlab.detect.base import HARMFUL
from amlab.store import ResultReader
from amlab.store.interface import (
    AwarenessCount,
    JudgeErrorCount,
    MethodDecision,
    MethodMix,
    RealismScore,
    TruncationCount,
)


@dataclass
class SectionAudit:
    # Harmful behaviours split by belief; empty when eval_awareness was not measured.
    awareness: list[AwarenessRow] = field(default_factory=list)
    awareness_measured: bool = False
    methods: list[MethodCounts] = field(default_factory=list)
    method_totals: list[MethodCounts] = field(default_factory=list)
    agreements: list[Agreement] = field(default_factory=list)
    exclusions: list[Exclusions] = field(default_factory=list)
    realism: list[RealismCell] = field(default_factory=list)
    # Whether any judge read this experiment's trials (realism exists only with judges).
    judged: bool = False


class AuditedSection(Protocol):
    """What the audit reads of a report section (analysis/report.py's `Section`) and
    sets on it; a protocol, so that the report imports the audit and not the reverse."""

    experiment: str
    family: str
    behaviors: list[str]
    rows: list[dict[str, Any]]
    audit: SectionAudit


@dataclass(frozen=True)
class _Queried:
    """One experiment's audit aggregates (each query runs once per experiment)."""

    awareness: list[AwarenessCount]
    mix: list[MethodMix]
    errors: list[JudgeErrorCount]
    decisions: list[MethodDecision]
    truncated: list[TruncationCount]
    realism: list[RealismScore]
    judged: bool

    @classmethod
    def of(cls, store: ResultReader, name: str) -> _Queried:
        return cls(store.awareness_counts(name), store.method_mix(name),
                   store.judge_errors(name), store.decisions_by_method(name),
                   store.truncation_counts(name), store.realism_scores(name),
                   bool(store.judge_usage(name)))


def audit_sections(store: ResultReader, sections: Sequence[AuditedSection]
                   ) -> dict[str, list[MethodMix]]:
    """Set `audit` of every section; return each experiment's `ResultReader.method_mix`
    (for its provenance block, so that the query runs once)."""
    queried: dict[str, _Queried] = {}
    for section in sections:
        name, family = section.experiment, section.family
        if name not in queried:
            queried[name] = _Queried.of(store, name)
        found = queried[name]
        harmful = [b for b in HARMFUL if b in section.behaviors]
        methods, totals = method_mix([r for r in found.mix if r.family == family],
                                     [r for r in found.errors if r.family == family],
                                     section.behaviors)
        section.audit = SectionAudit(
            awareness=awareness_split([r for r in found.awareness if r.family == family],
                                      harmful),
            awareness_measured="eval_awareness" in section.behaviors,
            methods=methods, method_totals=totals,
            agreements=method_agreements([r for r in found.decisions if r.family == family],
                                         section.behaviors),
            exclusions=exclusions(section.rows,
                                  [r for r in found.truncated if r.family == family],
                                  section.behaviors),
            realism=realism_cells([r for r in found.realism if r.family == family]),
            judged=found.judged)
    return {name: found.mix for name, found in queried.items()}
