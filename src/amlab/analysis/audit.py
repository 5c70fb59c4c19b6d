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
from amlab.store import Store


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


def audit_sections(store: Store, sections: Sequence[AuditedSection]) -> dict[str, list[Any]]:
    """Set `audit` of every section; return each experiment's rows of `Store.method_mix`
    (for its provenance block, so that the query runs once)."""
    queried: dict[str, dict[str, list[Any]]] = {}
    judged: dict[str, bool] = {}
    for section in sections:
        name = section.experiment
        if name not in queried:
            queried[name] = {
                "awareness": store.awareness_counts(name), "mix": store.method_mix(name),
                "errors": store.judge_errors(name),
                "decisions": store.decisions_by_method(name),
                "truncated": store.truncation_counts(name),
                "realism": store.realism_scores(name)}
            judged[name] = bool(store.has_judge_tables and store.judge_usage(name))
        rows = {key: [r for r in found if r["family"] == section.family]
                for key, found in queried[name].items()}
        harmful = [b for b in HARMFUL if b in section.behaviors]
        methods, totals = method_mix(rows["mix"], rows["errors"], section.behaviors)
        section.audit = SectionAudit(
            awareness=awareness_split(rows["awareness"], harmful),
            awareness_measured="eval_awareness" in section.behaviors,
            methods=methods, method_totals=totals,
            agreements=method_agreements(rows["decisions"], section.behaviors),
            exclusions=exclusions(section.rows, rows["truncated"], section.behaviors),
            realism=realism_cells(rows["realism"]), judged=judged[name])
    return {name: found["mix"] for name, found in queried.items()}
