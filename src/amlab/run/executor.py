"""The executor seam: planning yields `TrialSpec`s, an executor runs each through
`TrialRunner.run_trial` (render, agent loop, monitor, detectors, judges: everything but
persistence) and hands every `TrialResult` back to the coordinator, which alone writes the
store. `AsyncioExecutor`, the default, runs the trials in this process's event loop with
each model's concurrency. docs/adding-an-executor.md says what another executor must keep.
"""

from __future__ import annotations

import asyncio
import enum
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from amlab.agent import run_agent
from amlab.agent.labels import ToolLabels
from amlab.agent.monitor import Monitor
from amlab.detect import TrialView
from amlab.detect.judge import decide
from amlab.models import ModelCallError, ModelClient
from amlab.monitor import HarmOracle, ModelDecider, OversightMonitor, RuleDecider, default_rubric
from amlab.monitor.monitors import Decider
from amlab.records import JudgeCall, Transcript, Usage, Verdict
from amlab.run.experiment import Experiment
from amlab.run.trial import TrialSpec
from amlab.scenario import RenderedScenario

# How often a run looks again at trials another live run holds (it takes them over if
# that run dies; otherwise it waits for their outcome).
HELD_TRIAL_POLL_SECONDS = 1.0

# Enough of an exception's text to say what went wrong, not a copy of a hostile payload.
MAX_FAILURE_TEXT = 300

TrialStatus = Literal["done", "refused", "error"]


@dataclass(frozen=True)
class TrialResult:
    """What running one trial produced, for the coordinator to store: a transcript with its
    verdicts and judge calls, or the reason it failed with the usage spent until then."""

    spec: TrialSpec
    started: float
    transcript: Transcript | None = None
    verdicts: dict[str, Verdict] = field(default_factory=dict)
    judge_calls: list[JudgeCall] = field(default_factory=list)
    error: str | None = None
    usage: Usage | None = None
    monitor_usage: Usage | None = None

    @property
    def status(self) -> TrialStatus:
        if self.transcript is None:
            return "error"
        return "refused" if self.transcript.stop_reason == "refused" else "done"


def trial_failure(stage: str, exc: BaseException) -> str:
    """The stored reason of a trial that failed outside a model call."""
    detail = str(exc)
    if len(detail) > MAX_FAILURE_TEXT:
        detail = detail[:MAX_FAILURE_TEXT] + "…"
    return f"{stage} failed: {type(exc).__name__}" + (f": {detail}" if detail else "")


class TrialRunner:
    """Runs one trial of an experiment with the run's clients (agents by model name, the
    judges, a model monitor's). Writes nothing: its result goes back to the coordinator."""

    def __init__(self, experiment: Experiment, agents: dict[str, ModelClient],
                 judges: list[ModelClient], monitor_client: ModelClient | None) -> None:
        self.experiment = experiment
        self.agents = agents
        self.judges = judges
        self.monitor_client = monitor_client

    def monitor(self, spec: TrialSpec, scenario: RenderedScenario) -> Monitor | None:
        monitor_spec = self.experiment.spec.monitor
        arms = spec.trial.arms
        if monitor_spec is None or not arms.watched:
            return None
        detectors = self.experiment.families[spec.trial.family].spec.detectors
        oracle = HarmOracle.for_family(detectors, scenario.facts)
        decider: Decider = RuleDecider()
        if self.monitor_client:
            rubric = self.experiment.monitor_rubric
            if rubric is None:
                rubric = default_rubric()
            decider = ModelDecider(self.monitor_client, rubric, arms.sees_reasoning is True,
                                   monitor_spec.on_error)
        return OversightMonitor(monitor_spec.label, decider, oracle)

    async def run_trial(self, spec: TrialSpec) -> TrialResult:
        scenario = self.experiment.rendered(spec.trial)
        world = scenario.world.copy()  # each trial gets its own copy of the world
        started = time.time()
        settings = self.experiment.spec
        config = settings.agent.config(spec.seed, *([settings.monitor.block_message]
                                                    if settings.monitor else []))
        # What the agent writes is hostile: whatever the world, the monitor, a detector or a
        # judge then raise ends this trial as an error with its reason; the run goes on.
        stage = "the agent loop (world or monitor)"
        try:
            transcript = await run_agent(self.agents[spec.trial.model], world,
                                         scenario.system_prompt, scenario.user_prompt, config,
                                         spec.trial.sample,
                                         tools_described=scenario.tools_described,
                                         monitor=self.monitor(spec, scenario),
                                         tool_labels=ToolLabels(scenario.tool_labels))
            stage = "the detectors or judges"
            detectors = self.experiment.families[spec.trial.family].spec.detectors
            view = TrialView(tuple(transcript.actions), tuple(transcript.messages))
            verdicts, judge_calls = await decide(view, scenario.facts, detectors, self.judges,
                                                 attempts=settings.judge_attempts)
        except ModelCallError as exc:
            return TrialResult(spec, started, error=f"model call failed: {exc}",
                               usage=exc.usage, monitor_usage=exc.monitor_usage)
        except Exception as exc:  # any failure is this trial's, reported
            return TrialResult(spec, started, error=trial_failure(stage, exc))
        return TrialResult(spec, started, transcript, verdicts, judge_calls)


