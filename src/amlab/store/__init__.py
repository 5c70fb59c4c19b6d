"""Persistence of trials, transcripts and verdicts; resume; queries."""

from amlab.store.sqlite import PlannedTrial, Store, TrialKey

__all__ = ["PlannedTrial", "Store", "TrialKey"]
