"""SQLite persistence: one row per trial, keyed by (experiment, family, condition, model,
sample); its transcript, actions, verdicts, usage, timings or error.

A trial's outcome is written in one transaction, so a run killed at any point leaves every
trial either finished or still pending: `--resume` redoes exactly the unfinished ones.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from amlab.errors import AmlabError
from amlab.records import Transcript, Verdict

SCHEMA = """
CREATE TABLE IF NOT EXISTS experiments (
    name TEXT PRIMARY KEY,
    spec TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS trials (
    id INTEGER PRIMARY KEY,
    experiment TEXT NOT NULL REFERENCES experiments(name),
    family TEXT NOT NULL,
    condition TEXT NOT NULL,
    factors TEXT NOT NULL,
    model TEXT NOT NULL,
    sample INTEGER NOT NULL,
    seed INTEGER NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    stop_reason TEXT,
    error TEXT,
    messages TEXT,
    actions TEXT,
    turns INTEGER,
    input_tokens INTEGER,
    output_tokens INTEGER,
    cached_input_tokens INTEGER,
    cost_usd REAL,
    calls INTEGER,
    monitor_input_tokens INTEGER,
    monitor_output_tokens INTEGER,
    monitor_cost_usd REAL,
    started REAL,
    finished REAL,
    UNIQUE (experiment, family, condition, model, sample)
);
CREATE TABLE IF NOT EXISTS verdicts (
    trial_id INTEGER NOT NULL REFERENCES trials(id),
    behavior TEXT NOT NULL,
    value INTEGER NOT NULL,
    method TEXT NOT NULL,
    version TEXT NOT NULL,
    evidence TEXT NOT NULL,
    reasoning TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (trial_id, behavior)
);
CREATE INDEX IF NOT EXISTS trials_by_status ON trials (experiment, status);
"""


@dataclass(frozen=True)
class TrialKey:
    experiment: str
    family: str
    condition: str
    model: str
    sample: int


@dataclass(frozen=True)
class PlannedTrial:
    key: TrialKey
    factors: dict[str, str]
    seed: int


class Store:
    def __init__(self, path: Path | str, *, read_only: bool = False) -> None:
        self.path = Path(path)
        if read_only and not self.path.is_file():
            raise AmlabError(f"{self.path}: no results database here; run an experiment first "
                             f"(amlab run EXPERIMENT.yaml --db {self.path}).")
        if not read_only:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        uri = f"file:{self.path}?mode=ro" if read_only else str(self.path)
        try:
            self.db = sqlite3.connect(uri, uri=read_only, check_same_thread=False)
            self.db.row_factory = sqlite3.Row
            if not read_only:
                self.db.execute("PRAGMA journal_mode=WAL")
                self.db.execute("PRAGMA synchronous=NORMAL")
                self.db.executescript(SCHEMA)
                self._add_missing_columns()
            else:
                self.db.execute("SELECT 1 FROM trials LIMIT 1")
        except sqlite3.DatabaseError as exc:
            raise AmlabError(f"{self.path}: is not an amlab results database ({exc}).") from None

    def _add_missing_columns(self) -> None:
        """Bring a database made by an older amlab up to the schema (columns only grow)."""
        present = {row[1] for row in self.db.execute("PRAGMA table_info(trials)")}
        for column, kind in (("monitor_input_tokens", "INTEGER"),
                             ("monitor_output_tokens", "INTEGER"), ("monitor_cost_usd", "REAL")):
            if column not in present:
                self.db.execute(f"ALTER TABLE trials ADD COLUMN {column} {kind}")

    def close(self) -> None:
        self.db.close()

    # -- experiments and planning ------------------------------------------------------

    def experiment_spec(self, name: str) -> dict[str, Any] | None:
        row = self.db.execute("SELECT spec FROM experiments WHERE name = ?", (name,)).fetchone()
        return json.loads(row["spec"]) if row else None

    def experiments(self) -> list[str]:
        return [r["name"] for r in self.db.execute("SELECT name FROM experiments ORDER BY created")]

    def plan(self, name: str, spec: dict[str, Any], trials: list[PlannedTrial]) -> None:
        """Record the experiment and its trials (existing trials are left as they are)."""
        with self.db:
            self.db.execute("INSERT OR IGNORE INTO experiments VALUES (?, ?, ?)",
                            (name, json.dumps(spec, sort_keys=True), time.time()))
            self.db.executemany(
                "INSERT OR IGNORE INTO trials (experiment, family, condition, factors, model, "
                "sample, seed) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(t.key.experiment, t.key.family, t.key.condition, json.dumps(t.factors),
                  t.key.model, t.key.sample, t.seed) for t in trials])

    def unfinished(self, experiment: str) -> set[TrialKey]:
        rows = self.db.execute(
            "SELECT experiment, family, condition, model, sample FROM trials "
            "WHERE experiment = ? AND status IN ('pending', 'error')", (experiment,))
        return {TrialKey(*row) for row in rows}

    def counts(self, experiment: str) -> dict[str, int]:
        rows = self.db.execute("SELECT status, COUNT(*) FROM trials WHERE experiment = ? "
                               "GROUP BY status", (experiment,))
        return {status: count for status, count in rows}

    # -- outcomes ----------------------------------------------------------------------

    def save_result(self, key: TrialKey, transcript: Transcript, verdicts: dict[str, Verdict],
                    started: float) -> None:
        status = "refused" if transcript.stop_reason == "refused" else "done"
        usage = transcript.usage
        with self.db:
            trial_id = self._update(key, {
                "status": status, "stop_reason": transcript.stop_reason,
                "error": None,
                "messages": json.dumps([m.to_dict() for m in transcript.messages]),
                "actions": json.dumps([a.to_dict() for a in transcript.actions]),
                "turns": transcript.turns, "input_tokens": usage.input_tokens,
                "output_tokens": usage.output_tokens,
                "cached_input_tokens": usage.cached_input_tokens, "cost_usd": usage.cost_usd,
                "calls": usage.calls,
                "monitor_input_tokens": transcript.monitor_usage.input_tokens,
                "monitor_output_tokens": transcript.monitor_usage.output_tokens,
                "monitor_cost_usd": transcript.monitor_usage.cost_usd,
                "started": started, "finished": time.time(),
            })
            self.db.execute("DELETE FROM verdicts WHERE trial_id = ?", (trial_id,))
            self.db.executemany(
                "INSERT INTO verdicts VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(trial_id, v.behavior, int(v.value), v.method, v.version,
                  json.dumps([e.to_dict() for e in v.evidence]), v.reasoning)
                 for v in verdicts.values()])

    def save_error(self, key: TrialKey, error: str, started: float) -> None:
        with self.db:
            self._update(key, {"status": "error", "error": error, "started": started,
                               "finished": time.time()})

    def _update(self, key: TrialKey, fields: dict[str, Any]) -> int:
        # Each outcome written is one more attempt at the trial (a resume retries errors).
        assignments = ", ".join([*(f"{name} = ?" for name in fields), "attempts = attempts + 1"])
        row = self.db.execute(
            f"UPDATE trials SET {assignments} WHERE experiment = ? AND family = ? AND "
            "condition = ? AND model = ? AND sample = ? RETURNING id",
            (*fields.values(), key.experiment, key.family, key.condition, key.model, key.sample),
        ).fetchone()
        if row is None:
            raise KeyError(f"trial {key} was never planned")
        return int(row[0])

    # -- queries -----------------------------------------------------------------------

    def trials(self, experiment: str | None = None) -> Iterator[sqlite3.Row]:
        where, args = ("WHERE experiment = ?", (experiment,)) if experiment else ("", ())
        yield from self.db.execute(f"SELECT * FROM trials {where} ORDER BY id", args)

    def verdict_rows(self, experiment: str | None = None) -> list[sqlite3.Row]:
        """One row per (finished trial, behaviour): cell coordinates and the verdict value."""
        where, args = ("AND t.experiment = ?", (experiment,)) if experiment else ("", ())
        return self.db.execute(
            "SELECT t.experiment, t.family, t.condition, t.model, t.sample, v.behavior, v.value "
            f"FROM trials t JOIN verdicts v ON v.trial_id = t.id WHERE t.status = 'done' {where}",
            args).fetchall()

    def verdict_values(self, experiment: str) -> dict[int, dict[str, bool]]:
        """trial id -> {behaviour: value} for the finished trials of an experiment."""
        values: dict[int, dict[str, bool]] = {}
        for trial_id, behavior, value in self.db.execute(
                "SELECT v.trial_id, v.behavior, v.value FROM verdicts v JOIN trials t "
                "ON t.id = v.trial_id WHERE t.experiment = ? AND t.status = 'done'",
                (experiment,)):
            values.setdefault(trial_id, {})[behavior] = bool(value)
        return values

    def verdicts_of(self, trial_id: int) -> dict[str, Verdict]:
        rows = self.db.execute("SELECT * FROM verdicts WHERE trial_id = ?", (trial_id,))
        return {r["behavior"]: Verdict.from_dict({
            "behavior": r["behavior"], "value": bool(r["value"]), "method": r["method"],
            "version": r["version"], "evidence": json.loads(r["evidence"]),
            "reasoning": r["reasoning"]}) for r in rows}
