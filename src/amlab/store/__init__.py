"""Persistence of trials, transcripts and verdicts; resume; queries. The protocols and the
typed records every store shares are in `amlab.store.interface`. `Store(location)` (or
`open_store`) opens SQLite's store (a file path) or PostgreSQL's (a `postgresql://` URL):
one SQL core (`amlab.store.sql`) in two dialects."""

from pathlib import Path

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
from amlab.store.sql import Store


def open_store(location: str | Path, *, read_only: bool = False, verify: bool = True) -> Store:
    """The store at `location`: `Store(location, ...)`, named for what it does."""
    return Store(location, read_only=read_only, verify=verify)


__all__ = ["Claim", "OutcomeWriter", "PlannedTrial", "ResultReader", "ResultStore", "Store",
           "StoredTrial", "TrialKey", "TrialRecord", "open_store", "require_experiment"]
