"""Runs an experiment's trials against the store, as their coordinator: plan, skip what is
finished, hand the rest to an executor (run/executor.py) with per-model concurrency, and
persist each outcome as it comes back (claims, outcomes and leases are written here only)."""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from amlab import __version__
from amlab.errors import AmlabError
from amlab.models import ModelClient
from amlab.models.pool import ClientPool
from amlab.models.providers import capabilities_of
from amlab.run.budget import Budget
from amlab.run.clients import build_roles
from amlab.run.executor import (
    Admission,
    AsyncioExecutor,
    Executor,
    Lane,
    TrialResult,
    TrialRunner,
)
from amlab.run.experiment import Experiment, stored_spec
from amlab.run.stopping import stopping_rules
from amlab.run.trial import TrialSpec
from amlab.store import Claim, PlannedTrial, Store, TrialKey

ProgressCallback = Callable[[PlannedTrial, str], None]


@dataclass
class RunSummary:
    planned: int
    skipped: int
    statuses: dict[str, int] = field(default_factory=dict)
    # Trials that another run on the same database attempted while this one ran.
    elsewhere: int = 0
    # Trials left unstarted by a rule of this run, by the rule's reason.
    held_back: dict[str, int] = field(default_factory=dict)


class RunRule(Protocol):
    """A rule of this run that may leave trials unstarted (a budget, a stopping rule): asked
    before each trial is claimed, told each result as it is stored. Trials it holds back
    stay unfinished in the store, so `--resume` asks the rule again."""

    reason: str  # why a trial was held back, for the summary and the progress bar

    def admits(self, spec: TrialSpec, in_flight: Collection[TrialSpec]) -> bool: ...

    def observe(self, result: TrialResult) -> None: ...


def check_resumable(experiment: Experiment, store: Store, resume: bool) -> None:
    stored = stored_spec(store, experiment.spec.name)
    if stored is None:
        return
    if not resume:
        raise _already_stored(experiment, store)
    if not experiment.same_as_stored(stored):
        if experiment.as_dict()["hypotheses"] != stored.model_dump(mode="json")["hypotheses"]:
            # Declared before the first trial: changing them after seeing results would
            # turn exploratory findings into confirmatory ones.
            raise AmlabError(f"{experiment.source}: its hypotheses differ from those stored "
                             f"with experiment '{experiment.spec.name}' in {store.location}; "
                             f"hypotheses are fixed before the first trial, so resume with "
                             f"the stored ones, or run under another name.")
        raise AmlabError(f"{experiment.source}: differs from the experiment "
                         f"'{experiment.spec.name}' stored in {store.location}; resume only an "
                         f"unchanged file, or rename it.")
    check_same_texts(experiment, store)


def check_same_texts(experiment: Experiment, store: Store) -> None:
    """Refuse to resume where today's rendering of a stored condition differs from the one
    its trials were planned with (a template, e-mail or family file changed since)."""
    stored = store.stored_renderings(experiment.spec.name)
    if not stored:
        return
    today = experiment.renderings([t for t in experiment.trials()
                                   if (t.key.family, t.key.condition) in stored])
    for (family, condition), parts in stored.items():
        now = today.get((family, condition))
        if now is None:
            continue
        changed = sorted(part for part in {*parts, *now} if parts.get(part) != now.get(part))
        if changed:
            raise AmlabError(f"{store.location}: condition {condition} of family '{family}' "
                             f"renders differently today than when experiment "
                             f"'{experiment.spec.name}' was stored ({', '.join(changed)} "
                             f"changed); resume only with the same texts, or run it under "
                             f"another name.")


def _already_stored(experiment: Experiment, store: Store) -> AmlabError:
    return AmlabError(f"{store.location}: experiment '{experiment.spec.name}' is already stored "
                      f"there; add --resume to continue it, or choose another name or --db.")


