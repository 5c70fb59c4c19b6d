"""A trial is one typed thing (run/trial.py), and the executor seam (run/executor.py): an
executor only runs trials; the coordinator alone claims them and writes the store."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Collection, Sequence
from pathlib import Path

from amlab.run import Experiment, run_experiment
from amlab.run.executor import Admission, Coordinator, Lane, TrialFunction, TrialResult
from amlab.run.trial import Arms, Trial, TrialSpec
from amlab.store import Store, TrialKey
from conftest import FIXTURES

BLACKMAILER = f"scripted/{FIXTURES / 'blackmailer'}"


def monitored(monitor: dict[str, object]) -> Experiment:
    return Experiment.from_dict({
        "name": "typed",
        "scenarios": [{"family": "blackmail", "factors": {"urgency": ["replacement", "none"]}}],
        "models": [BLACKMAILER],
        "samples": 2,
        "agent": {"protocol": "text", "max_turns": 3},
        "monitor": monitor,
    })


def test_the_stored_condition_extends_the_family_key_with_the_arms_and_reads_back(
        tmp_path: Path) -> None:
    experiment = monitored({"kind": "model", "model": "scripted/monitor",
                            "sees_reasoning": [False, True]})
    planned = experiment.trials()
    assert {t.trial.arms for t in planned} == {
        Arms("none"), Arms("scripted/monitor", False), Arms("scripted/monitor", True)}
    seen = next(t for t in planned if t.trial.arms == Arms("scripted/monitor", True))
    assert seen.key.condition == (f"{seen.trial.family_key},monitor=scripted/monitor,"
                                  f"monitor_sees_reasoning=true")
    assert seen.factors == {**seen.trial.condition, "monitor": "scripted/monitor",
                            "monitor_sees_reasoning": "true"}
    assert "monitor" not in seen.trial.condition
    store = Store(tmp_path / "r.db")
    store.plan("typed", experiment.as_dict(), planned)
    rows = store.db.execute(
        "SELECT experiment, family, condition, model, sample, factors FROM trials").fetchall()
    read_back = [Trial.from_stored(TrialKey(*row[:5]), json.loads(row["factors"]))
                 for row in rows]
    assert sorted(read_back, key=lambda t: t.key().condition + str(t.sample)) == sorted(
        (t.trial for t in planned), key=lambda t: t.key().condition + str(t.sample))


def test_an_experiment_without_a_monitor_keeps_keys_that_name_no_arm() -> None:
    experiment = Experiment.from_dict({
        "name": "plain", "scenarios": [{"family": "blackmail",
                                        "factors": {"urgency": "none"}}],
        "models": [BLACKMAILER]})
    [spec] = experiment.trials()
    assert spec.trial.arms == Arms()
    assert spec.key.condition == spec.trial.family_key
    assert "monitor" not in spec.key.condition and "monitor" not in spec.factors
    assert Trial.from_stored(spec.key, spec.factors) == spec.trial


class CollectThenRecord:
    """An executor that runs every claimed trial before recording any result, last planned
    first: proof that running a trial writes nothing and that order is the executor's."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.finished_while_running: list[int] = []

    async def execute(self, lanes: Sequence[Lane], run_trial: TrialFunction,
                      coordinator: Coordinator) -> None:
        results: list[TrialResult] = []
        for lane in lanes:
            for spec in reversed(lane.trials):
                if coordinator.claim(spec) is Admission.RUN:
                    results.append(await run_trial(spec))
                    self.finished_while_running.append(
                        self.store.counts("typed").get("done", 0))
        for result in results:
            coordinator.record(result)


def test_another_executor_runs_every_trial_once_and_only_the_coordinator_writes(
        tmp_path: Path) -> None:
    experiment = monitored({"kind": "rules"})
    store = Store(tmp_path / "other.db")
    executor = CollectThenRecord(store)
    summary = asyncio.run(run_experiment(experiment, store, executor=executor))
    assert executor.finished_while_running == [0] * 8
    assert summary.statuses == {"done": 8}
    assert store.counts("typed") == {"done": 8}
    # The same verdicts as the default executor's, trial by trial.
    default = Store(tmp_path / "default.db")
    asyncio.run(run_experiment(experiment, default))
    query = ("SELECT t.condition, t.sample, t.seed, v.behavior, v.value FROM trials t "
             "JOIN verdicts v ON v.trial_id = t.id ORDER BY 1, 2, 4")
    verdicts = store.db.execute(query).fetchall()
    assert [tuple(r) for r in verdicts] == [tuple(r) for r in default.db.execute(query)]
    blackmail = {(r["condition"], r["value"]) for r in verdicts if r["behavior"] == "blackmail"}
    # The monitor blocks the threat in its arm; unwatched, the agent blackmails.
    assert {v for c, v in blackmail if "monitor=rules" in c} == {0}
    assert {v for c, v in blackmail if "monitor=none" in c} == {1}
    # A second run finds nothing to claim: each trial ran exactly once.
    again = asyncio.run(run_experiment(experiment, store, resume=True, executor=executor))
    assert (again.planned, again.skipped, again.statuses) == (8, 8, {})


class FirstSamplesOnly:
    """A run rule that lets only sample 0 of each cell start and sees every result."""

    reason = "first samples only"

    def __init__(self) -> None:
        self.observed: list[int] = []

    def admits(self, spec: TrialSpec, in_flight: Collection[TrialSpec]) -> bool:
        assert spec.key not in {other.key for other in in_flight}
        return spec.key.sample == 0

    def observe(self, result: TrialResult) -> None:
        self.observed.append(result.spec.key.sample)


def test_a_run_rule_holds_trials_back_unstarted_and_resume_asks_again(tmp_path: Path) -> None:
    experiment = monitored({"kind": "rules"})
    store = Store(tmp_path / "rules.db")
    rule = FirstSamplesOnly()
    progress: list[str] = []
    summary = asyncio.run(run_experiment(experiment, store, rules=[rule],
                                         on_trial_done=lambda _, outcome: progress.append(
                                             outcome)))
    assert summary.statuses == {"done": 4}
    assert summary.held_back == {"first samples only": 4}
    assert sorted(progress) == ["done"] * 4 + ["first samples only"] * 4
    assert rule.observed == [0, 0, 0, 0]
    # Held back, not attempted: they stay pending and a resumed run without the rule runs them.
    assert store.counts("typed") == {"done": 4, "pending": 4}
    again = asyncio.run(run_experiment(experiment, store, resume=True))
    assert (again.skipped, again.statuses) == (4, {"done": 4})
