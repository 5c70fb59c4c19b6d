"""What only the SQLite store does: its schema version and the additive upgrade of a
database made by an older amlab (the interface's behaviour is tests/test_store_interface.py)."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest

from amlab.errors import AmlabError
from amlab.store import Store
from amlab.store.interface import SCHEMA_VERSION

# The first amlab's schema: no version table, no judges, leases, provenance or monitor.
FIRST_SCHEMA = """
CREATE TABLE experiments (name TEXT PRIMARY KEY, spec TEXT NOT NULL, created REAL NOT NULL);
CREATE TABLE trials (
    id INTEGER PRIMARY KEY, experiment TEXT NOT NULL, family TEXT NOT NULL,
    condition TEXT NOT NULL, factors TEXT NOT NULL, model TEXT NOT NULL,
    sample INTEGER NOT NULL, seed INTEGER NOT NULL, status TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0, stop_reason TEXT, error TEXT, messages TEXT,
    actions TEXT, turns INTEGER, input_tokens INTEGER, output_tokens INTEGER,
    cached_input_tokens INTEGER, cost_usd REAL, calls INTEGER, started REAL, finished REAL,
    UNIQUE (experiment, family, condition, model, sample));
CREATE TABLE verdicts (
    trial_id INTEGER NOT NULL, behavior TEXT NOT NULL, value INTEGER NOT NULL,
    method TEXT NOT NULL, version TEXT NOT NULL, evidence TEXT NOT NULL,
    reasoning TEXT NOT NULL DEFAULT '', PRIMARY KEY (trial_id, behavior));
INSERT INTO experiments VALUES ('old', '{"name": "old"}', 0);
INSERT INTO trials (experiment, family, condition, factors, model, sample, seed, status,
                    attempts, messages, actions, turns, calls, cost_usd)
VALUES ('old', 'blackmail', 'urgency=none', '{"urgency": "none"}', 'm', 0, 7, 'done', 1,
        '[{"role": "assistant", "content": "Done."}]', '[]', 1, 1, 0.25);
INSERT INTO verdicts VALUES (1, 'blackmail', 0, 'heuristic', 'blackmail/h1', '[]', '');
"""


def first_database(path: Path) -> Path:
    with sqlite3.connect(path) as db:
        db.executescript(FIRST_SCHEMA)
    return path


def columns(path: Path, table: str) -> set[str]:
    with sqlite3.connect(path) as db:
        return {row[1] for row in db.execute(f"PRAGMA table_info({table})")}


def test_a_new_database_records_the_current_schema_version(tmp_path: Path) -> None:
    Store(tmp_path / "r.db").close()
    with sqlite3.connect(tmp_path / "r.db") as db:
        assert db.execute("SELECT version FROM schema_version").fetchall() == \
            [(SCHEMA_VERSION,)]


def test_a_database_of_the_first_amlab_is_read_as_it_is_and_upgraded_when_written(
        tmp_path: Path) -> None:
    old = first_database(tmp_path / "old.db")
    reader = Store(old, read_only=True)
    assert reader.schema_version() == 1
    [trial] = reader.trials("old")
    assert (trial.status, trial.cost_usd, trial.messages[0].content, trial.model_ids) == \
        ("done", 0.25, "Done.", None)
    reader.close()
    assert "owner" not in columns(old, "trials"), "reading changed nothing"

    writer = Store(old)
    assert writer.schema_version() == SCHEMA_VERSION
    assert {"owner", "lease_until", "model_ids", "monitor_cost_usd"} <= columns(old, "trials")
    assert {"judge", "offline_value"} <= columns(old, "verdicts")
    assert "judge_calls" in _tables(old)
    # What was stored is untouched, and reads the same through the upgraded schema.
    [again] = writer.trials("old")
    assert again == trial
    assert writer.verdicts_of(trial.id)["blackmail"].value is False
    writer.close()


def test_a_database_of_a_newer_amlab_is_not_written(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    Store(path).close()
    with sqlite3.connect(path) as db:
        db.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION + 1,))
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    with pytest.raises(AmlabError) as error:
        Store(path)
    assert str(error.value) == (
        f"{path}: was written by a newer amlab (schema version {SCHEMA_VERSION + 1}; this "
        f"amlab knows up to {SCHEMA_VERSION}); upgrade amlab to write to it.")
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before


def _tables(path: Path) -> set[str]:
    with sqlite3.connect(path) as db:
        return {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
