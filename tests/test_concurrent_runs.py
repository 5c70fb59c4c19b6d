"""Two `amlab run` processes on one database: each trial is attempted once in total, the
work is split between them, and of two fresh runs of one experiment only one runs."""

from __future__ import annotations

import re
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

import amlab.run.runner
from amlab.errors import AmlabError
from conftest import FIXTURES, subprocess_env
from test_run import experiment_file, run

TRIALS = 24


def planned(db: Path) -> bool:
    if not db.exists():  # connecting would create it
        return False
    try:
        with sqlite3.connect(db) as conn:
            return bool(conn.execute("SELECT COUNT(*) FROM experiments").fetchone()[0])
    except sqlite3.OperationalError:
        return False


def ran_by(output: str) -> int:
    """How many trials a run attempted itself: the planned ones minus those it found
    finished and those another run did (both printed when not zero)."""
    text = " ".join(output.split())
    skipped = re.search(r"(\d+) trials were already finished", text)
    elsewhere = re.search(r"(\d+) trials were run by another amlab run", text)
    return TRIALS - sum(int(m.group(1)) for m in (skipped, elsewhere) if m)


def test_two_run_processes_on_one_database_attempt_every_trial_once_in_total(
        tmp_path: Path) -> None:
    # A trial takes a second (two calls of 0.5 s): longer than the processes' start skew.
    fixture = tmp_path / "slower.yaml"
    fixture.write_text((FIXTURES / "slow_complier.yaml").read_text().replace(
        "delay: 0.2", "delay: 0.5"))
    path = experiment_file(tmp_path, str(fixture), samples=TRIALS // 2)
    db = tmp_path / "r.db"
    command = [sys.executable, "-m", "amlab", "run", str(path), "--db", str(db)]
    # A fresh run, and once it has stored the experiment, a resumed one on the same database.
    runs = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, env=subprocess_env())]
    deadline = time.time() + 120
    while not planned(db) and runs[0].poll() is None and time.time() < deadline:
        time.sleep(0.1)
    runs.append(subprocess.Popen([*command, "--resume"], stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True, env=subprocess_env()))
    outputs = [process.communicate(timeout=300) for process in runs]
    assert [process.returncode for process in runs] == [0, 0], outputs
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT status, attempts, owner FROM trials").fetchall()
    assert len(rows) == TRIALS
    assert set(rows) == {("done", 1, None)}
    # Each process counts the trials it ran itself: together exactly the planned ones, and
    # both took a share.
    ran = [ran_by(out) for out, _ in outputs]
    assert sum(ran) == TRIALS
    assert min(ran) > 0, ran


def test_of_two_fresh_runs_racing_past_the_stored_check_the_second_is_refused(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = experiment_file(tmp_path, "complier.yaml", samples=1)
    first = run(path, tmp_path / "r.db")
    # The second run checked before the first stored the experiment (the race window).
    monkeypatch.setattr(amlab.run.runner, "check_resumable", lambda *args: None)
    with pytest.raises(AmlabError, match="already stored there; add --resume"):
        run(path, tmp_path / "r.db")
    assert {(r.status, r.attempts) for r in first.trials("t")} == {("done", 1)}
