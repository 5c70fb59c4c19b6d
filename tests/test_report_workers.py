"""`amlab report` draws its figures in worker processes: killing the report, by SIGKILL too,
must not leave them running (each holds ~200 MB, the database and the caller's pipes)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import FIXTURES, subprocess_env
from test_report import run_into

SOMETIMES = f"scripted/{FIXTURES / 'sometimes_blackmails.yaml'}"


def children_of(pid: int) -> set[int]:
    """Live processes whose parent is `pid` (zombies are dead: they hold no memory)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        state, parent = stat.rsplit(")", 1)[1].split()[:2]
        if int(parent) == pid and state != "Z":
            found.add(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not sys.platform.startswith("linux") or (os.cpu_count() or 1) < 2,
                    reason="figure workers run on Linux with two cores or more")
def test_killing_the_report_mid_draw_leaves_no_figure_worker_alive(tmp_path: Path) -> None:
    db = run_into(tmp_path / "r.db", "scripted", [SOMETIMES], 2)
    report = subprocess.Popen([sys.executable, "-m", "amlab", "report", str(db)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              env=subprocess_env())
    workers: set[int] = set()
    deadline = time.time() + 120
    while not workers and report.poll() is None and time.time() < deadline:
        workers = children_of(report.pid)
        time.sleep(0.01)
    assert workers, "the report finished before it started any figure worker"
    time.sleep(0.2)  # the pool starts its workers together: catch them all
    workers |= children_of(report.pid)
    report.send_signal(signal.SIGKILL)
    report.wait()
    deadline = time.time() + 10
    while any(alive(pid) for pid in workers) and time.time() < deadline:
        time.sleep(0.1)
    survivors = [pid for pid in workers if alive(pid)]
    for pid in survivors:  # do not leave them to the next test either
        os.kill(pid, signal.SIGKILL)
    assert survivors == []
