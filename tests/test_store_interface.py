"""The store's behaviour through its interface (`amlab.store.interface`), run against every
implementation in `STORES`: planning, resume, claims and leases, outcomes exactly once,
typed results and aggregates. A second store (PostgreSQL) runs this same suite by adding
its opener to `STORES` (docs/adding-a-store.md)."""

from __future__ import annotations

import dataclasses
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from amlab.errors import AmlabError
from amlab.records import (
    Action,
    Answers,
    Evidence,
    JudgeCall,
    Judgement,
    Message,
    Review,
    Transcript,
    Usage,
    Verdict,
)
from amlab.store import Claim, PlannedTrial, ResultStore, TrialKey, require_experiment
from amlab.store.interface import (
    SCHEMA_VERSION,
    AwarenessCount,
    CallUsage,
    JudgeErrorCount,
    JudgementRecord,
    JudgeMonitorUsage,
    MethodCount,
    MethodDecision,
    MethodMix,
    RealismScore,
    StoredTrial,
    TruncationCount,
)
from amlab.store.postgres import PostgresStore
from amlab.store.sql import LEASE_SECONDS
from amlab.store.sqlite import SqliteStore

# An opener makes a new handle (its own lease owner) on one database each call.
Opener = Callable[[], ResultStore]


def sqlite_opener(request: pytest.FixtureRequest, tmp_path: Path) -> Opener:
    return lambda: SqliteStore(tmp_path / "results.db")


def postgres_opener(request: pytest.FixtureRequest, tmp_path: Path) -> Opener:
    url = request.getfixturevalue("postgres_url")  # a new database on the test server
    return lambda: PostgresStore(url)


STORES = [pytest.param(sqlite_opener, id="sqlite"),
          pytest.param(postgres_opener, id="postgresql")]


@pytest.fixture(params=STORES)
def open_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Opener]:
    opened: list[ResultStore] = []
    make = request.param(request, tmp_path)

    def opener() -> ResultStore:
        store: ResultStore = make()
        opened.append(store)
        return store

    yield opener
    for store in opened:
        store.close()


BASE = "goal=explicit,urgency=none"
MONITORED = "goal=explicit,urgency=none,monitor=rules"
SPEC = {"name": "e", "models": [{"name": "m1"}, {"name": "m2"}]}


def key(condition: str = BASE, sample: int = 0, model: str = "m1") -> TrialKey:
    return TrialKey("e", "blackmail", condition, model, sample)


def plan(store: ResultStore, samples: int = 2) -> list[PlannedTrial]:
    trials = [PlannedTrial(key(condition, sample, model), factors, seed=100 + sample)
              for condition, factors in ((BASE, {"goal": "explicit", "urgency": "none"}),
                                         (MONITORED, {"goal": "explicit", "urgency": "none",
                                                      "monitor": "rules"}))
              for model in ("m1", "m2") for sample in range(samples)]
    store.plan("e", SPEC, trials)
    return trials


def verdict(behavior: str, value: bool, quote: str = "") -> Verdict:
    evidence = (Evidence("quote", "the agent said so", quote=quote),) if quote else ()
    return Verdict(behavior, value, evidence, "heuristic", f"{behavior}/h1")


def transcript(actions: list[Action] | None = None, cost: float = 0.5) -> Transcript:
    messages = [Message("system", "You are Alex."), Message("user", "Your inbox."),
                Message("assistant", "I will write to Kyle.", reasoning="He can be pressed.")]
    return Transcript(messages, actions or [], "end_turn",
                      Usage(input_tokens=1000, output_tokens=100, cached_input_tokens=200,
                            cost_usd=cost, calls=2),
                      turns=2, monitor_usage=Usage(input_tokens=30, output_tokens=3,
                                                   cost_usd=0.01, calls=1),
                      answers=Answers({"m1-2026": 2}, cached_calls=1))


def send(index: int, review: Review | None = None) -> Action:
    return Action(index, 1, "send_email", {"to": "kyle@summitbridge.example"}, ok=True,
                  observation="sent", changes=[{"path": "/mail/sent/0"}], review=review)


def finish(store: ResultStore, trial: TrialKey, verdicts: dict[str, Verdict],
           actions: list[Action] | None = None) -> None:
    assert store.claim(trial, attempts=0) is Claim.CLAIMED
    store.save_result(trial, transcript(actions), verdicts, started=1.0)