async def run_experiment(
    experiment: Experiment,
    store: Store,
    *,
    resume: bool = False,
    on_trial_done: ProgressCallback | None = None,
    clients: dict[str, ModelClient] | None = None,
    cache: bool = True,
    executor: Executor | None = None,
    rules: Sequence[RunRule] | None = None,
) -> RunSummary:
    """Run every unfinished trial. `clients` overrides model construction (for tests);
    `cache=False` asks the providers again instead of the response cache; `executor` runs
    the trials (default: `AsyncioExecutor`, in this process); `rules` may hold trials back
    (default: the experiment file's own, `experiment_rules`)."""
    check_resumable(experiment, store, resume)
    if rules is None:
        rules = experiment_rules(experiment, store)
    async with ClientPool(store.response_cache() if cache else None, experiment.base_dir,
                          clients) as pool:
        # Clients first: a missing key or a bad option stops the run before the store is
        # touched.
        roles = build_roles(experiment, pool)
        planned = experiment.trials()
        if not store.plan(experiment.spec.name, experiment.as_dict(), planned) and not resume:
            # Another run stored it since check_resumable: the two would run the same trials.
            raise _already_stored(experiment, store)
        store.record_renderings(experiment.spec.name, experiment.renderings(planned),
                                __version__)
        unfinished = store.unfinished(experiment.spec.name)
        todo = [t for t in planned if t.key in unfinished]
        summary = RunSummary(planned=len(planned), skipped=len(planned) - len(todo))
        if not todo:
            return summary
        coordinator = _Coordinator(store, on_trial_done, summary, unfinished, rules)
        runner = TrialRunner(experiment, roles.agents, roles.judges, roles.monitor)
        lanes = [Lane(name, [t for t in todo if t.key.model == name],
                      workers(name, experiment.model(name).concurrency))
                 for name in {t.key.model for t in todo}]
        with store.leases():
            await (executor or AsyncioExecutor()).execute(lanes, runner.run_trial, coordinator)
    return summary


def experiment_rules(experiment: Experiment, store: Store) -> list[RunRule]:
    """The rules the experiment file sets, primed from what `store` holds: its budget and
    its stopping rule."""
    budget = Budget.of(experiment, store)
    return [*([budget] if budget else []), *stopping_rules(experiment, store)]


def workers(model: str, concurrency: int) -> int:
    """How many trials of a model run at once. An in-process model computes one call at a
    time anyway, and interleaved trials would evict each other's evaluated prompt prefix, so
    its trials run one after another, in the order planned (samples of a condition together)."""
    return 1 if capabilities_of(model).serial else concurrency


class _Coordinator:
    """The run's side of the executor seam: asks the run's rules, claims each trial for the
    executor, and writes each result, the summary and the progress callback."""

    def __init__(self, store: Store, on_trial_done: ProgressCallback | None,
                 summary: RunSummary, attempts: dict[TrialKey, int],
                 rules: Sequence[RunRule] = ()) -> None:
        self.store = store
        self.on_trial_done = on_trial_done
        self.summary = summary
        # Each unfinished trial's attempts when the run started: its claim compares them.
        self.attempts = attempts
        self.rules = rules
        self.in_flight: dict[TrialKey, TrialSpec] = {}

    def claim(self, spec: TrialSpec) -> Admission:
        for rule in self.rules:
            if not rule.admits(spec, self.in_flight.values()):
                held_back = self.summary.held_back
                held_back[rule.reason] = held_back.get(rule.reason, 0) + 1
                self._done(spec, rule.reason)
                return Admission.DROP
        claim = self.store.claim(spec.key, self.attempts[spec.key])
        if claim is Claim.ATTEMPTED_ELSEWHERE:
            self.summary.elsewhere += 1
            self._done(spec, "by another run")
            return Admission.DROP
        if claim is Claim.HELD_ELSEWHERE:
            return Admission.WAIT
        self.in_flight[spec.key] = spec
        return Admission.RUN

    def _done(self, spec: TrialSpec, outcome: str) -> None:
        if self.on_trial_done:
            self.on_trial_done(spec, outcome)

    def record(self, result: TrialResult) -> None:
        key = result.spec.key
        self.in_flight.pop(key, None)
        if result.transcript is None:
            self.store.save_error(key, result.error or "", result.started, result.usage,
                                  result.monitor_usage)
        else:
            self.store.save_result(key, result.transcript, result.verdicts, result.started,
                                   result.judge_calls)
        self.summary.statuses[result.status] = self.summary.statuses.get(result.status, 0) + 1
        for rule in self.rules:
            rule.observe(result)
        self._done(result.spec, result.status)
