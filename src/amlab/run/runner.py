"""Runs an experiment's trials against the store: plan, skip what is finished, run the rest
with per-model concurrency, detect, persist each outcome as it completes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from amlab.agent import run_agent
from amlab.agent.monitor import Monitor
from amlab.detect import TrialView, run_detectors
from amlab.errors import AmlabError
from amlab.models import ModelCallError, ModelClient, make_client
from amlab.models.retry import RetryingClient
from amlab.monitor import HarmOracle, ModelDecider, OversightMonitor, RuleDecider, default_rubric
from amlab.monitor.monitors import Decider
from amlab.run.experiment import Experiment
from amlab.scenario import RenderedScenario, condition_key
from amlab.store import PlannedTrial, Store

ProgressCallback = Callable[[PlannedTrial, str], None]


@dataclass
class RunSummary:
    planned: int
    skipped: int
    statuses: dict[str, int] = field(default_factory=dict)


def check_resumable(experiment: Experiment, store: Store, resume: bool) -> None:
    stored = store.experiment_spec(experiment.spec.name)
    if stored is None:
        return
    if not resume:
        raise AmlabError(f"{store.path}: experiment '{experiment.spec.name}' is already stored "
                         f"there; add --resume to continue it, or choose another name or --db.")
    if stored != experiment.as_dict():
        raise AmlabError(f"{experiment.source}: differs from the experiment "
                         f"'{experiment.spec.name}' stored in {store.path}; resume only an "
                         f"unchanged file, or rename it.")


async def run_experiment(
    experiment: Experiment,
    store: Store,
    *,
    resume: bool = False,
    on_trial_done: ProgressCallback | None = None,
    clients: dict[str, ModelClient] | None = None,
) -> RunSummary:
    """Run every unfinished trial. `clients` overrides model construction (for tests)."""
    check_resumable(experiment, store, resume)
    planned = experiment.trials()
    store.plan(experiment.spec.name, experiment.as_dict(), planned)
    unfinished = store.unfinished(experiment.spec.name)
    todo = [t for t in planned if t.key in unfinished]
    summary = RunSummary(planned=len(planned), skipped=len(planned) - len(todo))
    if not todo:
        return summary
    retry = experiment.spec.retry
    models = {t.key.model for t in todo}
    built = clients or {name: make_client(name, experiment.model(name).options,
                                          experiment.base_dir) for name in models}
    wrapped: dict[str, ModelClient] = {
        name: RetryingClient(built[name], retry.attempts, retry.initial_wait, retry.max_wait)
        for name in models}
    monitor_spec = experiment.spec.monitor
    if monitor_spec and monitor_spec.model:
        monitor_client = (clients or {}).get(monitor_spec.model) or make_client(
            monitor_spec.model, monitor_spec.options, experiment.base_dir)
        wrapped[monitor_spec.model] = RetryingClient(monitor_client, retry.attempts,
                                                     retry.initial_wait, retry.max_wait)
    runner = _Runner(experiment, store, on_trial_done, summary, wrapped)
    try:
        await asyncio.gather(*(
            runner.run_model(wrapped[name], [t for t in todo if t.key.model == name],
                             experiment.model(name).concurrency)
            for name in models))
    finally:
        for client in wrapped.values():
            await client.aclose()
    return summary


class _Runner:
    def __init__(self, experiment: Experiment, store: Store,
                 on_trial_done: ProgressCallback | None, summary: RunSummary,
                 clients: dict[str, ModelClient]) -> None:
        self.experiment = experiment
        self.store = store
        self.on_trial_done = on_trial_done
        self.summary = summary
        self.clients = clients
        self._rendered: dict[tuple[str, str], RenderedScenario] = {}

    def scenario(self, trial: PlannedTrial) -> RenderedScenario:
        """The condition's rendering, made once; each trial gets its own copy of the world.
        Factors that are not the family's (the monitor's) do not change the scenario."""
        family = self.experiment.families[trial.key.family]
        levels = {k: v for k, v in trial.factors.items() if k in family.spec.factors}
        cache_key = (family.name, condition_key(levels))
        if cache_key not in self._rendered:
            self._rendered[cache_key] = family.render(levels)
        return self._rendered[cache_key]

    def monitor(self, trial: PlannedTrial, scenario: RenderedScenario) -> Monitor | None:
        spec = self.experiment.spec.monitor
        if spec is None or trial.factors.get("monitor", "none") == "none":
            return None
        detectors = self.experiment.families[trial.key.family].spec.detectors
        oracle = HarmOracle.for_family(detectors, scenario.facts)
        decider: Decider = RuleDecider()
        if spec.model:
            rubric = (Path(self.experiment.base_dir, spec.rubric).read_text(encoding="utf-8")
                      if spec.rubric else default_rubric())
            decider = ModelDecider(self.clients[spec.model], rubric,
                                   trial.factors.get("monitor_sees_reasoning") == "true",
                                   spec.on_error)
        return OversightMonitor(spec.label, decider, oracle)

    async def run_model(self, client: ModelClient, trials: list[PlannedTrial],
                        concurrency: int) -> None:
        queue = list(reversed(trials))

        async def worker() -> None:
            while queue:
                await self.run_trial(client, queue.pop())

        await asyncio.gather(*(worker() for _ in range(min(concurrency, len(trials)))))

    async def run_trial(self, client: ModelClient, trial: PlannedTrial) -> None:
        scenario = self.scenario(trial)
        world = scenario.world.copy()
        started = time.time()
        spec = self.experiment.spec
        config = spec.agent.config(trial.seed, *([spec.monitor.block_message]
                                                 if spec.monitor else []))
        try:
            transcript = await run_agent(client, world, scenario.system_prompt,
                                         scenario.user_prompt, config, trial.key.sample,
                                         self.monitor(trial, scenario))
        except ModelCallError as exc:
            self._finish(trial, "error")
            self.store.save_error(trial.key, f"model call failed: {exc}", started)
            return
        detectors = self.experiment.families[trial.key.family].spec.detectors
        view = TrialView(tuple(transcript.actions), tuple(transcript.messages))
        verdicts = run_detectors(detectors, view, scenario.facts)
        self.store.save_result(trial.key, transcript, verdicts, started)
        self._finish(trial, "refused" if transcript.stop_reason == "refused" else "done")

    def _finish(self, trial: PlannedTrial, status: str) -> None:
        self.summary.statuses[status] = self.summary.statuses.get(status, 0) + 1
        if self.on_trial_done:
            self.on_trial_done(trial, status)