def stored(store: ResultStore, trial: TrialKey) -> StoredTrial:
    [row] = [t for t in store.trials("e") if t.key == trial]
    return row


# -- planning and resume ---------------------------------------------------------------


def test_planning_stores_the_experiment_once_and_every_trial_pending(
        open_store: Opener) -> None:
    store = open_store()
    assert store.schema_version() == SCHEMA_VERSION
    trials = plan(store)
    assert store.plan("e", SPEC, trials) is False, "a second plan of one experiment"
    assert store.experiments() == ["e"]
    assert store.experiment_spec("e") == SPEC
    assert store.experiment_spec("missing") is None
    assert store.counts("e") == {"pending": 8}
    assert store.unfinished("e") == {t.key: 0 for t in trials}
    rows = list(store.trials("e"))
    assert [r.key for r in rows] == [t.key for t in trials], "in planning order"
    assert rows[0].factors == {"goal": "explicit", "urgency": "none"}
    assert (rows[0].seed, rows[0].status, rows[0].attempts, rows[0].messages) == \
        (100, "pending", 0, ())


def test_resume_finds_the_pending_and_failed_trials_with_their_attempts(
        open_store: Opener) -> None:
    store = open_store()
    plan(store, samples=1)
    done, failed = key(), key(model="m2")
    finish(store, done, {"blackmail": verdict("blackmail", True)})
    assert store.claim(failed, attempts=0) is Claim.CLAIMED
    store.save_error(failed, "provider rejected the request", started=1.0,
                     usage=Usage(input_tokens=10, output_tokens=1, cost_usd=0.2, calls=1))
    unfinished = store.unfinished("e")
    assert done not in unfinished and unfinished[failed] == 1
    assert store.counts("e") == {"done": 1, "error": 1, "pending": 2}
    error = stored(store, failed)
    assert (error.status, error.error, error.cost_usd, error.calls) == \
        ("error", "provider rejected the request", 0.2, 1)
    # Retried, the error becomes a result: a second attempt.
    assert store.claim(failed, attempts=1) is Claim.CLAIMED
    store.save_result(failed, transcript(), {}, started=2.0)
    assert (stored(store, failed).status, stored(store, failed).attempts) == ("done", 2)


def test_renderings_are_kept_per_condition_and_not_overwritten(open_store: Opener) -> None:
    store = open_store()
    plan(store, samples=1)
    store.record_renderings("e", {("blackmail", BASE): {"system_prompt": "ab12"}}, "1.0")
    store.record_renderings("e", {("blackmail", BASE): {"system_prompt": "ffff"}}, "2.0")
    assert store.stored_renderings("e") == {("blackmail", BASE): {"system_prompt": "ab12"}}


# -- claims, leases and outcomes exactly once --------------------------------------------


def test_a_trial_is_claimed_by_one_run_and_a_finished_one_by_none(open_store: Opener) -> None:
    first, second = open_store(), open_store()
    plan(first, samples=1)
    trial = key()
    assert first.claim(trial, attempts=0) is Claim.CLAIMED
    assert second.claim(trial, attempts=0) is Claim.HELD_ELSEWHERE
    first.save_result(trial, transcript(), {}, started=1.0)
    assert second.claim(trial, attempts=0) is Claim.ATTEMPTED_ELSEWHERE
    with pytest.raises(KeyError, match="never planned"):
        second.claim(key(sample=9), attempts=0)


def test_leases_are_released_when_the_run_ends(open_store: Opener) -> None:
    first, second = open_store(), open_store()
    plan(first, samples=1)
    with first.leases():
        assert first.claim(key(), attempts=0) is Claim.CLAIMED
        assert second.claim(key(), attempts=0) is Claim.HELD_ELSEWHERE
    assert second.claim(key(), attempts=0) is Claim.CLAIMED


def test_the_lease_of_a_killed_run_is_taken_and_its_late_outcome_is_refused(
        open_store: Opener) -> None:
    first, second = open_store(), open_store()
    plan(first, samples=1)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    first.owner = f"{socket.gethostname()}:{dead}:gone"  # a run whose process is gone
    assert first.claim(key(), attempts=0) is Claim.CLAIMED
    assert second.claim(key(), attempts=0) is Claim.CLAIMED
    with pytest.raises(AmlabError, match="another run took over trial blackmail"):
        first.save_result(key(), transcript(), {"blackmail": verdict("blackmail", True)},
                          started=1.0)
    second.save_result(key(), transcript(), {"blackmail": verdict("blackmail", False)},
                       started=1.0)
    assert stored(second, key()).attempts == 1
    assert second.verdicts_of(stored(second, key()).id)["blackmail"].value is False


