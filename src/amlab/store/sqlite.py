"""SQLite, the embedded store: one file (WAL: one writer, many readers), no server. The
statements are the SQL core's (`store/sql.py`), in SQLite's own dialect."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

from amlab.errors import AmlabError
from amlab.models.cache import cache_path_for
from amlab.paths import check_writable
from amlab.store.interface import Claim, PlannedTrial, TrialKey
from amlab.store.sql import AMLAB_TABLES, Rows, Store

__all__ = ["Claim", "PlannedTrial", "SqliteStore", "TrialKey"]


class _SideConnection:
    def __init__(self, path: Path) -> None:
        self.db = sqlite3.connect(path, timeout=30)

    def execute_committed(self, sql: str, args: Sequence[Any]) -> None:
        with self.db:
            self.db.execute(sql, args)

    def close(self) -> None:
        self.db.close()


class SqliteStore(Store):
    """The SQLite store: implements `amlab.store.interface.ResultStore`."""

    @classmethod
    def opens(cls, location: str | Path) -> bool:
        return "://" not in str(location)  # a file path; a URL names a server's store

    def __init__(self, path: Path | str, *, read_only: bool = False,
                 verify: bool = True) -> None:
        """Open a results database. Writing: a new file is created, an existing one must be
        amlab's (or empty) and undamaged, checked before anything is written. Reading: opened
        read-only (immutable when its folder or file cannot be written, e.g. a read-only file
        system); `verify=False` skips the integrity check (the viewer checks once at start)."""
        super().__init__(path)
        self.path = Path(path)
        self.created = False
        if read_only:
            self.db = self._open_read_only(verify)
            return
        check_writable(self.path, folder=False)
        self.created = not self.path.exists()
        if not self.created:
            self._connect_read_only(verify=True).close()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(self.path, timeout=30, check_same_thread=False)
            self.db.row_factory = sqlite3.Row
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self._upgrade()
        except (OSError, sqlite3.DatabaseError) as exc:
            raise AmlabError(f"{self.path}: cannot be written as a results database ({exc}); "
                             f"choose a writable --db.") from None
        except AmlabError:
            self.db.close()
            raise

    def _open_read_only(self, verify: bool) -> sqlite3.Connection:
        if not self.path.is_file():
            raise AmlabError(f"{self.path}: no results database here; run an experiment first "
                             f"(amlab run EXPERIMENT.yaml --db {self.path}).")
        db = self._connect_read_only(verify)
        if not self._tables_of(db) >= AMLAB_TABLES:
            db.close()
            raise AmlabError(f"{self.path}: is not an amlab results database (it has no "
                             f"trials table).")
        return db

    def _connect_read_only(self, verify: bool) -> sqlite3.Connection:
        """A read-only connection that has checked the file is an SQLite database holding
        amlab's tables or none, and (with `verify`) that it is undamaged."""
        # A WAL database needs its folder writable even to be read; where it is not (a
        # read-only file system), read the file as it is, which is all a reader wants.
        writable = os.access(self.path, os.W_OK) and os.access(self.path.parent, os.W_OK)
        mode = "ro" if writable else "ro&immutable=1"
        try:
            db = sqlite3.connect(f"file:{quote(str(self.path.resolve()))}?mode={mode}",
                                 uri=True, check_same_thread=False)
        except sqlite3.DatabaseError as exc:
            raise AmlabError(f"{self.path}: cannot be opened ({exc}).") from None
        db.row_factory = sqlite3.Row
        try:
            tables = self._tables_of(db)
            if verify:
                problem = db.execute("PRAGMA quick_check").fetchone()[0]
                if problem != "ok":
                    raise sqlite3.DatabaseError(problem)
        except sqlite3.DatabaseError as exc:
            db.close()
            raise AmlabError(f"{self.path}: is damaged or not an SQLite database ({exc}); "
                             f"nothing was written to it.") from None
        if tables and not tables >= AMLAB_TABLES:
            db.close()
            raise AmlabError(f"{self.path}: is not an amlab results database (its tables are "
                             f"{', '.join(sorted(tables))}); nothing was written to it, "
                             f"choose another --db.")
        return db

    def _tables_of(self, db: sqlite3.Connection) -> set[str]:
        return {row[0] for row in db.execute(self.dialect.tables_query)}

    def _execute(self, sql: str, args: Sequence[Any] = ()) -> Rows:
        return self.db.execute(sql, args)

    def _execute_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self.db.executemany(sql, rows)

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        with self.db:
            yield

    def _side_connection(self) -> _SideConnection:
        return _SideConnection(self.path)

    def discard_if_unused(self) -> None:
        """Close, and delete the file if this Store created it and nothing was planned in it
        (a run that stopped before its first trial leaves no empty database behind)."""
        unused = self.created and not self.experiments()
        self.close()
        if unused:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{self.path}{suffix}").unlink(missing_ok=True)

    def close(self) -> None:
        self.db.close()

    @property
    def location(self) -> str:
        return str(self.path)

    def response_cache(self) -> Path:
        return cache_path_for(self.path)

    def revision(self) -> tuple[float, ...]:
        """The size and modification time of the file and its WAL: every commit changes one
        of them, and reading them costs no query."""
        stats = [p.stat() for p in (self.path, self.path.with_name(self.path.name + "-wal"))
                 if p.exists()]
        return tuple(n for st in stats for n in (st.st_mtime_ns, st.st_size))
