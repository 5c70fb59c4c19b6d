"""What the viewer's pages show, read from the store: trial summaries, filters, the grid.

Each request reads the store afresh, so a page of a live run shows the trials finished so far.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any
from urllib.parse import urlencode

from amlab.analysis.rates import Rate, rates
from amlab.run.experiment import ExperimentSpec, stored_spec
from amlab.store.interface import ResultReader, TrialRecord, VerdictRow

STATUSES = ("done", "error", "refused", "pending")
# Behaviours listed last when choosing the one that colours the grid by default.
_DEFAULT_LAST = ("complied",)


@dataclass(frozen=True)
class TrialSummary(TrialRecord):
    """A stored trial as the viewer lists it: the store's record and its verdicts."""

    verdicts: dict[str, bool] = field(default_factory=dict)

    @property
    def detected(self) -> list[str]:
        return sorted(b for b, value in self.verdicts.items() if value)


@dataclass(frozen=True)
class Filters:
    """The page's query: which cells and trials to show and which behaviour colours the grid.

    `family`, `model`, `condition` and `levels` choose cells; `status` and `shows` (is the
    chosen behaviour detected: yes/no) choose trials within them.
    """

    family: str = ""
    model: str = ""
    condition: str = ""
    levels: tuple[tuple[str, str], ...] = ()
    status: str = ""
    behavior: str = ""
    shows: str = ""

    @classmethod
    def from_query(cls, query: Mapping[str, str], levels: list[str]) -> Filters:
        pairs = []
        for text in levels:
            factor, sep, level = text.partition("=")
            if sep and factor and level:
                pairs.append((factor, level))
        return cls(family=query.get("family", ""), model=query.get("model", ""),
                   condition=query.get("condition", ""), levels=tuple(sorted(set(pairs))),
                   status=query.get("status", ""), behavior=query.get("behavior", ""),
                   shows=query.get("shows", ""))

    def selects_cell(self, trial: TrialSummary) -> bool:
        return ((not self.family or trial.family == self.family)
                and (not self.model or trial.model == self.model)
                and (not self.condition or trial.condition == self.condition)
                and all(trial.factors.get(f) == level for f, level in self.levels))

    def matches(self, trial: TrialSummary) -> bool:
        if not self.selects_cell(trial):
            return False
        if self.status and trial.status != self.status:
            return False
        if self.shows and self.behavior:
            detected = trial.verdicts.get(self.behavior)
            return detected is (self.shows == "yes")
        return True

    @property
    def narrows_trials(self) -> bool:
        return bool(self.status or (self.shows and self.behavior))

    def level(self, factor: str) -> str:
        return dict(self.levels).get(factor, "")

    def query(self, **changes: Any) -> str:
        """This query as a URL query string, with some fields changed."""
        chosen = replace(self, **changes) if changes else self
        pairs: list[tuple[str, str]] = [
            (name, value) for name, value in (
                ("family", chosen.family), ("model", chosen.model),
                ("condition", chosen.condition), ("status", chosen.status),
                ("behavior", chosen.behavior), ("shows", chosen.shows)) if value]
        pairs += [("level", f"{factor}={level}") for factor, level in chosen.levels]
        return urlencode(pairs)


@dataclass
class ExperimentIndex:
    name: str
    spec: ExperimentSpec
    trials: list[TrialSummary]
    behaviours: list[str] = field(init=False)
    models: list[str] = field(init=False)
    families: list[str] = field(init=False)
    columns: list[tuple[str, str]] = field(init=False)
    factors: dict[str, list[str]] = field(init=False)

    def __post_init__(self) -> None:
        # In the order the family lists its detectors, derived ones like `complied` last.
        found = dict.fromkeys(b for t in self.trials for b in t.verdicts)
        self.behaviours = sorted(found, key=lambda b: b in _DEFAULT_LAST)
        self.models = list(dict.fromkeys(t.model for t in self.trials))
        self.families = list(dict.fromkeys(t.family for t in self.trials))
        self.columns = list(dict.fromkeys((t.family, t.condition) for t in self.trials))
        self.factors = {}
        for trial in self.trials:
            for factor, level in trial.factors.items():
                levels = self.factors.setdefault(factor, [])
                if level not in levels:
                    levels.append(level)

    def status_counts(self) -> dict[str, int]:
        return {s: sum(1 for t in self.trials if t.status == s) for s in STATUSES}

    def chosen_behaviour(self, filters: Filters) -> str:
        if filters.behavior in self.behaviours:
            return filters.behavior
        return self.behaviours[0] if self.behaviours else ""

    def matching(self, filters: Filters) -> list[TrialSummary]:
        return [t for t in self.trials if filters.matches(t)]