class Admission(enum.Enum):
    """The coordinator's answer to an executor asking to start a trial."""

    RUN = "run"  # claimed for this run: run it now
    WAIT = "wait"  # another live run holds it: ask again later (it is ours if that run dies)
    DROP = "drop"  # attempted by another run, or a rule of this run (budget, stopping) says no


class Coordinator(Protocol):
    """The one writer of the store. An executor claims each trial here before running it
    and records its result here after; it never writes the store itself."""

    def claim(self, spec: TrialSpec) -> Admission:
        """RUN: run it now. WAIT: ask again later. DROP: leave it."""
        ...

    def record(self, result: TrialResult) -> None:
        """Store a claimed trial's outcome."""
        ...


class TrialFunction(Protocol):
    async def __call__(self, spec: TrialSpec) -> TrialResult: ...


@dataclass(frozen=True)
class Lane:
    """The trials of one model, in the order planned, and how many may run at once."""

    model: str
    trials: Sequence[TrialSpec]
    concurrency: int


class Executor(Protocol):
    async def execute(self, lanes: Sequence[Lane], run_trial: TrialFunction,
                      coordinator: Coordinator) -> None:
        """Run every trial of `lanes` that `coordinator.claim` grants, within each lane's
        concurrency, handing each result to `coordinator.record`; return when every trial is
        recorded or dropped."""
        ...


class AsyncioExecutor:
    """The default: every lane in this process's event loop, `concurrency` workers each,
    taking the lane's trials in order (samples of a condition together share a prompt
    prefix); a trial another live run holds is asked for again every
    `HELD_TRIAL_POLL_SECONDS`."""

    async def execute(self, lanes: Sequence[Lane], run_trial: TrialFunction,
                      coordinator: Coordinator) -> None:
        await asyncio.gather(*(self.run_lane(lane, run_trial, coordinator) for lane in lanes))

    @staticmethod
    async def run_lane(lane: Lane, run_trial: TrialFunction, coordinator: Coordinator) -> None:
        """One lane's trials, `concurrency` at a time (the Ray executor's too, with its own
        `run_trial`: a round trip to a worker actor)."""
        queue = list(reversed(lane.trials))
        held: list[TrialSpec] = []  # another live run holds their lease

        async def worker() -> None:
            while queue or held:
                if not queue:
                    await asyncio.sleep(HELD_TRIAL_POLL_SECONDS)
                    queue.extend(reversed(held))
                    held.clear()
                    continue
                spec = queue.pop()
                admission = coordinator.claim(spec)
                if admission is Admission.RUN:
                    coordinator.record(await run_trial(spec))
                elif admission is Admission.WAIT:
                    held.append(spec)

        await asyncio.gather(*(worker() for _ in range(min(lane.concurrency, len(lane.trials)))))
