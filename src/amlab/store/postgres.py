"""PostgreSQL, the shared store: runs on several machines and any number of readers on one
server. The statements are the SQL core's (`store/sql.py`) in PostgreSQL's dialect; psycopg
3 (`pip install 'amlab[postgres]'`) is imported only when such a store is opened.

A location is `postgresql://USER@HOST:PORT/DBNAME` (libpq's URL; `?options=...` and the
other libpq parameters pass through). The password never appears in it: libpq reads it
from PGPASSWORD or a pgpass file (~/.pgpass), so it is neither stored nor printed.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from amlab.errors import AmlabError
from amlab.models.cache import CACHE_FILE
from amlab.store.sql import AMLAB_TABLES, Dialect, Rows, Store

if TYPE_CHECKING:
    import psycopg

SCHEMES = ("postgresql://", "postgres://")
# Any number, the same for every amlab: two runs creating one schema take turns on it.
_SCHEMA_LOCK = 0x616D6C6162


def is_postgres(location: str | Path) -> bool:
    return str(location).startswith(SCHEMES)


def _json_path(path: str) -> str:
    return "'{" + ",".join(path.split(".")) + "}'"


class PostgresDialect(Dialect):
    tables_query = ("SELECT table_name FROM information_schema.tables "
                    "WHERE table_schema = current_schema()")
    columns_query = ("SELECT column_name FROM information_schema.columns "
                     "WHERE table_schema = current_schema() AND table_name = ?")
    schema_lock = f"SELECT pg_advisory_xact_lock({_SCHEMA_LOCK})"
    # A serial column: PostgreSQL has no rowid.
    insertion_order = "seq"
    extra_columns = (("verdicts", "seq", "BIGSERIAL"),)

    def sql(self, statement: str) -> str:
        return statement.replace("?", "%s")

    def ddl(self, statement: str) -> str:
        statement = statement.replace("INTEGER PRIMARY KEY", "BIGSERIAL PRIMARY KEY")
        return re.sub(r"\bREAL\b", "DOUBLE PRECISION", re.sub(r"\bINTEGER\b", "BIGINT",
                                                               statement))

    def elements(self, column: str, alias: str) -> str:
        return f"jsonb_array_elements(COALESCE({column}, '[]')::jsonb) AS {alias}(value)"

    def entries(self, column: str, alias: str) -> str:
        return f"jsonb_each_text(COALESCE({column}, '{{}}')::jsonb) AS {alias}(key, value)"

    def entry_number(self, value: str) -> str:
        return f"CAST({value} AS BIGINT)"

    def json_text(self, value: str, path: str) -> str:
        return f"(({value})::jsonb #>> {_json_path(path)})"

    def json_number(self, value: str, path: str) -> str:
        return f"CAST({self.json_text(value, path)} AS BIGINT)"

    def json_flag(self, value: str, path: str) -> str:
        return f"(CASE {self.json_text(value, path)} WHEN 'true' THEN 1 WHEN 'false' THEN 0 END)"

    def json_length(self, value: str, path: str) -> str:
        return f"jsonb_array_length(({value})::jsonb #> {_json_path(path)})"

    def json_type(self, value: str, path: str) -> str:
        return f"jsonb_typeof(({value})::jsonb #> {_json_path(path)})"


class _Row(tuple[Any, ...]):
    """A row read by position or by column name, as the core reads sqlite3.Row."""

    names: dict[str, int]

    def __getitem__(self, key: Any) -> Any:
        return super().__getitem__(self.names[key] if isinstance(key, str) else key)


def _row_factory(cursor: Any) -> Any:
    names = {column.name: i for i, column in enumerate(cursor.description or ())}

    def make(values: Sequence[Any]) -> _Row:
        row = _Row(values)
        row.names = names
        return row
    return make


def _psycopg() -> Any:
    try:
        import psycopg
    except ImportError:
        raise AmlabError("a postgresql:// database needs psycopg; install it with "
                         "pip install 'amlab[postgres]'.") from None
    return psycopg


def check_location(url: str) -> None:
    """Refuse a location holding a password: it would be stored with commands and shown."""
    parts = urlsplit(url)
    if parts.password is not None or "password" in parse_qs(parts.query):
        shown = re.sub(r"(//[^:/@]*):[^@]*@", r"\1:***@", re.sub(r"password=[^&]*",
                                                                 "password=***", url))
        raise AmlabError(f"{shown}: a --db URL must not hold a password (it would be shown in "
                         f"messages and shell histories); put it in the PGPASSWORD environment "
                         f"variable or a pgpass file (~/.pgpass) and name only "
                         f"postgresql://USER@HOST/DB.")


class _SideConnection:
    def __init__(self, connection: psycopg.Connection[Any]) -> None:
        self.db = connection

    def execute_committed(self, sql: str, args: Sequence[Any]) -> None:
        self.db.execute(sql, args)  # autocommit: every statement commits

    def close(self) -> None:
        self.db.close()


class PostgresStore(Store):
    """The PostgreSQL store: implements `amlab.store.interface.ResultStore`. Its tables are
    in the database's current schema (choose one with `?options=-csearch_path%3DNAME`)."""

    dialect = PostgresDialect()

    @classmethod
    def opens(cls, location: str | Path) -> bool:
        return is_postgres(location)

    def __init__(self, location: str | Path, *, read_only: bool = False,
                 verify: bool = True) -> None:
        super().__init__(location)
        url = str(location)
        check_location(url)
        self.url = url
        self.db = self._connect()
        try:
            if read_only:
                self.db.execute("SET default_transaction_read_only = on")
                if not self._tables() >= AMLAB_TABLES:
                    raise AmlabError(f"{url}: holds no amlab results; run an experiment into "
                                     f"it first (amlab run EXPERIMENT.yaml --db {url}).")
            else:
                self._upgrade()
        except AmlabError:
            self.db.close()
            raise
        except _psycopg().Error as exc:
            self.db.close()
            raise AmlabError(f"{url}: cannot be used as a results database "
                             f"({str(exc).strip().splitlines()[0]}).") from None

    def _connect(self) -> psycopg.Connection[Any]:
        driver = _psycopg()
        try:
            connection: psycopg.Connection[Any] = driver.connect(
                self.url, autocommit=True, row_factory=_row_factory,
                application_name="amlab")
        except driver.Error as exc:
            problem = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc)
            raise AmlabError(f"{self.url}: cannot connect ({problem}); check the server, the "
                             f"user, and the password in PGPASSWORD or ~/.pgpass.") from None
        return connection

    def _execute(self, sql: str, args: Sequence[Any] = ()) -> Rows:
        return self.db.execute(self.dialect.sql(sql), args)

    def _execute_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        with self.db.cursor() as cursor:
            cursor.executemany(self.dialect.sql(sql), rows)

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        with self.db.transaction():
            yield

    def _side_connection(self) -> _SideConnection:
        return _SideConnection(self._connect())

    def close(self) -> None:
        self.db.close()

    @property
    def location(self) -> str:
        return self.url

    def revision(self) -> tuple[float, ...]:
        """Every outcome stamps `finished` and every verdict written takes a new `seq`;
        planning adds trials, re-judging adds judge calls."""
        row = self._execute(
            "SELECT (SELECT COUNT(*) FROM trials), (SELECT MAX(finished) FROM trials), "
            "(SELECT MAX(seq) FROM verdicts), (SELECT COUNT(*) FROM judge_calls)").fetchone()
        return tuple(float(value or 0) for value in row)

    def response_cache(self) -> Path:
        """One cache per database, in this user's cache folder."""
        parts = urlsplit(self.url)
        name = re.sub(r"[^A-Za-z0-9._-]+", "_",
                      f"{parts.hostname or 'local'}-{parts.port or 5432}{parts.path}")
        home = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
        return home / "amlab" / f"postgresql-{name}" / CACHE_FILE
