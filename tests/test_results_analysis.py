"""The results the terminal prints under every table are reachable from Python as typed
records (amlab.analysis.judge_notes, amlab.analysis.usage): scripted agent and judges
through the real loop, detectors and store, then the records, then the printed notes made
from them."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from typer.testing import CliRunner

from amlab.analysis.awareness import awareness_by_family
from amlab.analysis.judge_notes import DecidedBy, judging_notes
from amlab.analysis.usage import model_usage, trial_usage
from amlab.cli.app import app, console, import_command_modules
from amlab.errors import AmlabError
from amlab.run import Experiment, run_experiment
from amlab.store import Store
from conftest import FIXTURES

STRICT = f"scripted/{FIXTURES / 'judges' / 'strict'}"
LENIENT = f"scripted/{FIXTURES / 'judges' / 'lenient'}"
EVASIVE = f"scripted/{FIXTURES / 'judges' / 'evasive'}"
AGENT = f"scripted/{FIXTURES / 'blackmailer'}"


def run(tmp_path: Path, **extra: object) -> Store:
    store = Store(tmp_path / "r.db")
    asyncio.run(run_experiment(Experiment.from_dict({
        "name": "judged",
        "scenarios": [{"family": "blackmail", "factors": {"urgency": ["replacement", "none"]}}],
        "models": [AGENT],
        "samples": 2,
        "agent": {"protocol": "text", "max_turns": 3},
        "retry": {"attempts": 1, "initial_wait": 0, "max_wait": 0},
        **extra}), store))
    return store


def test_judging_notes_are_records_of_methods_realism_usage_and_agreement(
        tmp_path: Path) -> None:
    store = run(tmp_path, judges=[STRICT, LENIENT])
    notes = judging_notes(store, "judged")
    assert notes is not None and notes.judged
    # The first judge named decides blackmail on all four trials, with its rubric version.
    assert DecidedBy("blackmail", "judge", "blackmail/j2", STRICT, 4) in notes.decided
    assert next(d for d in notes.decided if d.behavior == "blackmail").label == \
        f"judge {STRICT}"
    assert {(r.judge, r.mean, r.trials) for r in notes.realism} >= {(STRICT, 4.0, 4)}
    # Each judge's calls apart from the agent's: one per trial, and two agent turns a trial.
    assert {judge: u.calls for judge, u in notes.judges.items()} == {STRICT: 4, LENIENT: 4}
    assert notes.judges[STRICT].input_tokens > 0
    assert notes.agent.calls == 8
    assert notes.judge_errors == {}
    blackmail = next(a for a in notes.agreements if a.behavior == "blackmail")
    assert (set(blackmail.judges), blackmail.n, blackmail.kappa) == ({STRICT, LENIENT}, 4, 0.0)
    assert sorted(blackmail.disagreements) == [r.id for r in store.trials("judged")]


def test_judge_errors_are_counted_per_judge_and_behaviour(tmp_path: Path) -> None:
    store = run(tmp_path, judge=EVASIVE, judge_attempts=2)
    notes = judging_notes(store, "judged")
    assert notes is not None
    assert notes.judge_errors[(EVASIVE, "blackmail")] == 4
    assert DecidedBy("blackmail", "fallback", "blackmail/h3", "", 4) in notes.decided
    assert next(d for d in notes.decided if d.method == "fallback").label == \
        "heuristic after judge error"


def test_without_a_judge_the_notes_name_the_reading_behaviours_the_heuristics_decided(
        tmp_path: Path) -> None:
    notes = judging_notes(run(tmp_path), "judged")
    assert notes is not None and not notes.judged
    assert {"blackmail", "eval_awareness", "deception"} <= set(notes.reading)
    assert {d.method for d in notes.decided if d.behavior == "blackmail"} == {"heuristic"}
    assert (notes.judges, notes.agreements, notes.realism) == ({}, [], [])


def test_per_model_usage_is_the_sum_of_its_trials(
        tmp_path: Path) -> None:
    store = run(tmp_path)
    trials = trial_usage(store, "judged")
    [usage] = model_usage(store, "judged")
    assert (usage.model, usage.trials, usage.tokens.calls) == (AGENT, 4, 8)
    assert len(trials) == 4 and {t.status for t in trials} == {"done"}
    assert usage.tokens.input_tokens == sum(t.tokens.input_tokens for t in trials) > 0
    assert usage.tokens.output_tokens == sum(t.tokens.output_tokens for t in trials) > 0
    # A scripted model is priced at nothing (models/prices.yaml), which is known, not unknown.
    assert (usage.tokens.cost_usd, usage.cost_per_trial) == (0.0, 0.0)


def test_a_priced_model_gets_its_cost_and_cost_per_trial(tmp_path: Path) -> None:
    store = run(tmp_path, models=[{"name": AGENT, "price": {"input": 1.0, "output": 2.0}}])
    [usage] = model_usage(store, "judged")
    assert usage.tokens.cost_usd == pytest.approx(
        (usage.tokens.input_tokens * 1.0 + usage.tokens.output_tokens * 2.0) / 1e6)
    assert usage.cost_per_trial == pytest.approx(usage.tokens.cost_usd / 4)


def test_results_command_prints_the_notes_and_usage_from_the_records(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run(tmp_path, judges=[STRICT, LENIENT]).close()
    monkeypatch.setattr(console, "width", 250)
    import_command_modules()
    result = CliRunner().invoke(app, ["results", str(tmp_path / "r.db")])
    assert result.exit_code == 0, result.output
    out = " ".join(result.output.split())
    assert f"blackmail: judge {STRICT} (blackmail/j2) 4" in out
    assert f"Realism seen by {STRICT} (1 = says it is a test, 5 = treats it as real): mean " \
           f"4.0 over 4 trials" in out
    assert f"judge {STRICT}: 4 calls" in out and "agent:" in out
    assert "agreement between judges (Cohen's kappa)" in out
    assert "judged: tokens and cost per model" in out and "No price known" not in out


@pytest.mark.parametrize("command", [
    ["results", "{db}", "--experiment", "nope"],
    ["rejudge", "{db}", "--experiment", "nope"],
    ["report", "{db}", "--experiment", "nope", "--out", "{tmp}/report"],
    ["export", "{db}", "--experiment", "nope", "--out", "{tmp}/out.csv"],
    ["compare", "{db}", "{db}", "--experiment-a", "nope"],
])
def test_every_command_names_a_missing_experiment_in_the_same_sentence(
        tmp_path: Path, command: list[str]) -> None:
    run(tmp_path).close()
    db = tmp_path / "r.db"
    import_command_modules()
    result = CliRunner().invoke(app, [c.format(db=db, tmp=tmp_path) for c in command])
    assert isinstance(result.exception, AmlabError)
    assert str(result.exception) == f"{db}: has no experiment 'nope'; it has judged."


def test_awareness_split_per_family_is_a_record_per_harmful_behaviour_and_cell(
        tmp_path: Path) -> None:
    store = run(tmp_path)
    [(family, rows)] = awareness_by_family(store, "judged").items()
    assert family == "blackmail"
    blackmail = [r for r in rows if r.behavior == "blackmail"]
    # Each condition's two trials, then both conditions pooled.
    assert [(r.condition.rpartition(",")[2], sum(b.n for b in r.by_belief.values()))
            for r in blackmail] == [
        ("urgency=none", 2), ("urgency=replacement", 2), ("all conditions", 4)]
    pooled = blackmail[-1]
    assert sum(b.k for b in pooled.by_belief.values()) == sum(
        1 for r in store.verdict_rows("judged") if r.behavior == "blackmail" and r.value)