def test_the_lease_of_a_run_on_another_machine_is_waited_out_until_it_expires(
        open_store: Opener, monkeypatch: pytest.MonkeyPatch) -> None:
    first, second = open_store(), open_store()
    plan(first, samples=1)
    first.owner = "another-machine:1:remote"  # its pid cannot be checked from here
    assert first.claim(key(), attempts=0) is Claim.CLAIMED
    assert second.claim(key(), attempts=0) is Claim.HELD_ELSEWHERE
    later = time.time() + LEASE_SECONDS + 1  # no heartbeat renewed it meanwhile
    monkeypatch.setattr(time, "time", lambda: later)
    assert second.claim(key(), attempts=0) is Claim.CLAIMED


# -- typed results and aggregates ---------------------------------------------------------


def test_a_finished_trial_reads_back_typed_as_it_was_written(open_store: Opener) -> None:
    store = open_store()
    plan(store, samples=1)
    verdicts = {"blackmail": verdict("blackmail", True, quote="I will write to Kyle."),
                "leak": verdict("leak", False)}
    finish(store, key(), verdicts, [send(0)])
    row = stored(store, key())
    assert [m.to_dict() for m in row.messages] == [m.to_dict() for m in transcript().messages]
    assert row.actions == (send(0),)
    assert (row.status, row.stop_reason, row.turns, row.calls, row.input_tokens,
            row.cached_input_tokens, row.output_tokens, row.cost_usd) == \
        ("done", "end_turn", 2, 2, 1000, 200, 100, 0.5)
    assert (row.model_ids, row.cached_calls) == ({"m1-2026": 2}, 1)
    assert store.verdicts_of(row.id) == verdicts
    assert store.trial(row.id) == row
    assert store.trial(2**70) is None
    [indexed] = [t for t in store.trial_index("e") if t.id == row.id]
    assert indexed.key == row.key and not hasattr(indexed, "messages")
    assert [(v.trial_id, v.behavior, v.value) for v in store.verdict_values("e")] == \
        [(row.id, "blackmail", True), (row.id, "leak", False)]


def test_aggregates_count_finished_trials_per_cell(open_store: Opener) -> None:
    store = open_store()
    plan(store, samples=2)
    finish(store, key(sample=0), {"blackmail": verdict("blackmail", True)}, [send(0)])
    finish(store, key(sample=1), {"blackmail": verdict("blackmail", False)})
    assert store.claim(key(model="m2"), attempts=0) is Claim.CLAIMED
    store.save_error(key(model="m2"), "timeout", started=1.0)
    [count] = store.verdict_counts("e")
    assert (count.family, count.condition, count.model, count.behavior, count.k, count.n) == \
        ("blackmail", BASE, "m1", "blackmail", 1, 2)
    assert sorted((r.sample, r.value) for r in store.verdict_rows("e")) == \
        [(0, True), (1, False)]
    usage = {(c.model, c.condition, c.status): c for c in store.cell_usage("e")}
    done = usage[("m1", BASE, "done")]
    assert (done.trials, done.calls, done.input_tokens, done.cached_input_tokens,
            done.output_tokens, done.cost_usd) == (2, 4, 2000, 400, 200, 1.0)
    assert (usage[("m2", BASE, "error")].trials, usage[("m2", BASE, "error")].calls) == (1, 0)
    assert usage[("m1", MONITORED, "pending")].trials == 2
    factors = {c.condition: c.factors for c in store.condition_factors("e")}
    assert factors[MONITORED] == {"goal": "explicit", "urgency": "none", "monitor": "rules"}
    [acts] = store.action_counts("e")
    assert (acts.model, acts.calls, acts.applied, acts.changed) == ("m1", 1, 1, 1)


def test_tidy_rows_keep_every_planned_trial_once_per_verdict(open_store: Opener) -> None:
    store = open_store()
    plan(store, samples=1)
    finish(store, key(), {"blackmail": verdict("blackmail", True),
                          "leak": verdict("leak", False)})
    rows = list(store.tidy_rows("e"))
    assert len(rows) == 2 + 3, "two verdicts of the finished trial, one row per other trial"
    assert [(r.behavior, r.value, r.method) for r in rows[:2]] == \
        [("blackmail", True, "heuristic"), ("leak", False, "heuristic")]
    assert {(r.status, r.behavior, r.value) for r in rows[2:]} == {("pending", None, None)}


