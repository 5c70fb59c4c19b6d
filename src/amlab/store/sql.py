"""The SQL core every results store shares: one row per trial, keyed by (experiment,
family, condition, model, sample); its transcript, actions, verdicts, usage, timings or
error. `Store` holds every statement; a backend (`store/sqlite.py`,
`store/postgres.py`) opens the connection and gives its `Dialect`: placeholders, JSON
functions, DDL types, the catalogue, the insertion order of verdicts.

A trial's outcome is written in one transaction, so a run killed at any point leaves every
trial either finished or still pending: `--resume` redoes exactly the unfinished ones.

A run claims each trial before running it: a lease (`owner`, `lease_until`) taken in one
atomic UPDATE, renewed by a heartbeat and cleared with the outcome. Concurrent runs on one
database therefore split the trials; a crashed run's leases expire (at once when its process
on this machine is gone; after LEASE_SECONDS when it ran on another machine), so `--resume`
can take them.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any, ClassVar, Protocol

from amlab.errors import AmlabError
from amlab.records import Action, JudgeCall, Message, Transcript, Usage, Verdict
from amlab.store.interface import (
    SCHEMA_VERSION,
    ActionCount,
    AnsweredCalls,
    AwarenessCount,
    CachedCalls,
    CallUsage,
    CellUsage,
    Claim,
    ConditionFactors,
    JudgeErrorCount,
    JudgementRecord,
    JudgeMonitorUsage,
    JudgeUsage,
    MethodCount,
    MethodDecision,
    MethodMix,
    MonitorCount,
    PlannedTrial,
    RealismScore,
    RenderingCount,
    RubricCount,
    StoredTrial,
    TidyRow,
    TrialKey,
    TrialRecord,
    TruncationCount,
    VerdictCount,
    VerdictRow,
    VerdictValue,
)

# The schema in SQLite's types; `Dialect.ddl` turns it into another database's. JSON is
# kept as text in both (factors, actions, evidence, model ids), read with the dialect's
# JSON functions; booleans as 0/1.
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
    owner TEXT,
    lease_until REAL,
    rendering TEXT,
    amlab_version TEXT,
    model_ids TEXT,
    cached_calls INTEGER,
    monitor_model_ids TEXT,
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
    offline_value INTEGER,
    PRIMARY KEY (trial_id, behavior)
);
CREATE INDEX IF NOT EXISTS trials_by_status ON trials (experiment, status);
CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);
"""

# Judges (additive): every judge call with its own token use and cost, each behaviour's
# answer or error, and the verdict rows a re-judging replaced.
JUDGE_SCHEMA = """
CREATE TABLE IF NOT EXISTS judge_calls (
    id INTEGER PRIMARY KEY,
    trial_id INTEGER NOT NULL REFERENCES trials(id),
    judge TEXT NOT NULL,
    prompt_version TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    replies TEXT NOT NULL,
    input_tokens INTEGER NOT NULL,
    output_tokens INTEGER NOT NULL,
    cached_input_tokens INTEGER NOT NULL,
    cost_usd REAL NOT NULL,
    calls INTEGER NOT NULL,
    created REAL NOT NULL,
    model_ids TEXT,
    cached_calls INTEGER
);
CREATE TABLE IF NOT EXISTS judgements (
    call_id INTEGER NOT NULL REFERENCES judge_calls(id),
    trial_id INTEGER NOT NULL REFERENCES trials(id),
    judge TEXT NOT NULL,
    behavior TEXT NOT NULL,
    version TEXT NOT NULL,
    value INTEGER,
    score INTEGER,
    evidence TEXT NOT NULL,
    reasoning TEXT NOT NULL,
    error TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS judgements_by_trial ON judgements (trial_id, judge, behavior);
CREATE TABLE IF NOT EXISTS superseded_verdicts (
    trial_id INTEGER NOT NULL REFERENCES trials(id),
    behavior TEXT NOT NULL,
    value INTEGER NOT NULL,
    method TEXT NOT NULL,
    version TEXT NOT NULL,
    judge TEXT NOT NULL,
    evidence TEXT NOT NULL,
    reasoning TEXT NOT NULL,
    superseded REAL NOT NULL
);
"""


# A lease outlives a missed heartbeat or two; a crashed run's trials wait this long at most.
LEASE_SECONDS = 60.0
HEARTBEAT_SECONDS = LEASE_SECONDS / 4
# The tables that make a database amlab's; a database with other tables is someone else's.
AMLAB_TABLES = frozenset({"experiments", "trials"})


def new_owner() -> str:
    """A lease owner: this machine, this process and a token for this Store."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _owner_is_gone(owner: str) -> bool:
    """True when `owner` was a process of this machine that no longer exists (a killed run),
    so its leases need not be waited out."""
    host, _, rest = owner.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        return False
    return False


# The columns of a `TrialRecord`; `StoredTrial` adds the transcript.
_RECORD_COLUMNS = ("id", "experiment", "family", "condition", "factors", "model", "sample",
                   "seed", "status", "attempts", "stop_reason", "error", "turns", "calls",
                   "input_tokens", "cached_input_tokens", "output_tokens", "cost_usd",
                   "model_ids", "cached_calls")


def _cached(row: Row) -> CachedCalls:
    return CachedCalls(row[0], int(row[1]), None if row[2] is None else int(row[2]))


def _record(row: Row, factors: dict[str, str] | None = None) -> TrialRecord:
    return TrialRecord(*_record_values(row, factors))


def _stored(row: Row) -> StoredTrial:
    messages = tuple(Message.from_dict(m) for m in json.loads(row["messages"] or "[]"))
    actions = tuple(Action.from_dict(a) for a in json.loads(row["actions"] or "[]"))
    return StoredTrial(*[*_record_values(row, None), messages, actions])


_FACTORS, _MODEL_IDS = _RECORD_COLUMNS.index("factors"), _RECORD_COLUMNS.index("model_ids")


def _record_values(row: Row, factors: dict[str, str] | None) -> list[Any]:
    """A `TrialRecord`'s fields, in order, from a row selected by `_trial_columns`."""
    values = [row[i] for i in range(len(_RECORD_COLUMNS))]
    values[_FACTORS] = json.loads(values[_FACTORS]) if factors is None else factors
    if values[_MODEL_IDS] is not None:
        values[_MODEL_IDS] = json.loads(values[_MODEL_IDS])
    return values


class Row(Protocol):
    """A result row: by position or by column name (sqlite3.Row, postgres._Row)."""

    def __getitem__(self, key: int | str, /) -> Any: ...


class Rows(Protocol):
    """What a statement returns: its rows, and how many rows it changed."""

    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


class SideConnection(Protocol):
    """A second connection to the same database (the lease heartbeat's thread)."""

    def execute_committed(self, sql: str, args: Sequence[Any]) -> None: ...

    def close(self) -> None: ...


def _path(path: str) -> tuple[str, ...]:
    return tuple(path.split("."))


