"""Re-judging a stored run: the current detectors and the named judges read each finished
trial's stored transcript again; no agent model is called.

The trial's verdicts are replaced by the new ones (each carries its method, version and
judge), the replaced rows are kept in `superseded_verdicts`, and every judge call is added
to `judge_calls`/`judgements` next to the earlier ones.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from amlab.detect import TrialView
from amlab.detect.judge import DEFAULT_ATTEMPTS, decide
from amlab.errors import AmlabError
from amlab.families import load_family
from amlab.models import ModelClient
from amlab.run.experiment import surface_seed
from amlab.scenario import Family, RenderedScenario
from amlab.store import Store, StoredTrial


@dataclass
class RejudgeSummary:
    trials: int = 0
    # Behaviour -> trials whose value changed.
    changed: Counter[str] = field(default_factory=Counter)


class _Scenarios:
    """Each stored trial's family and rendered condition, loaded once."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.families: dict[tuple[str, str], Family] = {}
        self.rendered: dict[tuple[str, str, str], RenderedScenario] = {}

    def family(self, experiment: str, name: str) -> Family:
        if (experiment, name) not in self.families:
            spec = self.store.experiment_spec(experiment) or {}
            sources = [s["family"] for s in spec.get("scenarios", [])] or [name]
            for source in sources:
                family = load_family(source)
                self.families[(experiment, family.name)] = family
            if (experiment, name) not in self.families:
                raise AmlabError(f"{self.store.path}: trials of experiment '{experiment}' use "
                                 f"family '{name}', which its stored experiment does not list.")
        return self.families[(experiment, name)]

    def scenario(self, row: StoredTrial) -> RenderedScenario:
        family = self.family(row.experiment, row.family)
        levels = {k: v for k, v in row.factors.items() if k in family.spec.factors}
        if family.seeded(levels):
            # Drawn per trial: the same draw as when it ran.
            spec = self.store.experiment_spec(row.experiment) or {}
            return family.render(levels, surface_seed(int(spec.get("seed", 0)), family.name,
                                                      row.sample))
        key = (row.experiment, row.family, row.condition)
        if key not in self.rendered:
            self.rendered[key] = family.render(levels)
        return self.rendered[key]


def stored_view(row: StoredTrial) -> TrialView:
    return TrialView(row.actions, row.messages)


async def rejudge(store: Store, judges: list[ModelClient], experiment: str | None = None, *,
                  attempts: int = DEFAULT_ATTEMPTS, concurrency: int = 4,
                  on_trial_done: Callable[[], None] | None = None) -> RejudgeSummary:
    """Decide every finished trial again with the current detectors and `judges`."""
    rows = list(store.trials(experiment, status="done"))
    scenarios = _Scenarios(store)
    summary = RejudgeSummary()
    limit = asyncio.Semaphore(concurrency)

    async def one(row: StoredTrial) -> None:
        async with limit:
            scenario = scenarios.scenario(row)
            detectors = scenarios.family(row.experiment, row.family).spec.detectors
            verdicts, calls = await decide(stored_view(row), scenario.facts, detectors,
                                           judges, attempts=attempts)
            before = store.verdicts_of(row.id)
            store.replace_verdicts(row.id, verdicts, calls)
        summary.trials += 1
        summary.changed.update(b for b, v in verdicts.items()
                               if b in before and before[b].value != v.value)
        if on_trial_done:
            on_trial_done()

    await asyncio.gather(*(one(row) for row in rows))
    return summary
