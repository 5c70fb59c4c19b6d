"""Persistence of trials, transcripts and verdicts; resume; queries. The protocols and the
typed records every store shares are in `amlab.store.interface`. `Store(location)` (or
`open_store`) opens SQLite's store (a file path) or PostgreSQL's (a `postgresql://` URL):
one SQL core (`amlab.store.sql`) in two dialects."""

from pathlib import Path
from urllib.parse import urlsplit

from amlab.store.interface import (
    Claim,
    OutcomeWriter,
    PlannedTrial,
    ResultReader,
    ResultStore,
    StoredTrial,
    TrialKey,
    TrialRecord,
    require_experiment,
)
from amlab.store.postgres import is_postgres
from amlab.store.sql import Store
from amlab.store.sqlite import SqliteStore


def named_after(location: str | Path, suffix: str) -> Path:
    """An output named after a store (`-report`, `.csv`): beside an SQLite file, or for a
    server database in the current folder under the database's name."""
    if is_postgres(location):
        stem = Path(urlsplit(str(location)).path.strip("/") or "amlab")
    else:
        stem = Path(location).with_suffix("")
    return stem.with_name(stem.name + suffix)


def open_store(location: str | Path, *, read_only: bool = False, verify: bool = True) -> Store:
    """The store at `location`: `Store(location, ...)`, named for what it does."""
    return Store(location, read_only=read_only, verify=verify)


__all__ = ["Claim", "OutcomeWriter", "PlannedTrial", "ResultReader", "ResultStore",
           "SqliteStore", "Store", "StoredTrial", "TrialKey", "TrialRecord", "named_after",
           "open_store", "require_experiment"]
