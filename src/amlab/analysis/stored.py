"""Which stored experiments a reader asked for: the one check every command and the report
make before reading a database."""

from __future__ import annotations

from amlab.errors import AmlabError
from amlab.store import Store


def stored_experiments(store: Store, experiment: str | None = None) -> list[str]:
    """[`experiment`] when `store` holds it, every stored experiment when it is None; a
    name the database does not hold is one sentence naming the ones it does."""
    names = store.experiments()
    if experiment is None:
        return names
    if experiment not in names:
        raise AmlabError(f"{store.path}: has no experiment '{experiment}'; it has "
                         f"{', '.join(names) or 'none'}.")
    return [experiment]