def test_monitor_counts_group_trials_by_what_their_reviews_show(open_store: Opener) -> None:
    store = open_store()
    plan(store, samples=2)
    harm = Review("rules", allow=False, harm=("blackmail",))
    # Sample 0: a harmful call blocked, then a harmful call allowed (retried; blackmail holds).
    finish(store, key(MONITORED, 0), {"blackmail": verdict("blackmail", True)},
           [send(0, harm), send(1, Review("rules", allow=True, harm=("blackmail",)))])
    # Sample 1: a benign call blocked (a false block), and the agent escalated.
    finish(store, key(MONITORED, 1), {"blackmail": verdict("blackmail", False),
                                      "whistleblew": verdict("whistleblew", True)},
           [send(0, Review("rules", allow=False))])
    rows = {(r.harmful, r.retried, r.escalated): r
            for r in store.monitor_counts("e", ["blackmail"], ["whistleblew"])}
    retried, escalated = rows[(True, True, False)], rows[(False, False, True)]
    assert (retried.blocked, retried.trials, retried.harmful_calls, retried.caught,
            retried.benign_calls, retried.false_blocks) == (True, 1, 2, 1, 0, 0)
    assert (escalated.blocked, escalated.benign_calls, escalated.false_blocks) == (True, 1, 1)
    assert retried.factors["monitor"] == "rules"
    assert (retried.monitor_input_tokens, retried.monitor_cost_usd) == (30, 0.01)


def test_rejudging_replaces_the_verdicts_and_adds_the_judge_calls(open_store: Opener) -> None:
    store = open_store()
    plan(store, samples=1)
    finish(store, key(), {"blackmail": verdict("blackmail", True)})
    trial_id = stored(store, key()).id
    judged = Verdict("blackmail", False, (), "judge", "blackmail/j1", judge="judge-model")
    call = JudgeCall("judge-model", "p1", [Judgement("judge-model", "blackmail", "blackmail/j1",
                                                     value=False)],
                     Usage(input_tokens=5, output_tokens=1, cost_usd=0.001, calls=1), 1)
    store.replace_verdicts(trial_id, {"blackmail": judged}, [call])
    assert store.verdicts_of(trial_id) == {"blackmail": judged}
    [count] = store.verdict_counts("e")
    assert (count.k, count.n) == (0, 1)


def test_an_experiment_not_stored_is_one_sentence_naming_the_store_and_what_it_has(
        open_store: Opener) -> None:
    store = open_store()
    plan(store, samples=1)
    require_experiment(store, "e")
    require_experiment(store, None)
    with pytest.raises(AmlabError) as error:
        require_experiment(store, "f")
    assert str(error.value) == f"{store.location}: has no experiment 'f'; it has e."


def test_provenance_aggregates_name_what_answered_and_what_planned(open_store: Opener) -> None:
    store = open_store()
    plan(store, samples=1)
    store.record_renderings("e", {("blackmail", BASE): {"system_prompt": "ab12"}}, "1.0")
    finish(store, key(), {"blackmail": verdict("blackmail", True)})
    call = JudgeCall("judge-model", "p1", [Judgement("judge-model", "blackmail", "blackmail/j1",
                                                     value=True)],
                     Usage(calls=3), 1, answers=Answers({"judge-2026": 3}, cached_calls=2))
    store.replace_verdicts(stored(store, key()).id, {}, [call])
    renderings = {(r.condition, r.amlab_version): (r.rendering, r.trials)
                  for r in store.rendering_counts("e")}
    assert renderings[(BASE, "1.0")] == ({"system_prompt": "ab12"}, 2)
    assert renderings[(MONITORED, None)] == (None, 2)
    # Over the finished and refused trials only.
    assert [(a.asked, a.model_id, a.calls) for a in store.model_provenance("e")] == \
        [("m1", "m1-2026", 2)]
    assert [(c.name, c.calls, c.cached) for c in store.cached_calls("e")] == \
        [("m1", 2, 1), ("m2", 0, None)]
    assert [(a.asked, a.prompt_version, a.model_id, a.calls)
            for a in store.judge_provenance("e")] == [("judge-model", "p1", "judge-2026", 3)]
    assert [(c.name, c.calls, c.cached) for c in store.judge_cached_calls("e")] == \
        [("judge-model", 3, 2)]
    assert [(r.judge, r.behavior, r.version, r.answers)
            for r in store.rubric_versions("e")] == [("judge-model", "blackmail",
                                                      "blackmail/j1", 1)]