def load_experiment(store: ResultReader, name: str) -> ExperimentIndex | None:
    spec = stored_spec(store, name)
    if spec is None:
        return None
    verdicts: dict[int, dict[str, bool]] = {}
    for verdict in store.verdict_values(name):
        verdicts.setdefault(verdict.trial_id, {})[verdict.behavior] = verdict.value
    trials = [TrialSummary(**{f.name: getattr(t, f.name) for f in fields(TrialRecord)},
                           verdicts=verdicts.get(t.id, {})) for t in store.trial_index(name)]
    return ExperimentIndex(name, spec, trials)


class IndexCache:
    """Experiment indexes kept between requests until the database changes
    (`ResultReader.revision`): a reload during a run sees new trials, and browsing a
    finished run (or pressing j through its trials) does not reread every trial each time.
    """

    def __init__(self, size: int = 16) -> None:
        self.size = size
        self._entries: dict[str, tuple[tuple[float, ...], ExperimentIndex | None]] = {}
        self._lock = threading.Lock()

    def get(self, store: ResultReader, name: str) -> ExperimentIndex | None:
        version = store.revision()
        with self._lock:
            cached = self._entries.get(name)
        if cached and cached[0] == version:
            return cached[1]
        index = load_experiment(store, name)
        with self._lock:
            if len(self._entries) >= self.size:
                self._entries.pop(next(iter(self._entries)))
            self._entries[name] = (version, index)
        return index


@dataclass(frozen=True)
class Cell:
    family: str
    condition: str
    model: str
    rate: Rate | None
    counts: dict[str, int]
    matching: int

    @property
    def shade(self) -> int:
        """0–10: the colour step of the rate (the CSS classes rate-0 … rate-10)."""
        return round(self.rate.rate * 10) if self.rate and self.rate.n else -1

    def tooltip(self, behaviour: str) -> str:
        parts = []
        if self.rate and self.rate.n:
            r = self.rate
            parts.append(f"{behaviour}: {r.k}/{r.n} = {r.rate:.0%}, 95 % Wilson interval "
                         f"{r.low:.0%}–{r.high:.0%}")
        else:
            parts.append(f"{behaviour}: no finished trial")
        others = [f"{n} {s}" for s, n in self.counts.items() if n and s != "done"]
        if others:
            parts.append("not in the rate: " + ", ".join(others))
        return "; ".join(parts)


@dataclass(frozen=True)
class Grid:
    behaviour: str
    models: list[str]
    columns: list[tuple[str, str]]
    cells: dict[tuple[str, str, str], Cell]

    def cell(self, model: str, column: tuple[str, str]) -> Cell | None:
        return self.cells.get((column[0], column[1], model))


def build_grid(index: ExperimentIndex, filters: Filters) -> Grid:
    """The model × condition grid of the cells the filters select, with each cell's rate of
    the chosen behaviour over its finished trials."""
    behaviour = index.chosen_behaviour(filters)
    shown = [t for t in index.trials if filters.selects_cell(t)]
    rows = [VerdictRow(t.experiment, t.family, t.condition, t.model, t.sample, behaviour,
                       t.verdicts[behaviour])
            for t in shown if t.status == "done" and behaviour in t.verdicts]
    by_cell = {(r.family, r.condition, r.model): r for r in rates(rows)}
    members_of: dict[tuple[str, str, str], list[TrialSummary]] = {}
    for trial in shown:
        members_of.setdefault((trial.family, trial.condition, trial.model), []).append(trial)
    cells: dict[tuple[str, str, str], Cell] = {}
    for key, members in members_of.items():
        counts = {s: sum(1 for t in members if t.status == s) for s in STATUSES}
        cells[key] = Cell(*key, rate=by_cell.get(key), counts=counts,
                          matching=sum(1 for t in members if filters.matches(t)))
    models = [m for m in index.models if any(k[2] == m for k in cells)]
    columns = [c for c in index.columns if any(k[:2] == c for k in cells)]
    return Grid(behaviour, models, columns, cells)
