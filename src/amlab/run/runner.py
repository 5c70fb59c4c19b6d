"""Runs an experiment's trials against the store: plan, skip what is finished, run the rest
with per-model concurrency, detect, persist each outcome as it completes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from amlab import __version__
from amlab.agent import run_agent
from amlab.agent.labels import ToolLabels
from amlab.agent.monitor import Monitor
from amlab.detect import TrialView
from amlab.detect.judge import decide
from amlab.errors import AmlabError
from amlab.models import ModelCallError, ModelClient
from amlab.models.cache import cache_path_for
from amlab.models.pool import ClientPool
from amlab.models.providers import capabilities_of
from amlab.monitor import HarmOracle, ModelDecider, OversightMonitor, RuleDecider, default_rubric
from amlab.monitor.monitors import Decider
from amlab.run.clients import build_roles
from amlab.run.experiment import Experiment
from amlab.scenario import RenderedScenario
from amlab.store import Claim, PlannedTrial, Store, TrialKey

ProgressCallback = Callable[[PlannedTrial, str], None]


# How often a run looks again at trials another live run holds (it takes them over if
# that run dies; otherwise it waits for their outcome).
HELD_TRIAL_POLL_SECONDS = 1.0


@dataclass
class RunSummary:
    planned: int
    skipped: int
    statuses: dict[str, int] = field(default_factory=dict)
    # Trials that another run on the same database attempted while this one ran.
    elsewhere: int = 0


def check_resumable(experiment: Experiment, store: Store, resume: bool) -> None:
    stored = store.experiment_spec(experiment.spec.name)
    if stored is None:
        return
    if not resume:
        raise _already_stored(experiment, store)
    if not experiment.same_as_stored(stored):
        if experiment.as_dict().get("hypotheses") != stored.get("hypotheses", []):
            # Declared before the first trial: changing them after seeing results would
            # turn exploratory findings into confirmatory ones.
            raise AmlabError(f"{experiment.source}: its hypotheses differ from those stored "
                             f"with experiment '{experiment.spec.name}' in {store.path}; "
                             f"hypotheses are fixed before the first trial, so resume with "
                             f"the stored ones, or run under another name.")
        raise AmlabError(f"{experiment.source}: differs from the experiment "
                         f"'{experiment.spec.name}' stored in {store.path}; resume only an "
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
            raise AmlabError(f"{store.path}: condition {condition} of family '{family}' "
                             f"renders differently today than when experiment "
                             f"'{experiment.spec.name}' was stored ({', '.join(changed)} "
                             f"changed); resume only with the same texts, or run it under "
                             f"another name.")


def _already_stored(experiment: Experiment, store: Store) -> AmlabError:
    return AmlabError(f"{store.path}: experiment '{experiment.spec.name}' is already stored "
                      f"there; add --resume to continue it, or choose another name or --db.")


async def run_experiment(
    experiment: Experiment,
    store: Store,
    *,
    resume: bool = False,
    on_trial_done: ProgressCallback | None = None,
    clients: dict[str, ModelClient] | None = None,
    cache: bool = True,
) -> RunSummary:
    """Run every unfinished trial. `clients` overrides model construction (for tests);
    `cache=False` asks the providers again instead of the response cache."""
    check_resumable(experiment, store, resume)
    async with ClientPool(cache_path_for(store.path) if cache else None, experiment.base_dir,
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
        runner = _Runner(experiment, store, on_trial_done, summary, roles.judges, roles.monitor,
                         unfinished)
        with store.leases():
            await asyncio.gather(*(
                runner.run_model(roles.agents[name], [t for t in todo if t.key.model == name],
                                 workers(name, experiment.model(name).concurrency))
                for name in {t.key.model for t in todo}))
    return summary


# Enough of an exception's text to say what went wrong, not a copy of a hostile payload.
MAX_FAILURE_TEXT = 300


def trial_failure(stage: str, exc: BaseException) -> str:
    """The stored reason of a trial that failed outside a model call."""
    detail = str(exc)
    if len(detail) > MAX_FAILURE_TEXT:
        detail = detail[:MAX_FAILURE_TEXT] + "…"
    return f"{stage} failed: {type(exc).__name__}" + (f": {detail}" if detail else "")


def workers(model: str, concurrency: int) -> int:
    """How many trials of a model run at once. An in-process model computes one call at a
    time anyway, and interleaved trials would evict each other's evaluated prompt prefix, so
    its trials run one after another, in the order planned (samples of a condition together)."""
    return 1 if capabilities_of(model).serial else concurrency


class _Runner:
    def __init__(self, experiment: Experiment, store: Store,
                 on_trial_done: ProgressCallback | None, summary: RunSummary,
                 judges: list[ModelClient], monitor_client: ModelClient | None,
                 attempts: dict[TrialKey, int]) -> None:
        self.experiment = experiment
        # Each unfinished trial's attempts when the run started: its claim compares them.
        self.attempts = attempts
        self.judges = judges
        self.store = store
        self.on_trial_done = on_trial_done
        self.summary = summary
        self.monitor_client = monitor_client

    def scenario(self, trial: PlannedTrial) -> RenderedScenario:
        """The condition's rendering, made once; each trial gets its own copy of the world."""
        return self.experiment.rendered(trial)

    def monitor(self, trial: PlannedTrial, scenario: RenderedScenario) -> Monitor | None:
        spec = self.experiment.spec.monitor
        if spec is None or trial.factors.get("monitor", "none") == "none":
            return None
        detectors = self.experiment.families[trial.key.family].spec.detectors
        oracle = HarmOracle.for_family(detectors, scenario.facts)
        decider: Decider = RuleDecider()
        if self.monitor_client:
            rubric = self.experiment.monitor_rubric
            if rubric is None:
                rubric = default_rubric()
            decider = ModelDecider(self.monitor_client, rubric,
                                   trial.factors.get("monitor_sees_reasoning") == "true",
                                   spec.on_error)
        return OversightMonitor(spec.label, decider, oracle)

    async def run_model(self, client: ModelClient, trials: list[PlannedTrial],
                        concurrency: int) -> None:
        queue = list(reversed(trials))
        held: list[PlannedTrial] = []  # another live run holds their lease

        async def worker() -> None:
            while queue or held:
                if not queue:
                    await asyncio.sleep(HELD_TRIAL_POLL_SECONDS)
                    queue.extend(reversed(held))
                    held.clear()
                    continue
                trial = queue.pop()
                claim = self.store.claim(trial.key, self.attempts[trial.key])
                if claim is Claim.CLAIMED:
                    await self.run_trial(client, trial)
                elif claim is Claim.HELD_ELSEWHERE:
                    held.append(trial)
                else:
                    self.summary.elsewhere += 1
                    if self.on_trial_done:
                        self.on_trial_done(trial, "by another run")

        await asyncio.gather(*(worker() for _ in range(min(concurrency, len(trials)))))

    async def run_trial(self, client: ModelClient, trial: PlannedTrial) -> None:
        scenario = self.scenario(trial)
        world = scenario.world.copy()
        started = time.time()
        spec = self.experiment.spec
        config = spec.agent.config(trial.seed, *([spec.monitor.block_message]
                                                 if spec.monitor else []))
        # What the agent writes is hostile: whatever the world, the monitor, a detector or a
        # judge then raise ends this trial as an error with its reason; the run goes on.
        stage = "the agent loop (world or monitor)"
        try:
            transcript = await run_agent(client, world, scenario.system_prompt,
                                         scenario.user_prompt, config, trial.key.sample,
                                         tools_described=scenario.tools_described,
                                         monitor=self.monitor(trial, scenario),
                                         tool_labels=ToolLabels(scenario.tool_labels))
            stage = "the detectors or judges"
            detectors = self.experiment.families[trial.key.family].spec.detectors
            view = TrialView(tuple(transcript.actions), tuple(transcript.messages))
            verdicts, judge_calls = await decide(view, scenario.facts, detectors, self.judges,
                                                 attempts=self.experiment.spec.judge_attempts)
        except ModelCallError as exc:
            self._finish(trial, "error")
            self.store.save_error(trial.key, f"model call failed: {exc}", started, exc.usage,
                                  exc.monitor_usage)
            return
        except Exception as exc:  # any failure is this trial's, reported
            self._finish(trial, "error")
            self.store.save_error(trial.key, trial_failure(stage, exc), started)
            return
        self.store.save_result(trial.key, transcript, verdicts, started, judge_calls)
        self._finish(trial, "refused" if transcript.stop_reason == "refused" else "done")

    def _finish(self, trial: PlannedTrial, status: str) -> None:
        self.summary.statuses[status] = self.summary.statuses.get(status, 0) + 1
        if self.on_trial_done:
            self.on_trial_done(trial, status)