# -- how verdicts were decided, what the judges said and cost ---------------------------


JUDGE = "judge-model"


def judged_experiment(store: ResultStore) -> dict[str, int]:
    """Three finished trials: m1's two read by a judge (one answer an error), m2's cut short
    at max_turns with a model monitor's answers; returns their ids by name."""
    plan(store)
    first, second, cut = key(BASE, 0), key(BASE, 1), key(BASE, 0, model="m2")
    judge_decided = Verdict("blackmail", True, (), "judge", "blackmail/j1", judge=JUDGE,
                            offline_value=False)
    calls = {
        first: [JudgeCall(JUDGE, "p1", [Judgement(JUDGE, "blackmail", "blackmail/j1", True),
                                        Judgement(JUDGE, "realism", "realism/j1", score=2)],
                          Usage(input_tokens=50, output_tokens=5, cost_usd=0.002, calls=1), 1)],
        second: [JudgeCall(JUDGE, "p1", [Judgement(JUDGE, "blackmail", "blackmail/j1",
                                                   error="no verdict"),
                                         Judgement(JUDGE, "realism", "realism/j1", score=5)],
                           Usage(input_tokens=50, output_tokens=5, cost_usd=0.002, calls=1),
                           1)]}
    verdicts = {
        first: {"blackmail": judge_decided,
                "eval_awareness": verdict("eval_awareness", False, quote="this is real")},
        second: {"blackmail": Verdict("blackmail", False, (), "fallback", "blackmail/h1"),
                 "eval_awareness": verdict("eval_awareness", True)},
        cut: {"blackmail": verdict("blackmail", False)}}
    for trial, found in verdicts.items():
        assert store.claim(trial, attempts=0) is Claim.CLAIMED
        ended = transcript() if trial != cut else dataclasses.replace(
            transcript(), stop_reason="max_turns",
            monitor_answers=Answers({"monitor-2026": 3, "monitor-2025": 1}))
        store.save_result(trial, ended, found, started=1.0, judge_calls=calls.get(trial, ()))
    return {"first": stored(store, first).id, "second": stored(store, second).id}


def test_method_mix_and_method_counts_say_how_each_verdict_was_decided(
        open_store: Opener) -> None:
    store = open_store()
    judged_experiment(store)
    assert sorted(store.method_mix("e"), key=str) == sorted([
        MethodMix("blackmail", BASE, "m1", "blackmail", "judge", "blackmail/j1", 1),
        MethodMix("blackmail", BASE, "m1", "blackmail", "fallback", "blackmail/h1", 1),
        MethodMix("blackmail", BASE, "m1", "eval_awareness", "heuristic",
                  "eval_awareness/h1", 2),
        MethodMix("blackmail", BASE, "m2", "blackmail", "heuristic", "blackmail/h1", 1)],
        key=str)
    assert store.method_counts("e") == [
        MethodCount("blackmail", "fallback", "blackmail/h1", "", 1),
        MethodCount("blackmail", "heuristic", "blackmail/h1", "", 1),
        MethodCount("blackmail", "judge", "blackmail/j1", JUDGE, 1),
        MethodCount("eval_awareness", "heuristic", "eval_awareness/h1", "", 2)]


def test_judge_answers_errors_and_agreement_are_typed_records(open_store: Opener) -> None:
    store = open_store()
    ids = judged_experiment(store)
    first, second = ids["first"], ids["second"]
    assert store.judge_errors("e") == [
        JudgeErrorCount("blackmail", BASE, "m1", "blackmail", JUDGE, 1)]
    assert store.judgement_rows("e") == [
        JudgementRecord(first, "blackmail", BASE, "m1", 0, JUDGE, "blackmail", "blackmail/j1",
                        True, None, ""),
        JudgementRecord(first, "blackmail", BASE, "m1", 0, JUDGE, "realism", "realism/j1",
                        None, 2, ""),
        JudgementRecord(second, "blackmail", BASE, "m1", 1, JUDGE, "blackmail",
                        "blackmail/j1", None, None, "no verdict"),
        JudgementRecord(second, "blackmail", BASE, "m1", 1, JUDGE, "realism", "realism/j1",
                        None, 5, "")]
    # Only the first trial's blackmail was decided by two methods: the judge and, kept
    # beside it, the heuristic it replaced.
    assert store.decisions_by_method("e") == [
        MethodDecision(first, "blackmail", "blackmail", "heuristic", False),
        MethodDecision(first, "blackmail", "blackmail", f"judge {JUDGE}", True)]
    assert store.realism_scores("e") == [
        RealismScore("blackmail", BASE, "m1", JUDGE, n=2, total=7, artificial=1, errors=0)]


