"""Persistence of trials, transcripts and verdicts; resume; queries."""

from amlab.store.sqlite import Claim, PlannedTrial, Store, TrialKey

__all__ = ["Claim", "PlannedTrial", "Store", "TrialKey"]
