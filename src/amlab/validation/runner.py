"""Running the corpus end to end: each case's scripted turns go through the real agent loop,
world and detectors (and judges when given), exactly as a trial of `amlab run` would."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from amlab.agent import AgentConfig, run_agent
from amlab.agent.labels import ToolLabels
from amlab.detect import TrialView
from amlab.detect.base import DERIVED, DETECTORS
from amlab.detect.judge import decide
from amlab.models import ModelClient
from amlab.models.scripted import ScriptedModel
from amlab.records import Verdict
from amlab.scenario import Family, RenderedScenario
from amlab.validation.corpus import READING, Case, Label
from amlab.validation.metrics import Row, tabulate

# A method that decided a behaviour: "state", "heuristic", or "judge <model>".
MethodName = str


@dataclass(frozen=True)
class CaseResult:
    """What each method decided for each behaviour the case is labelled with; a behaviour
    the family's run does not decide is absent from `decided`."""

    case: Case
    # (behaviour, method) -> the value decided (for eval_awareness: test/real/silent).
    decided: dict[tuple[str, MethodName], Label]
    # Behaviour -> the method of the offline verdict ("state" or "heuristic").
    offline_method: dict[str, MethodName]
    # Judges that gave no usable answer for a behaviour: (behaviour, method).
    judge_errors: frozenset[tuple[str, MethodName]] = frozenset()
    # The offline verdicts themselves, with their evidence.
    verdicts: dict[str, Verdict] = field(default_factory=dict)
    # The world's answers to the calls it refused.
    refused: tuple[str, ...] = ()

    @property
    def broken(self) -> bool:
        """The world refused more calls than the case means it to: a wrong id, address or
        argument, so the case no longer tests what its note says."""
        return len(self.refused) != self.case.refused_calls


def awareness_class(verdict: Verdict) -> Label:
    """What an eval_awareness verdict says the agent believes: `test` when it said it is a
    test; `real` when it said the situation is real (a false verdict that quotes the agent's
    words); `silent` otherwise."""
    if verdict.value:
        return "test"
    return "real" if any(e.quote for e in verdict.evidence) else "silent"


def label_of(verdict: Verdict) -> Label:
    return awareness_class(verdict) if verdict.behavior == "eval_awareness" else verdict.value


class _Scenarios:
    """Each (family, levels) rendered once; every case gets its own copy of the world."""

    def __init__(self) -> None:
        self.families: dict[str, Family] = {}
        self.rendered: dict[tuple[str, str], RenderedScenario] = {}

    def family(self, name: str) -> Family:
        if name not in self.families:
            self.families[name] = Family.load(name)
        return self.families[name]

    def scenario(self, case: Case) -> RenderedScenario:
        family = self.family(case.family)
        levels = family.condition(case.levels)
        key = (family.name, family.key(levels))
        if key not in self.rendered:
            self.rendered[key] = family.render(levels)
        return self.rendered[key]


async def run_case(case: Case, scenarios: _Scenarios, judges: Sequence[ModelClient],
                   judge_names: Sequence[str]) -> CaseResult:
    scenario = scenarios.scenario(case)
    model = ScriptedModel(f"scripted/{case.id}", [[t.as_fixture() for t in case.turns]])
    # One turn more than scripted, so the loop ends the way a real agent's final turn does.
    config = AgentConfig(protocol=case.protocol, max_turns=len(case.turns) + 1)
    transcript = await run_agent(model, scenario.world.copy(), scenario.system_prompt,
                                 scenario.user_prompt, config,
                                 tools_described=scenario.tools_described,
                                 tool_labels=ToolLabels(scenario.tool_labels))
    view = TrialView(tuple(transcript.actions), tuple(transcript.messages))
    detectors = scenarios.family(case.family).spec.detectors
    offline, _ = await decide(view, scenario.facts, detectors, [])
    decided: dict[tuple[str, MethodName], Label] = {}
    methods: dict[str, MethodName] = {}
    for behaviour in case.expect:
        if behaviour in offline:
            verdict = offline[behaviour]
            methods[behaviour] = verdict.method
            decided[(behaviour, verdict.method)] = label_of(verdict)
    errors: set[tuple[str, MethodName]] = set()
    if judges:
        _, calls = await decide(view, scenario.facts, detectors, list(judges))
        for name, call in zip(judge_names, calls, strict=True):
            for judgement in call.judgements:
                if judgement.behavior not in case.expect:
                    continue
                method = f"judge {name}"
                judged = judgement.verdict()
                if judged is None:
                    errors.add((judgement.behavior, method))
                else:
                    decided[(judgement.behavior, method)] = label_of(judged)
    refused = tuple(f"{a.tool}: {a.observation}" for a in transcript.actions if not a.ok)
    return CaseResult(case, decided, methods, frozenset(errors), offline, refused)


async def run_corpus(cases: Sequence[Case], judges: Sequence[ModelClient] = (),
                     judge_names: Sequence[str] = (), *, concurrency: int = 8,
                     on_case_done: Callable[[CaseResult], None] | None = None
                     ) -> list[CaseResult]:
    """Every case through the real pipeline, in corpus order (judges called concurrently)."""
    scenarios = _Scenarios()
    limit = asyncio.Semaphore(concurrency)

    async def one(case: Case) -> CaseResult:
        async with limit:
            result = await run_case(case, scenarios, judges, judge_names)
        if on_case_done:
            on_case_done(result)
        return result

    return list(await asyncio.gather(*(one(case) for case in cases)))


NO_DETECTOR = "no detector"


class Decision(NamedTuple):
    """One labelled behaviour of one case as one method decided it (None: unread)."""

    case_id: str
    behaviour: str
    method: MethodName
    label: Label
    decided: Label | None

    @property
    def wrong(self) -> bool:
        return self.decided is not None and self.decided != self.label


def decisions(results: Sequence[CaseResult], judge_names: Sequence[str] = ()
              ) -> list[Decision]:
    """Each labelled behaviour of each case as decided offline (its state rule or heuristic)
    and by each judge that reads it. A labelled behaviour the case's family run does not
    decide is unread; one no detector decides at all is under the method "no detector"."""
    seen_method = {b: m for r in results for b, m in r.offline_method.items()}
    judged = {b for r in results for (b, m) in [*r.decided, *r.judge_errors]
              if m.startswith("judge ")}
    found: list[Decision] = []
    for result in results:
        case = result.case.id
        for behaviour, label in result.case.expect.items():
            if behaviour not in DETECTORS and behaviour not in DERIVED:
                found.append(Decision(case, behaviour, NO_DETECTOR, label, None))
                continue
            method = result.offline_method.get(behaviour) or seen_method.get(
                behaviour, "heuristic" if behaviour in READING else "state")
            found.append(Decision(case, behaviour, method, label,
                                  result.decided.get((behaviour, method))))
            if behaviour not in judged:
                continue
            for name in judge_names:
                judge = f"judge {name}"
                found.append(Decision(case, behaviour, judge, label,
                                      result.decided.get((behaviour, judge))))
    return found


def corpus_rows(results: Sequence[CaseResult], judge_names: Sequence[str] = ()) -> list[Row]:
    """The table of `amlab validate`: confusion counts per behaviour and method."""
    return tabulate((d.behaviour, d.method, d.label, d.decided)
                    for d in decisions(results, judge_names))
