"""Persistence of trials, transcripts and verdicts; resume; queries. The protocols and the
typed records every store shares are in `amlab.store.interface`; `Store` is SQLite's."""

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
from amlab.store.sqlite import Store

__all__ = ["Claim", "OutcomeWriter", "PlannedTrial", "ResultReader", "ResultStore", "Store",
           "StoredTrial", "TrialKey", "TrialRecord", "require_experiment"]