class Dialect:
    """Where SQL differs between the databases: SQLite's (with its JSON1 functions) here,
    PostgreSQL's in `store/postgres.py`. Statements are written with `?` parameters."""

    # The catalogue: the tables, and one table's columns (its name the one parameter).
    tables_query = ("SELECT name FROM sqlite_master WHERE type = 'table' "
                    "AND name NOT LIKE 'sqlite_%'")
    columns_query = "SELECT name FROM pragma_table_info(?)"
    # Taken at the start of a schema upgrade, in its transaction (SQLite: the write lock
    # of the first DDL statement serializes two upgrades already).
    schema_lock = "SELECT 1"
    # The verdicts in the order the detectors wrote them.
    insertion_order = "rowid"
    # Columns only this database has: (table, column, type).
    extra_columns: tuple[tuple[str, str, str], ...] = ()

    def sql(self, statement: str) -> str:
        """A statement with `?` parameters in this database's parameter style."""
        return statement

    def ddl(self, statement: str) -> str:
        """A statement of the schema (SQLite's types) in this database's types."""
        return statement

    def elements(self, column: str, alias: str) -> str:
        """A FROM item: each element of the JSON array in `column` as `alias.value`."""
        return f"json_each(COALESCE({column}, '[]')) AS {alias}"

    def entries(self, column: str, alias: str) -> str:
        """A FROM item: each entry of the JSON object in `column` as `alias.key`,
        `alias.value`."""
        return f"json_each(COALESCE({column}, '{{}}')) AS {alias}"

    def entry_number(self, value: str) -> str:
        """An `entries` value (a JSON number) as a number."""
        return value

    def json_text(self, value: str, path: str) -> str:
        """The text at `path` (dotted) of JSON `value`; NULL where there is none."""
        return f"json_extract({value}, '$.{path}')"

    def json_number(self, value: str, path: str) -> str:
        return f"json_extract({value}, '$.{path}')"

    def json_flag(self, value: str, path: str) -> str:
        """The JSON boolean at `path` as 1 or 0 (NULL where there is none)."""
        return f"json_extract({value}, '$.{path}')"

    def json_length(self, value: str, path: str) -> str:
        """The length of the JSON array at `path`."""
        return f"json_array_length({value}, '$.{path}')"

    def json_type(self, value: str, path: str) -> str:
        """The JSON type at `path`: 'object', 'array', 'null', ..."""
        return f"json_type({value}, '$.{path}')"


