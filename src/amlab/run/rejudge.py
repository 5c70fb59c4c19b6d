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
from amlab.run.experiment import render_trial, stored_spec
from amlab.run.trial import Trial
from amlab.scenario import Family, RenderedScenario
from amlab.store import Store, StoredTrial, TrialKey


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
        self.rendered: dict[tuple[str, ...], RenderedScenario] = {}
        self.seeds: dict[str, int] = {}

    def family(self, experiment: str, name: str) -> Family:
        if (experiment, name) not in self.families:
            spec = stored_spec(self.store, experiment)
            self.seeds[experiment] = spec.seed if spec else 0
            sources = [s.family for s in spec.scenarios] if spec else [name]
            for source in sources:
                family = load_family(source)
                self.families[(experiment, family.name)] = family
            if (experiment, name) not in self.families:
                raise AmlabError(f"{self.store.location}: trials of experiment '{experiment}' use "
                                 f"family '{name}', which its stored experiment does not list.")
        return self.families[(experiment, name)]

    def scenario(self, trial: Trial) -> RenderedScenario:
        """The trial's condition as the agent read it (`render_trial`: a per-trial draw is
        drawn again with the trial's seed)."""
        family = self.family(trial.experiment, trial.family)
        return render_trial(family, trial, self.seeds[trial.experiment], self.rendered,
                            (trial.experiment, trial.family, trial.family_key))


def stored_trial(row: StoredTrial) -> Trial:
    return Trial.from_stored(TrialKey(row.experiment, row.family, row.condition, row.model,
                                      row.sample), row.factors)


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
            trial = stored_trial(row)
            scenario = scenarios.scenario(trial)
            detectors = scenarios.family(trial.experiment, trial.family).spec.detectors
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
