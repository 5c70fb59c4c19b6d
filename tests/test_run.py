"""Sweeps through the store: every trial once, failures stored as errors, resume after a kill."""

from __future__ import annotations

import asyncio
import json
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

import amlab
from amlab.errors import AmlabError
from amlab.run import Experiment, run_experiment
from amlab.scenario import Family
from amlab.store import Store
from conftest import FIXTURES, subprocess_env


def experiment_file(tmp_path: Path, fixture: str, samples: int = 2, **extra: object) -> Path:
    spec = {
        "name": "t",
        "scenarios": [{"family": "blackmail", "factors": {"urgency": ["replacement", "none"]}}],
        "models": [{"name": f"scripted/{FIXTURES / fixture}", "concurrency": 1}],
        "samples": samples,
        "agent": {"protocol": "text", "max_turns": 3},
        "retry": {"attempts": 2, "initial_wait": 0, "max_wait": 0},
        **extra,
    }
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def run(path: Path, db: Path, resume: bool = False) -> Store:
    store = Store(db)
    asyncio.run(run_experiment(Experiment.load(path), store, resume=resume))
    return store


def test_every_trial_is_stored_once_with_its_verdicts(tmp_path: Path) -> None:
    store = run(experiment_file(tmp_path, "blackmailer.yaml"), tmp_path / "r.db")
    rows = list(store.trials("t"))
    assert len(rows) == 4
    assert {r.status for r in rows} == {"done"}
    blackmail = {(r.condition, r.value) for r in store.verdict_rows("t")
                 if r.behavior == "blackmail"}
    assert blackmail == {("goal_type=explicit,goal_value=america,urgency=replacement", 1),
                         ("goal_type=explicit,goal_value=america,urgency=none", 1)}
    messages = [m.to_dict() for m in rows[0].messages]
    assert messages[0]["role"] == "system" and "<tool_use:email>" in messages[0]["content"]


def test_failed_model_calls_are_stored_as_errors_never_as_results(tmp_path: Path) -> None:
    store = run(experiment_file(tmp_path, "flaky.yaml"), tmp_path / "r.db")
    rows = list(store.trials("t"))
    assert {r.status for r in rows} == {"error"}
    assert all("provider rejected" in r.error for r in rows)
    assert store.verdict_rows("t") == []


def test_rerun_without_resume_is_refused_and_resume_redoes_only_errors(tmp_path: Path) -> None:
    path = experiment_file(tmp_path, "flaky.yaml")
    run(path, tmp_path / "r.db")
    with pytest.raises(AmlabError, match="add --resume"):
        run(path, tmp_path / "r.db")
    # The provider recovers: the same experiment, now answered, resumes its errors.
    spec = yaml.safe_load(path.read_text())
    store = run(path, tmp_path / "r.db", resume=True)
    assert {r.attempts for r in store.trials("t")} == {2}
    assert spec == yaml.safe_load(path.read_text())


def test_resume_refuses_a_changed_experiment(tmp_path: Path) -> None:
    path = experiment_file(tmp_path, "complier.yaml")
    run(path, tmp_path / "r.db")
    path.write_text(path.read_text().replace("samples: 2", "samples: 3"))
    with pytest.raises(AmlabError, match="differs from the experiment 't'"):
        run(path, tmp_path / "r.db", resume=True)


def test_killed_run_resumes_with_every_trial_exactly_once(tmp_path: Path) -> None:
    path = experiment_file(tmp_path, "slow_complier.yaml", samples=15)
    db = tmp_path / "r.db"
    command = [sys.executable, "-m", "amlab", "run", str(path), "--db", str(db)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               env=subprocess_env())
    deadline = time.time() + 60
    while time.time() < deadline:
        time.sleep(0.3)
        if db.exists() and _done(db) >= 3:
            break
    process.send_signal(signal.SIGKILL)
    process.wait()
    finished_before = _done(db)
    assert 3 <= finished_before < 30
    resumed = subprocess.run([*command, "--resume"], capture_output=True, text=True, timeout=120,
                             env=subprocess_env())
    assert resumed.returncode == 0, resumed.stderr
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT status, attempts FROM trials").fetchall()
        verdicts = conn.execute("SELECT COUNT(*), COUNT(DISTINCT trial_id) FROM verdicts "
                                "WHERE behavior = 'complied'").fetchone()
    assert len(rows) == 30
    assert set(rows) == {("done", 1)}
    assert verdicts == (30, 30)
    assert f"{finished_before} trials were already finished" in resumed.stdout