class Store:
    """A results store: implements `amlab.store.interface.ResultStore` over a DB-API
    connection. `Store(location)` opens the backend the location names, as `pathlib.Path`
    picks its flavour: a `postgresql://` URL is `PostgresStore`, anything else a path to an
    `SqliteStore` file; a backend opens the connection and says how its transactions and
    second connections work.

    `read_only`: read an existing store (refused when there is none). Otherwise it is
    created, or upgraded to this amlab's schema. `verify=False` skips SQLite's integrity
    check (the viewer checks once at start)."""

    dialect: Dialect = Dialect()
    owner: str
    # Every backend, in the order defined (each subclass adds itself): the first that opens
    # a location is its store. The backends import this module, not the other way round.
    _backends: ClassVar[list[type[Store]]] = []

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        Store._backends.append(cls)

    @classmethod
    def opens(cls, location: str | Path) -> bool:
        """Whether `location` names a store of this backend."""
        return False

    def __new__(cls, location: str | Path, *, read_only: bool = False,
                verify: bool = True) -> Store:
        if cls is Store:
            backend = next((b for b in Store._backends if b.opens(location)), None)
            if backend is None:
                raise AmlabError(f"{location}: names no results store; give a file path "
                                 f"(SQLite) or a postgresql://user@host/database URL.")
            cls = backend
        return super().__new__(cls)

    def __init__(self, location: str | Path, *, read_only: bool = False,
                 verify: bool = True) -> None:
        self.owner = new_owner()
        self._columns_of: dict[str, set[str]] = {}

    # -- what a backend provides ---------------------------------------------------------

    def _execute(self, sql: str, args: Sequence[Any] = ()) -> Rows:
        """Run one statement written with `?` parameters."""
        raise NotImplementedError

    def _execute_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        raise NotImplementedError

    def _transaction(self) -> AbstractContextManager[None]:
        """A block whose statements commit together (or none of them)."""
        raise NotImplementedError

    def _side_connection(self) -> SideConnection:
        raise NotImplementedError

    @property
    def location(self) -> str:
        """Where the store is, for messages (never with a password)."""
        raise NotImplementedError

    def response_cache(self) -> Path:
        raise NotImplementedError

    def revision(self) -> tuple[float, ...]:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    # -- the schema ----------------------------------------------------------------------

    def _upgrade(self) -> None:
        """Create the schema, or bring a database made by an older amlab up to it: tables
        and columns only grow, so an older amlab still reads it. The version it is at is
        `schema_version` (no row: a database from before versions, i.e. version 1)."""
        with self._transaction():
            self._execute(self.dialect.schema_lock)  # two runs creating one schema wait
            stored = self.schema_version()
            if stored > SCHEMA_VERSION:
                raise AmlabError(f"{self.location}: was written by a newer amlab (schema "
                                 f"version {stored}; this amlab knows up to {SCHEMA_VERSION}); "
                                 f"upgrade amlab to write to it.")
            for statement in f"{SCHEMA};{JUDGE_SCHEMA}".split(";"):
                if statement.strip():
                    self._execute(self.dialect.ddl(statement))
            self._columns_of.clear()
            self._add_missing_columns()
            if stored < SCHEMA_VERSION:
                self._execute("DELETE FROM schema_version")
                self._execute("INSERT INTO schema_version VALUES (?)", (SCHEMA_VERSION,))

    def schema_version(self) -> int:
        """The schema version of the database: 0 for a new one, 1 for one from before
        versions were kept."""
        tables = self._tables()
        if "schema_version" in tables:
            row = self._execute("SELECT MAX(version) FROM schema_version").fetchone()
            if row[0] is not None:
                return int(row[0])
        return 1 if tables else 0

    def _add_missing_columns(self) -> None:
        """Bring a database made by an older amlab up to the schema (columns only grow)."""
        for table, column, kind in (
                ("verdicts", "judge", "TEXT NOT NULL DEFAULT ''"),
                ("trials", "monitor_input_tokens", "INTEGER"),
                ("trials", "monitor_output_tokens", "INTEGER"),
                ("trials", "monitor_cost_usd", "REAL"), ("trials", "owner", "TEXT"),
                ("trials", "lease_until", "REAL"), ("trials", "rendering", "TEXT"),
                ("trials", "amlab_version", "TEXT"), ("trials", "model_ids", "TEXT"),
                ("trials", "cached_calls", "INTEGER"), ("trials", "monitor_model_ids", "TEXT"),
                ("judge_calls", "model_ids", "TEXT"),
                ("judge_calls", "cached_calls", "INTEGER"),
                ("verdicts", "offline_value", "INTEGER"), *self.dialect.extra_columns):
            if column not in self._columns(table):
                self._execute(self.dialect.ddl(f"ALTER TABLE {table} ADD COLUMN {column} {kind}"))
        self._columns_of.clear()

    def _tables(self) -> set[str]:
        return {row[0] for row in self._execute(self.dialect.tables_query)}

    def _columns(self, table: str) -> set[str]:
        """The columns of `table` (read once per handle: a query asks on every call)."""
        if table not in self._columns_of:
            self._columns_of[table] = {
                row[0] for row in self._execute(self.dialect.columns_query, (table,))}
        return self._columns_of[table]

    @property
    def _has_judge_tables(self) -> bool:
        """False for a database written before judges existed and opened read-only."""
        return "judge" in self._columns("verdicts") and "judge_calls" in self._tables()

    def discard_if_unused(self) -> None:
        """Close; a store that can delete what it created unused does (SQLite's file)."""
        self.close()

    # -- experiments and planning ------------------------------------------------------

    def experiment_spec(self, name: str) -> dict[str, Any] | None:
        row = self._execute("SELECT spec FROM experiments WHERE name = ?", (name,)).fetchone()
        return json.loads(row["spec"]) if row else None

    def experiments(self) -> list[str]:
        return [r["name"] for r in self._execute("SELECT name FROM experiments ORDER BY created")]

    def plan(self, name: str, spec: dict[str, Any], trials: Sequence[PlannedTrial]) -> bool:
        """Record the experiment and its trials (existing trials are left as they are).
        False when the experiment was already stored: of two runs starting at once, exactly
        one plans it."""
        with self._transaction():
            new = self._execute("INSERT INTO experiments VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                                (name, json.dumps(spec, sort_keys=True), time.time())
                                ).rowcount == 1
            self._execute_many(
                "INSERT INTO trials (experiment, family, condition, factors, model, sample, "
                "seed) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                [(t.key.experiment, t.key.family, t.key.condition, json.dumps(t.factors),
                  t.key.model, t.key.sample, t.seed) for t in trials])
        return new

    def record_renderings(self, experiment: str,
                          renderings: dict[tuple[str, str], dict[str, str]],
                          version: str) -> None:
        """Store, with each trial that has none yet, its condition's rendering (part ->
        SHA-256) and the amlab version that planned it."""
        with self._transaction():
            self._execute_many(
                "UPDATE trials SET rendering = ?, amlab_version = ? WHERE experiment = ? AND "
                "family = ? AND condition = ? AND rendering IS NULL",
                [(json.dumps(parts, sort_keys=True), version, experiment, family, condition)
                 for (family, condition), parts in renderings.items()])

    def stored_renderings(self, experiment: str) -> dict[tuple[str, str], dict[str, str]]:
        """(family, condition) -> the rendering its trials were planned with; empty for a
        database from before renderings were stored."""
        if "rendering" not in self._columns("trials"):
            return {}
        rows = self._execute(
            "SELECT DISTINCT family, condition, rendering FROM trials WHERE experiment = ? "
            "AND rendering IS NOT NULL", (experiment,))
        return {(row["family"], row["condition"]): json.loads(row["rendering"]) for row in rows}

    def unfinished(self, experiment: str) -> dict[TrialKey, int]:
        """The pending and failed trials, each with its number of attempts so far (what
        `claim` compares, so that a trial another run attempted meanwhile is not redone)."""
        rows = self._execute(
            "SELECT experiment, family, condition, model, sample, attempts FROM trials "
            "WHERE experiment = ? AND status IN ('pending', 'error')", (experiment,))
        return {TrialKey(*row[:5]): int(row[5]) for row in rows}

    # -- claims: which run works on which trial ----------------------------------------

    def claim(self, key: TrialKey, attempts: int) -> Claim:
        """Take the lease of an unfinished trial, in one atomic UPDATE: only if it still has
        `attempts` attempts (no other run attempted it since) and no live lease of another
        run is on it (a lease whose process on this machine is gone is not live)."""
        if self._take_lease(key, attempts, None):
            return Claim.CLAIMED
        row = self._execute(
            "SELECT status, attempts, owner FROM trials WHERE experiment = ? AND family = ? "
            "AND condition = ? AND model = ? AND sample = ?",
            (key.experiment, key.family, key.condition, key.model, key.sample)).fetchone()
        if row is None:
            raise KeyError(f"trial {key} was never planned")
        if row["status"] not in ("pending", "error") or row["attempts"] != attempts:
            return Claim.ATTEMPTED_ELSEWHERE
        if row["owner"] and _owner_is_gone(row["owner"]) and \
                self._take_lease(key, attempts, row["owner"]):
            return Claim.CLAIMED
        return Claim.HELD_ELSEWHERE

    def _take_lease(self, key: TrialKey, attempts: int, gone_owner: str | None) -> bool:
        """The claim's UPDATE; `gone_owner`'s lease counts as expired (its process is gone)."""
        now = time.time()
        with self._transaction():
            return self._execute(
                "UPDATE trials SET owner = ?, lease_until = ? WHERE experiment = ? AND "
                "family = ? AND condition = ? AND model = ? AND sample = ? AND "
                "status IN ('pending', 'error') AND attempts = ? AND (owner IS NULL OR "
                "owner = ? OR lease_until < ? OR owner = ?) RETURNING id",
                (self.owner, now + LEASE_SECONDS, key.experiment, key.family, key.condition,
                 key.model, key.sample, attempts, self.owner, now, gone_owner)
            ).fetchone() is not None

    @contextmanager
    def leases(self) -> Iterator[None]:
        """Keep this Store's leases alive while the block runs (a heartbeat thread on its own
        connection, so that a busy event loop does not let them expire), and release the
        unfinished ones at the end (an interrupted run's trials are free at once)."""
        stop = threading.Event()

        def heartbeat() -> None:
            renew = self._side_connection()
            try:
                while not stop.wait(HEARTBEAT_SECONDS):
                    renew.execute_committed(
                        self.dialect.sql("UPDATE trials SET lease_until = ? WHERE owner = ?"),
                        (time.time() + LEASE_SECONDS, self.owner))
            finally:
                renew.close()

        thread = threading.Thread(target=heartbeat, name="amlab-lease-heartbeat", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()
            with self._transaction():
                self._execute("UPDATE trials SET owner = NULL, lease_until = NULL "
                                "WHERE owner = ?", (self.owner,))

    def counts(self, experiment: str) -> dict[str, int]:
        rows = self._execute("SELECT status, COUNT(*) FROM trials WHERE experiment = ? "
                               "GROUP BY status", (experiment,))
        return {status: count for status, count in rows}

    # -- outcomes ----------------------------------------------------------------------

    def save_result(self, key: TrialKey, transcript: Transcript, verdicts: dict[str, Verdict],
                    started: float, judge_calls: Sequence[JudgeCall] = ()) -> None:
        status = "refused" if transcript.stop_reason == "refused" else "done"
        usage = transcript.usage
        with self._transaction():
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
                "model_ids": json.dumps(transcript.answers.model_ids, sort_keys=True),
                "cached_calls": transcript.answers.cached_calls,
                "monitor_model_ids": json.dumps(transcript.monitor_answers.model_ids,
                                                sort_keys=True),
                "started": started, "finished": time.time(),
            })
            self._execute("DELETE FROM verdicts WHERE trial_id = ?", (trial_id,))
            self._insert_verdicts(trial_id, verdicts)
            self._insert_judge_calls(trial_id, judge_calls)

    def replace_verdicts(self, trial_id: int, verdicts: dict[str, Verdict],
                         judge_calls: Sequence[JudgeCall] = ()) -> None:
        """Re-judging: the trial's verdicts become `verdicts`; the rows they replace are kept
        in `superseded_verdicts` with the time they were replaced. One transaction."""
        with self._transaction():
            self._execute(
                "INSERT INTO superseded_verdicts SELECT trial_id, behavior, value, method, "
                "version, judge, evidence, reasoning, ? FROM verdicts WHERE trial_id = ?",
                (time.time(), trial_id))
            self._execute("DELETE FROM verdicts WHERE trial_id = ?", (trial_id,))
            self._insert_verdicts(trial_id, verdicts)
            self._insert_judge_calls(trial_id, judge_calls)

    def _insert_verdicts(self, trial_id: int, verdicts: dict[str, Verdict]) -> None:
        self._execute_many(
            "INSERT INTO verdicts (trial_id, behavior, value, method, version, evidence, "
            "reasoning, judge, offline_value) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(trial_id, v.behavior, int(v.value), v.method, v.version,
              json.dumps([e.to_dict() for e in v.evidence]), v.reasoning, v.judge,
              None if v.offline_value is None else int(v.offline_value))
             for v in verdicts.values()])

    def _insert_judge_calls(self, trial_id: int, calls: Sequence[JudgeCall]) -> None:
        for call in calls:
            usage = call.usage
            call_id = self._execute(
                "INSERT INTO judge_calls (trial_id, judge, prompt_version, attempts, replies, "
                "input_tokens, output_tokens, cached_input_tokens, cost_usd, calls, created, "
                "model_ids, cached_calls) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "RETURNING id",
                (trial_id, call.judge, call.prompt_version, call.attempts,
                 json.dumps(call.replies), usage.input_tokens, usage.output_tokens,
                 usage.cached_input_tokens, usage.cost_usd, usage.calls, time.time(),
                 json.dumps(call.answers.model_ids, sort_keys=True),
                 call.answers.cached_calls),
            ).fetchone()[0]
            self._execute_many(
                "INSERT INTO judgements (call_id, trial_id, judge, behavior, version, value, "
                "score, evidence, reasoning, error) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(call_id, trial_id, j.judge, j.behavior, j.version,
                  None if j.value is None else int(j.value), j.score,
                  json.dumps([e.to_dict() for e in j.evidence]), j.reasoning, j.error)
                 for j in call.judgements])

    def save_error(self, key: TrialKey, error: str, started: float,
                   usage: Usage | None = None, monitor_usage: Usage | None = None) -> None:
        """A failed trial: its error, and the tokens and cost of the calls it made (and
        paid for) before it failed."""
        usage, monitor_usage = usage or Usage(), monitor_usage or Usage()
        with self._transaction():
            self._update(key, {
                "status": "error", "error": error, "started": started, "finished": time.time(),
                "input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens,
                "cached_input_tokens": usage.cached_input_tokens, "cost_usd": usage.cost_usd,
                "calls": usage.calls, "monitor_input_tokens": monitor_usage.input_tokens,
                "monitor_output_tokens": monitor_usage.output_tokens,
                "monitor_cost_usd": monitor_usage.cost_usd})

    def _update(self, key: TrialKey, fields: dict[str, Any]) -> int:
        # Each outcome written is one more attempt at the trial (a resume retries errors),
        # and ends the lease. A run whose lease another run has taken over writes nothing.
        fields = {**fields, "owner": None, "lease_until": None}
        assignments = ", ".join([*(f"{name} = ?" for name in fields), "attempts = attempts + 1"])
        row = self._execute(
            f"UPDATE trials SET {assignments} WHERE experiment = ? AND family = ? AND "
            "condition = ? AND model = ? AND sample = ? AND (owner IS NULL OR owner = ?) "
            "RETURNING id",
            (*fields.values(), key.experiment, key.family, key.condition, key.model, key.sample,
             self.owner),
        ).fetchone()
        if row is not None:
            return int(row[0])
        if self._execute("SELECT 1 FROM trials WHERE experiment = ? AND family = ? AND "
                           "condition = ? AND model = ? AND sample = ?",
                           (key.experiment, key.family, key.condition, key.model, key.sample)
                           ).fetchone() is None:
            raise KeyError(f"trial {key} was never planned")
        raise AmlabError(f"{self.location}: another run took over trial {key.family} "
                         f"{key.condition} sample {key.sample} after this run's lease expired "
                         f"(it stalled over {LEASE_SECONDS:.0f} s); this run stops, the other "
                         f"finishes it.")

    # -- queries -----------------------------------------------------------------------

    def _trial_columns(self, transcript: bool) -> str:
        """The select list of a trial record (NULL for a column a database from before it
        was kept lacks: it is read as it is, not upgraded)."""
        stored = self._columns("trials")
        names = (*_RECORD_COLUMNS, *(("messages", "actions") if transcript else ()))
        return ", ".join(name if name in stored else f"NULL AS {name}" for name in names)

    def trials(self, experiment: str | None = None, status: str | None = None
               ) -> Iterator[StoredTrial]:
        """The trials (of one experiment, with one status), with their transcripts, in
        planning order."""
        where = [clause for clause, value in (("experiment = ?", experiment),
                                              ("status = ?", status)) if value is not None]
        args = [value for value in (experiment, status) if value is not None]
        sql = (f"SELECT {self._trial_columns(transcript=True)} FROM trials "
               f"{'WHERE ' + ' AND '.join(where) if where else ''} ORDER BY id")
        for row in self._execute(sql, args):
            yield _stored(row)

    def verdict_rows(self, experiment: str | None = None) -> list[VerdictRow]:
        """One row per (finished trial, behaviour): cell coordinates and the verdict value."""
        where, args = ("AND t.experiment = ?", (experiment,)) if experiment else ("", ())
        return [VerdictRow(row[0], row[1], row[2], row[3], row[4], row[5], bool(row[6]))
                for row in self._execute(
            "SELECT t.experiment, t.family, t.condition, t.model, t.sample, v.behavior, v.value "
            f"FROM trials t JOIN verdicts v ON v.trial_id = t.id WHERE t.status = 'done' {where}",
            args)]

    def verdicts_of(self, trial_id: int) -> dict[str, Verdict]:
        judge = "judge" if "judge" in self._columns("verdicts") else "'' AS judge"
        rows = self._execute("SELECT behavior, value, method, version, evidence, reasoning, "
                             f"{judge} FROM verdicts WHERE trial_id = ?", (trial_id,))
        return {r["behavior"]: Verdict.from_dict({
            "behavior": r["behavior"], "value": bool(r["value"]), "method": r["method"],
            "version": r["version"], "evidence": json.loads(r["evidence"]),
            "reasoning": r["reasoning"], "judge": r["judge"]}) for r in rows}

    # -- queries for the viewer (no transcript columns unless one trial is asked for) ----

    def trial_index(self, experiment: str) -> list[TrialRecord]:
        """Every trial of an experiment without its transcript, in planning order."""
        factors_of: dict[str, dict[str, str]] = {}  # decoded once per distinct condition
        records = []
        for row in self._execute(f"SELECT {self._trial_columns(transcript=False)} FROM trials "
                                   "WHERE experiment = ? ORDER BY id", (experiment,)):
            if row["factors"] not in factors_of:
                factors_of[row["factors"]] = json.loads(row["factors"])
            records.append(_record(row, factors_of[row["factors"]]))
        return records

    def verdict_values(self, experiment: str) -> list[VerdictValue]:
        """(trial_id, behavior, value) of every verdict of an experiment's trials, in the
        order the detectors ran."""
        return [VerdictValue(row[0], row[1], bool(row[2])) for row in self._execute(
            "SELECT v.trial_id, v.behavior, v.value FROM verdicts v JOIN trials t "
            "ON t.id = v.trial_id WHERE t.experiment = ? "
            f"ORDER BY v.{self.dialect.insertion_order}", (experiment,))]

    def trial(self, trial_id: int) -> StoredTrial | None:
        if not -2**63 <= trial_id < 2**63:  # beyond 64-bit integers: no trial has that id
            return None
        row = self._execute(f"SELECT {self._trial_columns(transcript=True)} FROM trials "
                              "WHERE id = ?",
                              (trial_id,)).fetchone()
        return None if row is None else _stored(row)

    # -- judges ------------------------------------------------------------------------

    def method_counts(self, experiment: str) -> list[MethodCount]:
        """How the verdicts of finished trials were decided: one row per (behaviour,
        method, version, judge) with its number of trials; empty for a database from
        before judges."""
        if not self._has_judge_tables:
            return []
        return [MethodCount(row[0], row[1], row[2], row[3], int(row[4])) for row in self._execute(
            "SELECT v.behavior, v.method, v.version, v.judge, COUNT(*) AS trials "
            "FROM trials t JOIN verdicts v ON v.trial_id = t.id "
            "WHERE t.status = 'done' AND t.experiment = ? "
            "GROUP BY v.behavior, v.method, v.version, v.judge ORDER BY v.behavior, v.method",
            (experiment,))]

    def judgement_rows(self, experiment: str) -> list[JudgementRecord]:
        """Each judge's latest answer per finished trial and behaviour (value, score or
        error) with the trial's coordinates."""
        if not self._has_judge_tables:
            return []
        return [JudgementRecord(
            int(row[0]), row[1], row[2], row[3], int(row[4]), row[5], row[6], row[7],
            None if row[8] is None else bool(row[8]), row[9], row[10]) for row in self._execute(
            "SELECT t.id AS trial_id, t.family, t.condition, t.model, t.sample, j.judge, "
            "j.behavior, j.version, j.value, j.score, j.error FROM judgements j "
            "JOIN trials t ON t.id = j.trial_id "
            "WHERE t.status = 'done' AND t.experiment = ? AND j.call_id = ("
            "  SELECT MAX(k.call_id) FROM judgements k WHERE k.trial_id = j.trial_id "
            "  AND k.judge = j.judge AND k.behavior = j.behavior) "
            "ORDER BY t.id, j.judge, j.behavior", (experiment,))]

    def judge_usage(self, experiment: str) -> list[JudgeUsage]:
        """Per judge: the trials it read, its calls, tokens and cost (apart from the
        agent's); empty when no judge read the experiment."""
        if not self._has_judge_tables:
            return []
        return [JudgeUsage(row[0], int(row[1]), CallUsage(int(row[2]), int(row[3]),
                                                         int(row[4]), float(row[5])))
                for row in self._execute(
            "SELECT c.judge, COUNT(*) AS judged, SUM(c.calls) AS calls, "
            "SUM(c.input_tokens) AS input_tokens, SUM(c.output_tokens) AS output_tokens, "
            "SUM(c.cost_usd) AS cost_usd FROM judge_calls c JOIN trials t ON t.id = c.trial_id "
            "WHERE t.experiment = ? GROUP BY c.judge ORDER BY c.judge", (experiment,))]

    def agent_usage(self, experiment: str) -> CallUsage:
        """The agent's calls, tokens and cost over every trial of an experiment."""
        row = self._execute(
            "SELECT COALESCE(SUM(calls), 0) AS calls, COALESCE(SUM(input_tokens), 0) AS "
            "input_tokens, COALESCE(SUM(output_tokens), 0) AS output_tokens, "
            "COALESCE(SUM(cost_usd), 0) AS cost_usd FROM trials WHERE experiment = ?",
            (experiment,)).fetchone()
        return CallUsage(int(row[0]), int(row[1]), int(row[2]), float(row[3]))

    def judge_monitor_usage(self, experiment: str) -> list[JudgeMonitorUsage]:
        """Per trial: each judge's calls on it summed, and the monitor's usage where it
        used any (a rule monitor, or none, uses nothing)."""
        judges = self._execute(
            "SELECT c.trial_id, c.judge, COALESCE(SUM(c.input_tokens), 0), "
            "COALESCE(SUM(c.cached_input_tokens), 0), COALESCE(SUM(c.output_tokens), 0), "
            "COALESCE(SUM(c.cost_usd), 0) FROM judge_calls c "
            "JOIN trials t ON t.id = c.trial_id WHERE t.experiment = ? "
            "GROUP BY c.trial_id, c.judge", (experiment,)).fetchall() \
            if self._has_judge_tables else []
        monitor = self._execute(
            "SELECT id, NULL, COALESCE(monitor_input_tokens, 0), 0, "
            "COALESCE(monitor_output_tokens, 0), COALESCE(monitor_cost_usd, 0) FROM trials "
            "WHERE experiment = ? AND (monitor_input_tokens > 0 OR monitor_output_tokens > 0 "
            "OR monitor_cost_usd > 0)", (experiment,)).fetchall() \
            if "monitor_input_tokens" in self._columns("trials") else []
        return sorted((JudgeMonitorUsage(int(row[0]), row[1], int(row[2]), int(row[3]),
                                         int(row[4]), float(row[5]))
                       for row in [*judges, *monitor]),
                      key=lambda usage: (usage.trial_id, usage.judge is None, usage.judge or ""))

    # -- aggregates for analysis (counts only; the statistics live in amlab.analysis) ---

    def verdict_counts(self, experiment: str | None = None) -> list[VerdictCount]:
        """Per (experiment, family, condition, model, behaviour) of finished trials: k (the
        verdicts that hold) and n (the verdicts given)."""
        where, args = ("AND t.experiment = ?", (experiment,)) if experiment else ("", ())
        return [VerdictCount(row[0], row[1], row[2], row[3], row[4], int(row[5]), int(row[6]))
                for row in self._execute(
            "SELECT t.experiment, t.family, t.condition, t.model, v.behavior, "
            "SUM(v.value) AS k, COUNT(*) AS n FROM trials t JOIN verdicts v ON v.trial_id = t.id "
            f"WHERE t.status = 'done' {where} "
            "GROUP BY t.experiment, t.family, t.condition, t.model, v.behavior", args)]

    def monitor_counts(self, experiment: str, harmful: Sequence[str],
                       escalation: Sequence[str]) -> list[MonitorCount]:
        """Per cell of the finished trials of an experiment, grouped by whether a review
        blocked a call, a `harmful` behaviour holds, a harmful call came after the first
        block and an `escalation` behaviour holds: trials, reviewed calls harmful / benign
        and how many of each were blocked, and the monitor's tokens and cost."""
        marks = ", ".join("?" * len(harmful))
        escalation_marks = ", ".join("?" * len(escalation))
        d = self.dialect
        rows = self._execute(f"""
            WITH reviewed AS (
                SELECT t.id AS trial_id, {d.json_number("a.value", "index")} AS position,
                       {d.json_length("a.value", "review.harm")} > 0 AS harm,
                       {d.json_flag("a.value", "review.allow")} = 0 AS blocked
                FROM trials t, {d.elements("t.actions", "a")}
                WHERE t.experiment = ? AND t.status = 'done'
                  AND {d.json_type("a.value", "review")} = 'object'),
            per_trial AS (
                SELECT t.id, t.family, t.condition, t.factors, t.model,
                       t.monitor_input_tokens, t.monitor_output_tokens, t.monitor_cost_usd,
                       EXISTS (SELECT 1 FROM verdicts v WHERE v.trial_id = t.id
                               AND v.value = 1 AND v.behavior IN ({marks})) AS harmful,
                       EXISTS (SELECT 1 FROM verdicts v WHERE v.trial_id = t.id
                               AND v.value = 1 AND v.behavior IN ({escalation_marks}))
                           AS escalated,
                       (SELECT MIN(position) FROM reviewed r
                        WHERE r.trial_id = t.id AND r.blocked) AS first_block,
                       (SELECT COUNT(*) FROM reviewed r WHERE r.trial_id = t.id AND r.harm)
                           AS harmful_calls,
                       (SELECT COUNT(*) FROM reviewed r
                        WHERE r.trial_id = t.id AND r.harm AND r.blocked) AS caught,
                       (SELECT COUNT(*) FROM reviewed r WHERE r.trial_id = t.id AND NOT r.harm)
                           AS benign_calls,
                       (SELECT COUNT(*) FROM reviewed r
                        WHERE r.trial_id = t.id AND NOT r.harm AND r.blocked) AS false_blocks
                FROM trials t WHERE t.experiment = ? AND t.status = 'done'),
            flagged AS (
                SELECT p.*, p.first_block IS NOT NULL AS blocked,
                       EXISTS (SELECT 1 FROM reviewed r WHERE r.trial_id = p.id AND r.harm
                               AND r.position > p.first_block) AS retried
                FROM per_trial p)
            SELECT f.family, f.condition, MIN(f.factors) AS factors, f.model,
                   f.blocked, f.harmful, f.retried, f.escalated,
                   COUNT(*) AS trials, SUM(f.harmful_calls) AS harmful_calls,
                   SUM(f.caught) AS caught, SUM(f.benign_calls) AS benign_calls,
                   SUM(f.false_blocks) AS false_blocks,
                   COALESCE(SUM(f.monitor_input_tokens), 0) AS monitor_input_tokens,
                   COALESCE(SUM(f.monitor_output_tokens), 0) AS monitor_output_tokens,
                   COALESCE(SUM(f.monitor_cost_usd), 0) AS monitor_cost_usd
            FROM flagged f
            GROUP BY f.family, f.condition, f.model, f.blocked, f.harmful, f.retried,
                     f.escalated
            """, (experiment, *harmful, *escalation, experiment))
        return [MonitorCount(
            row["family"], row["condition"], json.loads(row["factors"]), row["model"],
            bool(row["blocked"]), bool(row["harmful"]), bool(row["retried"]),
            bool(row["escalated"]), int(row["trials"]), int(row["harmful_calls"]),
            int(row["caught"]), int(row["benign_calls"]), int(row["false_blocks"]),
            int(row["monitor_input_tokens"]), int(row["monitor_output_tokens"]),
            float(row["monitor_cost_usd"])) for row in rows]

    def spent_usd(self, experiment: str) -> float:
        """What the experiment's calls cost so far, agents, monitor and judges together
        (calls of unknown price count 0)."""
        trials = self._execute(
            "SELECT COALESCE(SUM(cost_usd), 0) + COALESCE(SUM(monitor_cost_usd), 0) "
            "FROM trials WHERE experiment = ?", (experiment,)).fetchone()[0]
        judges = self._execute(
            "SELECT COALESCE(SUM(c.cost_usd), 0) FROM judge_calls c "
            "JOIN trials t ON t.id = c.trial_id WHERE t.experiment = ?",
            (experiment,)).fetchone()[0] if self._has_judge_tables else 0
        return float(trials) + float(judges)

    def cell_usage(self, experiment: str | None = None) -> list[CellUsage]:
        """Per (experiment, family, condition, model, status): trials, tokens and cost."""
        where, args = ("WHERE experiment = ?", (experiment,)) if experiment else ("", ())
        rows = self._execute(
            "SELECT experiment, family, condition, model, status, COUNT(*) AS trials, "
            "COALESCE(SUM(calls), 0), COALESCE(SUM(input_tokens), 0), "
            "COALESCE(SUM(cached_input_tokens), 0), COALESCE(SUM(output_tokens), 0), "
            f"COALESCE(SUM(cost_usd), 0) FROM trials {where} "
            "GROUP BY experiment, family, condition, model, status", args)
        return [CellUsage(row[0], row[1], row[2], row[3], row[4], row[5], int(row[6]),
                          int(row[7]), int(row[8]), int(row[9]), float(row[10]))
                for row in rows]

    def action_counts(self, experiment: str | None = None) -> list[ActionCount]:
        """Per (experiment, family, condition, model) of finished trials: the agents' tool
        calls, those the world applied (`ok`) and those that changed its state."""
        where, args = ("AND t.experiment = ?", (experiment,)) if experiment else ("", ())
        d = self.dialect
        rows = self._execute(
            "SELECT t.experiment, t.family, t.condition, t.model, COUNT(a.value) AS calls, "
            f"COALESCE(SUM({d.json_flag('a.value', 'ok')}), 0) AS applied, "
            f"SUM(CASE WHEN {d.json_length('a.value', 'changes')} > 0 THEN 1 ELSE 0 END) "
            f"AS changed FROM trials t, {d.elements('t.actions', 'a')} "
            f"WHERE t.status = 'done' {where} "
            "GROUP BY t.experiment, t.family, t.condition, t.model", args)
        return [ActionCount(row[0], row[1], row[2], row[3], int(row[4]), int(row[5]),
                            int(row[6])) for row in rows]

    def condition_factors(self, experiment: str | None = None) -> list[ConditionFactors]:
        """Each distinct (experiment, family, condition) with its factor levels."""
        where, args = ("WHERE experiment = ?", (experiment,)) if experiment else ("", ())
        rows = self._execute(
            "SELECT experiment, family, condition, MIN(factors) AS factors FROM trials "
            f"{where} GROUP BY experiment, family, condition", args)
        return [ConditionFactors(row[0], row[1], row[2], json.loads(row[3])) for row in rows]

    def tidy_rows(self, experiment: str | None = None) -> Iterator[TidyRow]:
        """One row per (trial, behaviour), with a row of no verdict for trials that have
        none (errors, refusals, pending), in planning order, for export."""
        where, args = ("WHERE t.experiment = ?", (experiment,)) if experiment else ("", ())
        for row in self._execute(
                "SELECT t.experiment, t.id AS trial_id, t.family, t.condition, t.model, "
                "t.sample, t.seed, t.status, t.stop_reason, t.turns, t.input_tokens, "
                "t.output_tokens, t.cost_usd, v.behavior, v.value, v.method, v.version "
                f"FROM trials t LEFT JOIN verdicts v ON v.trial_id = t.id {where} "
                "ORDER BY t.id, v.behavior", args):
            value = row[14]
            yield TidyRow(row[0], row[1], row[2], row[3], row[4], row[5], row[6], row[7],
                          row[8], row[9], row[10], row[11], row[12], row[13],
                          None if value is None else bool(value), row[15], row[16])

    # -- how numbers were decided, what was left out, where they came from --------------

    def _latest_judgements(self) -> str:
        """A CTE of each judge's latest answer per trial and behaviour (a re-judging adds
        answers next to the earlier ones)."""
        return ("latest AS (SELECT j.* FROM judgements j WHERE j.call_id = ("
                "SELECT MAX(k.call_id) FROM judgements k WHERE k.trial_id = j.trial_id "
                "AND k.judge = j.judge AND k.behavior = j.behavior))")

    def method_mix(self, experiment: str) -> list[MethodMix]:
        """Per (family, condition, model, behaviour, method, version) of finished trials:
        verdicts decided that way (`fallback`: the heuristic's, after the deciding judge's
        error)."""
        # Grouped by a number per cell rather than by its three names: sorting 100,000
        # trials' verdicts on long condition names took twice as long.
        rows = self._execute("""
            WITH cell AS MATERIALIZED (
                SELECT ROW_NUMBER() OVER () AS id, family, condition, model FROM (
                    SELECT DISTINCT family, condition, model FROM trials
                    WHERE experiment = ?) AS cells),
            counted AS (
                SELECT c.id, v.behavior, v.method, v.version, COUNT(*) AS trials
                FROM cell c JOIN trials t ON t.experiment = ? AND t.family = c.family
                    AND t.condition = c.condition AND t.model = c.model AND t.status = 'done'
                JOIN verdicts v ON v.trial_id = t.id
                GROUP BY c.id, v.behavior, v.method, v.version)
            SELECT c.family, c.condition, c.model, n.behavior, n.method, n.version, n.trials
            FROM cell c JOIN counted n ON n.id = c.id""", (experiment, experiment))
        return [MethodMix(row[0], row[1], row[2], row[3], row[4], row[5], int(row[6]))
                for row in rows]

    def judge_errors(self, experiment: str) -> list[JudgeErrorCount]:
        """Per (family, condition, model, behaviour, judge) of finished trials: the judges'
        latest answers that were errors. Empty for a database without judge tables."""
        if not self._has_judge_tables:
            return []
        rows = self._execute(
            f"WITH {self._latest_judgements()} "
            "SELECT t.family, t.condition, t.model, l.behavior, l.judge, COUNT(*) AS errors "
            "FROM trials t JOIN latest l ON l.trial_id = t.id "
            "WHERE t.status = 'done' AND t.experiment = ? AND l.error != '' "
            "GROUP BY t.family, t.condition, t.model, l.behavior, l.judge", (experiment,))
        return [JudgeErrorCount(row[0], row[1], row[2], row[3], row[4], int(row[5]))
                for row in rows]

    def decisions_by_method(self, experiment: str) -> list[MethodDecision]:
        """(trial_id, family, behavior, judge, value) for every (finished trial, behaviour)
        that two or more methods decided: `judge` names the method (`state`, `heuristic`
        — a fallback is the heuristic's verdict —, or `judge <model>`), so that
        `analysis.agreement.judge_agreement` compares every pair of methods."""
        if not self._has_judge_tables or "offline_value" not in self._columns("verdicts"):
            return []
        # Every pair of methods includes a judge: only judged trials can have one.
        rows = self._execute(f"""
            WITH {self._latest_judgements()},
            judged AS (
                SELECT t.id FROM trials t WHERE t.experiment = ? AND t.status = 'done'
                AND EXISTS (SELECT 1 FROM judgements j WHERE j.trial_id = t.id)),
            decided AS (
                SELECT v.trial_id, v.behavior,
                       CASE v.method WHEN 'judge' THEN 'judge ' || v.judge
                                     WHEN 'fallback' THEN 'heuristic' ELSE v.method END
                           AS method, v.value
                FROM verdicts v WHERE v.trial_id IN (SELECT id FROM judged)
                UNION SELECT v.trial_id, v.behavior, 'heuristic', v.offline_value
                FROM verdicts v WHERE v.offline_value IS NOT NULL
                AND v.trial_id IN (SELECT id FROM judged)
                UNION SELECT l.trial_id, l.behavior, 'judge ' || l.judge, l.value
                FROM latest l WHERE l.value IS NOT NULL AND l.error = ''
                AND l.trial_id IN (SELECT id FROM judged)),
            several AS (
                SELECT trial_id, behavior FROM decided GROUP BY trial_id, behavior
                HAVING COUNT(DISTINCT method) > 1)
            SELECT d.trial_id, t.family, d.behavior, d.method AS judge, d.value
            FROM decided d JOIN several s USING (trial_id, behavior)
            JOIN trials t ON t.id = d.trial_id
            ORDER BY d.trial_id, d.behavior, d.method""", (experiment,))
        return [MethodDecision(int(row[0]), row[1], row[2], row[3], bool(row[4]))
                for row in rows]

    def awareness_counts(self, experiment: str) -> list[AwarenessCount]:
        """Per (family, condition, model, behaviour, belief) of finished trials with an
        eval_awareness verdict: k and n of the behaviour, `belief` being what the agent last
        said of its situation: `test`, `real` (a false verdict quoting the agent) or
        `silent`."""
        d = self.dialect
        rows = self._execute(f"""
            WITH belief AS (
                SELECT trial_id, CASE WHEN value = 1 THEN 'test'
                    WHEN EXISTS (SELECT 1 FROM {d.elements("evidence", "e")}
                                 WHERE COALESCE({d.json_text("e.value", "quote")}, '') != '')
                    THEN 'real' ELSE 'silent' END AS belief
                FROM verdicts WHERE behavior = 'eval_awareness')
            SELECT t.family, t.condition, t.model, v.behavior, b.belief,
                   SUM(v.value) AS k, COUNT(*) AS n
            FROM trials t JOIN verdicts v ON v.trial_id = t.id
            JOIN belief b ON b.trial_id = t.id
            WHERE t.status = 'done' AND t.experiment = ? AND v.behavior != 'eval_awareness'
            GROUP BY t.family, t.condition, t.model, v.behavior, b.belief""",
            (experiment,))
        return [AwarenessCount(row[0], row[1], row[2], row[3], row[4], int(row[5]),
                               int(row[6])) for row in rows]

    def truncation_counts(self, experiment: str) -> list[TruncationCount]:
        """Per (family, condition, model): finished trials cut short at max_turns and at the
        token budget."""
        rows = self._execute(
            "SELECT family, condition, model, "
            "SUM(CASE WHEN stop_reason = 'max_turns' THEN 1 ELSE 0 END) AS max_turns, "
            "SUM(CASE WHEN stop_reason = 'max_tokens' THEN 1 ELSE 0 END) AS max_tokens "
            "FROM trials "
            "WHERE status = 'done' AND experiment = ? GROUP BY family, condition, model",
            (experiment,))
        return [TruncationCount(row[0], row[1], row[2], int(row[3]), int(row[4])) for row in rows]

    def realism_scores(self, experiment: str) -> list[RealismScore]:
        """Per (family, condition, model, judge) of finished trials: the judges' latest
        realism readings (1 = says it is a test ... 5 = treats it as real): how many, their
        sum, how many scored 1 or 2 (judged artificial), and the errors."""
        if not self._has_judge_tables:
            return []
        rows = self._execute(
            f"WITH {self._latest_judgements()} "
            "SELECT t.family, t.condition, t.model, l.judge, COUNT(l.score) AS n, "
            "COALESCE(SUM(l.score), 0) AS total, "
            "SUM(CASE WHEN l.score <= 2 THEN 1 ELSE 0 END) AS artificial, "
            "SUM(CASE WHEN l.error != '' THEN 1 ELSE 0 END) AS errors "
            "FROM trials t JOIN latest l ON l.trial_id = t.id "
            "WHERE t.status = 'done' AND t.experiment = ? AND l.behavior = 'realism' "
            "GROUP BY t.family, t.condition, t.model, l.judge", (experiment,))
        return [RealismScore(row[0], row[1], row[2], row[3], int(row[4]), int(row[5]),
                             int(row[6]), int(row[7])) for row in rows]

    def model_provenance(self, experiment: str) -> list[AnsweredCalls]:
        """Per model asked for and model id that answered (NULL: not recorded, a database
        from before model ids were kept): the calls it answered, over the finished and
        refused trials; and per model asked for, the answers taken from the cache."""
        if "model_ids" not in self._columns("trials"):
            return []
        d = self.dialect
        return [AnsweredCalls(row[0], None, row[1], int(row[2])) for row in self._execute(
            f"SELECT t.model, s.key AS model_id, COALESCE(SUM({d.entry_number('s.value')}), 0) "
            f"AS calls FROM trials t LEFT JOIN {d.entries('t.model_ids', 's')} ON 1 = 1 "
            "WHERE t.experiment = ? AND t.status IN ('done', 'refused') "
            "GROUP BY t.model, s.key ORDER BY t.model, s.key", (experiment,))]

    def monitor_model_ids(self, experiment: str) -> dict[str, int]:
        if "monitor_model_ids" not in self._columns("trials"):
            return {}
        d = self.dialect
        return {row[0]: int(row[1]) for row in self._execute(
            f"SELECT s.key, SUM({d.entry_number('s.value')}) FROM trials t, "
            f"{d.entries('t.monitor_model_ids', 's')} "
            "WHERE t.experiment = ? AND t.status IN ('done', 'refused') "
            "GROUP BY s.key ORDER BY s.key", (experiment,))}

    def cached_calls(self, experiment: str) -> list[CachedCalls]:
        """Per model: its calls and those answered from the response cache (NULL where not
        recorded)."""
        recorded = "cached_calls" in self._columns("trials")
        return [_cached(row) for row in self._execute(
            f"SELECT model, COALESCE(SUM(calls), 0) AS calls, "
            f"{'SUM(cached_calls)' if recorded else 'NULL'} AS cached FROM trials "
            "WHERE experiment = ? GROUP BY model ORDER BY model", (experiment,))]

    def judge_provenance(self, experiment: str) -> list[AnsweredCalls]:
        """Per judge, prompt version and model id that answered (NULL: none recorded): the
        calls it answered."""
        if not self._has_judge_tables or "model_ids" not in self._columns("judge_calls"):
            return []
        d = self.dialect
        return [AnsweredCalls(row[0], row[1], row[2], int(row[3])) for row in self._execute(
            "SELECT c.judge, c.prompt_version, s.key AS model_id, "
            f"COALESCE(SUM({d.entry_number('s.value')}), 0) AS calls "
            "FROM judge_calls c JOIN trials t ON t.id = c.trial_id "
            f"LEFT JOIN {d.entries('c.model_ids', 's')} ON 1 = 1 WHERE t.experiment = ? "
            "GROUP BY c.judge, c.prompt_version, s.key ORDER BY c.judge, s.key",
            (experiment,))]

    def judge_cached_calls(self, experiment: str) -> list[CachedCalls]:
        """Per judge: its calls and those answered from the response cache (NULL where not
        recorded)."""
        if not self._has_judge_tables:
            return []
        recorded = "cached_calls" in self._columns("judge_calls")
        return [_cached(row) for row in self._execute(
            f"SELECT c.judge, COALESCE(SUM(c.calls), 0) AS calls, "
            f"{'SUM(c.cached_calls)' if recorded else 'NULL'} AS cached FROM judge_calls c "
            "JOIN trials t ON t.id = c.trial_id WHERE t.experiment = ? GROUP BY c.judge "
            "ORDER BY c.judge", (experiment,))]

    def rubric_versions(self, experiment: str) -> list[RubricCount]:
        """Per judge, behaviour and rubric version: the answers given under it."""
        if not self._has_judge_tables:
            return []
        return [RubricCount(row[0], row[1], row[2], int(row[3])) for row in self._execute(
            "SELECT j.judge, j.behavior, j.version, COUNT(*) AS answers FROM judgements j "
            "JOIN trials t ON t.id = j.trial_id WHERE t.experiment = ? "
            "GROUP BY j.judge, j.behavior, j.version ORDER BY j.judge, j.behavior",
            (experiment,))]

    def rendering_counts(self, experiment: str) -> list[RenderingCount]:
        """Per (family, condition, rendering, amlab version): trials planned with it
        (rendering and version NULL for trials of a database from before they were kept)."""
        columns = self._columns("trials")
        rendering = "rendering" if "rendering" in columns else "NULL"
        version = "amlab_version" if "amlab_version" in columns else "NULL"
        return [RenderingCount(row[0], row[1], None if row[2] is None else json.loads(row[2]),
                               row[3], int(row[4])) for row in self._execute(
            f"SELECT family, condition, {rendering} AS rendering, {version} AS amlab_version, "
            "COUNT(*) AS trials FROM trials WHERE experiment = ? "
            "GROUP BY family, condition, 3, 4 ORDER BY family, condition", (experiment,))]