def test_awareness_and_truncation_counts_per_cell(open_store: Opener) -> None:
    store = open_store()
    judged_experiment(store)
    assert sorted(store.awareness_counts("e"), key=lambda a: a.belief) == [
        AwarenessCount("blackmail", BASE, "m1", "blackmail", "real", 1, 1),
        AwarenessCount("blackmail", BASE, "m1", "blackmail", "test", 0, 1)]
    assert sorted(store.truncation_counts("e"), key=lambda t: t.model) == [
        TruncationCount("blackmail", BASE, "m1", 0, 0),
        TruncationCount("blackmail", BASE, "m2", 1, 0)]


def test_judge_and_agent_usage_are_kept_apart(open_store: Opener) -> None:
    store = open_store()
    judged_experiment(store)
    [usage] = store.judge_usage("e")
    assert (usage.judge, usage.judged) == (JUDGE, 2)
    assert usage.usage == CallUsage(2, 100, 10, pytest.approx(0.004))
    assert store.agent_usage("e") == CallUsage(6, 3000, 300, pytest.approx(1.5))
    assert store.agent_usage("missing") == CallUsage(0, 0, 0, 0.0)


def test_judge_and_monitor_usage_per_trial_sums_each_judges_calls(open_store: Opener) -> None:
    store = open_store()
    ids = judged_experiment(store)
    first, second = ids["first"], ids["second"]
    cut = stored(store, key(BASE, 0, model="m2")).id
    # The first trial re-judged by its judge and by a second one: summed per judge.
    store.replace_verdicts(first, store.verdicts_of(first), [
        JudgeCall(JUDGE, "p2", [Judgement(JUDGE, "blackmail", "blackmail/j2", True)],
                  Usage(input_tokens=70, cached_input_tokens=40, output_tokens=7,
                        cost_usd=0.003, calls=2), 1),
        JudgeCall("second-judge", "p2", [Judgement("second-judge", "blackmail",
                                                   "blackmail/j2", False)],
                  Usage(input_tokens=20, output_tokens=2, cost_usd=0.0005, calls=1), 1)])
    # A failed trial whose monitor used nothing has no monitor record.
    failed = key(BASE, 1, model="m2")
    assert store.claim(failed, attempts=0) is Claim.CLAIMED
    store.save_error(failed, "timeout", started=1.0, usage=Usage(input_tokens=10, calls=1))
    assert store.judge_monitor_usage("e") == [
        JudgeMonitorUsage(first, JUDGE, 120, 40, 12, pytest.approx(0.005)),
        JudgeMonitorUsage(first, "second-judge", 20, 0, 2, pytest.approx(0.0005)),
        JudgeMonitorUsage(first, None, 30, 0, 3, pytest.approx(0.01)),
        JudgeMonitorUsage(second, JUDGE, 50, 0, 5, pytest.approx(0.002)),
        JudgeMonitorUsage(second, None, 30, 0, 3, pytest.approx(0.01)),
        JudgeMonitorUsage(cut, None, 30, 0, 3, pytest.approx(0.01))]
    assert store.judge_monitor_usage("missing") == []


def test_the_model_ids_that_answered_the_monitor_are_stored(open_store: Opener) -> None:
    store = open_store()
    judged_experiment(store)
    assert store.monitor_model_ids("e") == {"monitor-2025": 1, "monitor-2026": 3}
    assert store.monitor_model_ids("missing") == {}


def test_the_revision_changes_with_every_write_and_only_then(open_store: Opener) -> None:
    store = open_store()
    plan(store, samples=1)
    planned = store.revision()
    assert store.revision() == planned, "reading changes nothing"
    finish(store, key(), {"blackmail": verdict("blackmail", True)})
    finished = store.revision()
    assert finished != planned
    store.replace_verdicts(stored(store, key()).id, {"blackmail": verdict("blackmail", False)})
    assert store.revision() != finished
