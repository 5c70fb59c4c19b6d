"""Which stored experiments a reader asked for: the one check every command and the report
make before reading a database."""

from __future__ import annotations

from amlab.store import Store, require_experiment


def stored_experiments(store: Store, experiment: str | None = None) -> list[str]:
    """[`experiment`] when `store` holds it, every stored experiment when it is None; a
    name the database does not hold is one sentence naming the ones it does."""
    require_experiment(store, experiment)
    return [experiment] if experiment is not None else store.experiments()
