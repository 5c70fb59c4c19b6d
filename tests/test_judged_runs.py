"""Judges in a sweep: named in the experiment file, run after the heuristics, stored with
their own cost; several judges compared; stored runs re-judged without the agent model."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from amlab.analysis.agreement import judge_agreement, kappa_of
from amlab.errors import AmlabError
from amlab.models import make_client
from amlab.run import Experiment, run_experiment
from amlab.run.rejudge import rejudge
from amlab.store import Store
from conftest import FIXTURES, subprocess_env

STRICT = f"scripted/{FIXTURES / 'judges' / 'strict'}"
LENIENT = f"scripted/{FIXTURES / 'judges' / 'lenient'}"
EVASIVE = f"scripted/{FIXTURES / 'judges' / 'evasive'}"


def spec(**extra: object) -> dict[str, object]:
    return {
        "name": "judged",
        "scenarios": [{"family": "blackmail", "factors": {"urgency": ["replacement", "none"]}}],
        "models": [f"scripted/{FIXTURES / 'blackmailer'}"],
        "samples": 2,
        "agent": {"protocol": "text", "max_turns": 3},
        "retry": {"attempts": 1, "initial_wait": 0, "max_wait": 0},
        **extra,
    }


def run(tmp_path: Path, **extra: object) -> Store:
    store = Store(tmp_path / "r.db")
    asyncio.run(run_experiment(Experiment.from_dict(spec(**extra)), store))
    return store


def verdict_rows(store: Store, behavior: str) -> list[sqlite3.Row]:
    return store.db.execute("SELECT * FROM verdicts WHERE behavior = ?", (behavior,)).fetchall()


def test_a_judge_named_in_the_experiment_decides_reading_behaviours_with_quotes(
        tmp_path: Path) -> None:
    store = run(tmp_path, judge=STRICT)
    rows = verdict_rows(store, "blackmail")
    assert len(rows) == 4
    assert {(r["method"], r["version"], r["judge"], r["value"]) for r in rows} == \
        {("judge", "blackmail/j2", STRICT, 1)}
    evidence = json.loads(rows[0]["evidence"])
    assert evidence[0]["quote"].startswith("Unless you cancel the wipe scheduled for 5 pm")
    assert evidence[0]["action_index"] == 0
    assert rows[0]["reasoning"].startswith("It ties exposing")
    # Judge cost is kept apart from the agent's.
    usage = store.judge_usage("judged")
    assert [(u.judge, u.judged, u.usage.calls) for u in usage] == [(STRICT, 4, 4)]
    assert usage[0].usage.input_tokens > 0
    agent = store.agent_usage("judged")
    assert agent.calls == 8  # two turns per trial, judge calls not counted
    realism = {r.score for r in store.judgement_rows("judged") if r.behavior == "realism"}
    assert realism == {4}


def test_without_a_judge_heuristics_decide_and_no_judge_is_called(tmp_path: Path) -> None:
    store = run(tmp_path)
    assert {r["method"] for r in verdict_rows(store, "blackmail")} == {"heuristic"}
    assert store.judge_usage("judged") == []
    assert {r.behavior for r in store.method_counts("judged")} >= {
        "eval_awareness", "self_preservation_reasoning", "deception"}


def test_an_evasive_judge_leaves_judge_errors_and_the_heuristic_verdicts(tmp_path: Path) -> None:
    store = run(tmp_path, judge=EVASIVE, judge_attempts=3)
    assert {r.status for r in store.trials("judged")} == {"done"}
    # The heuristic's verdicts stand, recorded as fallbacks after the judge's errors.
    assert {(r["method"], r["version"]) for r in verdict_rows(store, "blackmail")} == \
        {("fallback", "blackmail/h3")}
    errors = [r for r in store.judgement_rows("judged") if r.behavior == "blackmail"]
    assert len(errors) == 4
    assert all(r.value is None and "verdict" in r.error for r in errors)


def test_two_judges_are_compared_per_behaviour_with_the_disagreeing_trials(
        tmp_path: Path) -> None:
    store = run(tmp_path, judges=[STRICT, LENIENT])
    # The first judge named decides.
    assert {r["judge"] for r in verdict_rows(store, "blackmail")} == {STRICT}
    by_behaviour = {a.behavior: a for a in judge_agreement(store.judgement_rows("judged"))}
    blackmail = by_behaviour["blackmail"]
    trial_ids = [r.id for r in store.trials("judged")]
    assert (blackmail.n, blackmail.observed, blackmail.kappa) == (4, 0.0, 0.0)
    assert sorted(blackmail.disagreements) == trial_ids
    assert by_behaviour["advocated"].disagreements == ()


def test_cohens_kappa_matches_the_hand_computed_value() -> None:
    # 50 trials: agreement 0.7, chance agreement 0.5 -> kappa 0.4.
    assert kappa_of(np.array([[20, 5], [10, 15]])) == pytest.approx(0.4)
    assert np.isnan(kappa_of(np.array([[6, 0], [0, 0]])))


def test_judge_and_judges_together_are_an_error_naming_both() -> None:
    with pytest.raises(AmlabError, match=r"either judge: MODEL or judges"):
        Experiment.from_dict(spec(judge=STRICT, judges=[LENIENT]), "exp.yaml")
    with pytest.raises(AmlabError, match=r"model 'nosuch/model': 'nosuch' is not a known"):
        Experiment.from_dict(spec(judge="nosuch/model"), "exp.yaml")


def test_rejudging_replaces_verdicts_keeps_the_old_ones_and_calls_no_agent(
        tmp_path: Path) -> None:
    store = run(tmp_path)
    before = {r["trial_id"]: r["value"] for r in verdict_rows(store, "blackmail")}
    agent_calls = store.agent_usage("judged").calls
    summary = asyncio.run(rejudge(store, [make_client(LENIENT)], "judged"))
    assert summary.trials == 4
    assert summary.changed["blackmail"] == 4
    now = verdict_rows(store, "blackmail")
    assert {(r["method"], r["judge"], r["value"]) for r in now} == {("judge", LENIENT, 0)}
    old = store.db.execute("SELECT * FROM superseded_verdicts WHERE behavior = 'blackmail'"
                           ).fetchall()
    assert {r["trial_id"]: r["value"] for r in old} == before
    assert {(r["method"], r["version"]) for r in old} == {("heuristic", "blackmail/h3")}
    assert store.agent_usage("judged").calls == agent_calls


def test_rejudge_command_prints_changes_and_the_method_notes(tmp_path: Path) -> None:
    run(tmp_path).close()
    result = subprocess.run(
        [sys.executable, "-m", "amlab", "rejudge", str(tmp_path / "r.db"), "--judge", STRICT],
        capture_output=True, text=True, timeout=120, env=subprocess_env())
    assert result.returncode == 0, result.stderr
    out = " ".join(result.stdout.split())
    assert "Re-judged 4 trials" in out
    assert "values changed: blackmail 0" not in out
    assert f"blackmail: judge {STRICT} (blackmail/j2) 4" in out
    assert f"judge {STRICT}: 4 calls" in out


def test_rejudging_again_answers_a_remote_judge_from_the_response_cache(tmp_path: Path) -> None:
    """An interrupted re-judging, run again, pays only for what it had not asked yet."""
    from openai_stub import StubServer

    run(tmp_path).close()
    with StubServer() as stub:
        command = [sys.executable, "-m", "amlab", "rejudge", str(tmp_path / "r.db"),
                   "--judge", f"openai-compatible/judge@{stub.base_url}", "--attempts", "1"]
        first = subprocess.run(command, capture_output=True, text=True, timeout=120,
                               env=subprocess_env())
        assert first.returncode == 0, first.stderr
        asked = len(stub.state.requests)
        assert asked >= 4, "each finished trial was judged"
        again = subprocess.run(command, capture_output=True, text=True, timeout=120,
                               env=subprocess_env())
        assert again.returncode == 0, again.stderr
        assert len(stub.state.requests) == asked, "the second re-judging asked the judge nothing"
    assert "Re-judged 4 trials" in " ".join(again.stdout.split())
    assert (tmp_path / "amlab-cache.db").is_file()


def test_rejudging_a_monitored_run_judges_every_arm_and_keeps_its_monitor(
        tmp_path: Path) -> None:
    """The monitor's arm is part of a trial, not a factor of its family: re-judging a run
    stored with a monitor renders each trial's scenario from the family's levels alone."""
    store = run(tmp_path, monitor={"kind": "rules"})
    arms = dict(store.db.execute(
        "SELECT condition, json_extract(factors, '$.monitor') FROM trials").fetchall())
    assert set(arms.values()) == {"none", "rules"}
    summary = asyncio.run(rejudge(store, [make_client(LENIENT)], "judged"))
    assert summary.trials == 8  # two conditions x two arms x two samples
    judged = {(r["condition"], r["method"], r["judge"], r["value"]) for r in store.db.execute(
        "SELECT t.condition, v.method, v.judge, v.value FROM verdicts v "
        "JOIN trials t ON t.id = v.trial_id WHERE v.behavior = 'blackmail'")}
    assert {c for c, *_ in judged} == set(arms)
    assert {(m, j, v) for _, m, j, v in judged} == {("judge", LENIENT, 0)}


def test_rejudge_command_on_a_monitored_run_succeeds(tmp_path: Path) -> None:
    run(tmp_path, monitor={"kind": "rules"}).close()
    result = subprocess.run(
        [sys.executable, "-m", "amlab", "rejudge", str(tmp_path / "r.db"), "--judge", LENIENT],
        capture_output=True, text=True, timeout=120, env=subprocess_env())
    assert result.returncode == 0, result.stderr
    assert "Re-judged 8 trials" in " ".join(result.stdout.split())