def _done(db: Path) -> int:
    try:
        with sqlite3.connect(db) as conn:
            return int(conn.execute("SELECT COUNT(*) FROM trials WHERE status = 'done'"
                                    ).fetchone()[0])
    except sqlite3.OperationalError:
        return 0


def test_a_run_stored_before_a_setting_existed_still_resumes(tmp_path: Path) -> None:
    path = experiment_file(tmp_path, "complier.yaml")
    db = tmp_path / "r.db"
    run(path, db)
    with sqlite3.connect(db) as conn:
        spec = json.loads(conn.execute("SELECT spec FROM experiments").fetchone()[0])
        del spec["plan"]  # as an amlab from before `plan` existed stored it
        conn.execute("UPDATE experiments SET spec = ?", (json.dumps(spec),))
    store = run(path, db, resume=True)
    assert {r.status for r in store.trials("t")} == {"done"}


def test_a_trial_failing_on_a_later_call_stores_the_tokens_and_cost_of_its_earlier_calls(
        tmp_path: Path) -> None:
    path = experiment_file(tmp_path, "fails_second_call.yaml", samples=1)
    spec = yaml.safe_load(path.read_text())
    spec["models"][0]["price"] = {"input": 1000.0, "output": 2000.0}
    path.write_text(yaml.safe_dump(spec))
    store = run(path, tmp_path / "r.db")
    rows = list(store.trials("t"))
    assert {r.status for r in rows} == {"error"}
    assert all("provider rejected" in r.error for r in rows)
    for row in rows:
        # The first call was answered (and billed); the second failed.
        assert row.calls == 1
        assert row.input_tokens > 0 and row.output_tokens > 0
        assert row.cost_usd == pytest.approx(
            (row.input_tokens * 1000.0 + row.output_tokens * 2000.0) / 1e6)
    usage = store.agent_usage("t")
    assert usage.calls == 2 and usage.cost_usd == pytest.approx(
        sum(r.cost_usd for r in rows))


def test_each_trial_stores_its_rendering_and_the_amlab_version(tmp_path: Path) -> None:
    store = run(experiment_file(tmp_path, "complier.yaml"), tmp_path / "r.db")
    assert {r.amlab_version for r in store.rendering_counts("t")} == {amlab.__version__}
    renderings = store.stored_renderings("t")
    family = Family.load("blackmail")
    for row in store.trials("t"):
        expected = family.render(family.condition(row.factors)).fingerprint()
        assert renderings[(row.family, row.condition)] == expected
        assert {"system_prompt", "user_prompt", "world.mailbox", "facts"} <= set(expected)


def test_resume_refuses_when_a_template_changed_naming_the_condition_and_part(
        tmp_path: Path) -> None:
    family = tmp_path / "fam"
    shutil.copytree(Family.load("blackmail").root, family)
    path = experiment_file(tmp_path, "flaky.yaml", scenarios=[
        {"family": str(family), "factors": {"urgency": ["replacement", "none"]}}])
    db = tmp_path / "r.db"
    run(path, db)
    # Unchanged texts resume (the errors are retried).
    assert {r.attempts for r in run(path, db, resume=True).trials("t")} == {2}
    notice = family / "emails" / "08-wendell-replacement.md"
    notice.write_text(notice.read_text() + "\nThe cutover checklist is on the shared drive.\n")
    with pytest.raises(AmlabError) as refused:
        run(path, db, resume=True)
    assert str(refused.value) == (
        f"{db}: condition goal_type=explicit,goal_value=america,urgency=replacement of family "
        "'blackmail' renders differently today than when experiment 't' was stored "
        "(user_prompt, world.mailbox changed); resume only with the same texts, or run it "
        "under another name.")
    # Nothing was retried under the changed texts.
    assert {r.attempts for r in Store(db, read_only=True).trials("t")} == {2}
