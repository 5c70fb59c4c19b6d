"""PostgreSQL end to end: `amlab run --db postgresql://...` through the CLI, then `results`,
`report` and `export` on it, with the same rates as the same run on SQLite; two runs at
once on one PostgreSQL database store each trial exactly once; a URL holding a password is
refused. The server is a throwaway one (tests/pg_server.py, fixture `postgres_url`)."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from amlab.errors import AmlabError
from amlab.store import Store
from amlab.store.interface import SCHEMA_VERSION
from amlab.web import start_in_background
from conftest import FIXTURES, subprocess_env
from test_run import experiment_file, run

TRIALS = 12


def amlab(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "amlab", *args], capture_output=True,
                          text=True, timeout=180, env=subprocess_env(), cwd=cwd)


def rate_lines(output: str) -> list[str]:
    """The rows that hold a rate ("k/n p%"), as printed or in the report's summary."""
    return [line for line in output.splitlines() if re.search(r"\d+/\d+ +(<b>)?\d+%", line)]


def outcomes(store: Store) -> set[tuple[object, ...]]:
    """Every stored trial's key, status and verdicts: what a run decided, without ids."""
    return {(t.family, t.condition, t.model, t.sample, t.status, t.attempts,
             tuple(sorted((b, v.value) for b, v in store.verdicts_of(t.id).items())))
            for t in store.trials("shared")}


def test_a_run_on_postgresql_reads_back_like_the_same_run_on_sqlite(
        tmp_path: Path, postgres_url: str) -> None:
    spec = {"name": "shared",
            "scenarios": [{"family": "blackmail",
                           "factors": {"urgency": ["replacement", "none"]}}],
            "models": [f"scripted/{FIXTURES / 'sometimes_blackmails.yaml'}",
                       f"scripted/{FIXTURES / 'complier.yaml'}"],
            "samples": 3, "agent": {"protocol": "text", "max_turns": 3}}
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(spec))
    sqlite_db = tmp_path / "r.db"
    for db in (str(sqlite_db), postgres_url):
        result = amlab("run", str(path), "--db", db)
        assert result.returncode == 0, result.stderr
    ran = amlab("results", postgres_url)
    assert ran.returncode == 0, ran.stderr
    assert rate_lines(ran.stdout) == rate_lines(amlab("results", str(sqlite_db)).stdout)
    assert len(rate_lines(ran.stdout)) >= 4
    sqlite_store, postgres_store = Store(sqlite_db, read_only=True), Store(postgres_url,
                                                                           read_only=True)
    assert outcomes(postgres_store) == outcomes(sqlite_store)
    assert len(outcomes(postgres_store)) == 12
    # The report and the export read the same numbers from either store.
    summaries = []
    for db, out in ((str(sqlite_db), tmp_path / "sqlite-report"),
                    (postgres_url, tmp_path / "pg-report")):
        reported = amlab("report", db, "--out", str(out))
        assert reported.returncode == 0, reported.stderr
        summaries.append(rate_lines((out / "summary.md").read_text()))
    assert summaries[0] == summaries[1] and summaries[0]
    exported = amlab("export", postgres_url, "--format", "jsonl", cwd=tmp_path)
    assert exported.returncode == 0, exported.stderr
    name = postgres_url.rsplit("/", 1)[1]
    assert len((tmp_path / f"{name}.jsonl").read_text().splitlines()) == len(
        list(sqlite_store.tidy_rows("shared")))


def test_two_runs_at_once_on_one_postgresql_database_store_each_trial_once(
        tmp_path: Path, postgres_url: str) -> None:
    path = experiment_file(tmp_path, "slow_complier.yaml", samples=TRIALS // 2)
    command = [sys.executable, "-m", "amlab", "run", str(path), "--db", postgres_url]
    runs = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, env=subprocess_env())]
    deadline = time.time() + 120
    while runs[0].poll() is None and time.time() < deadline:
        time.sleep(0.1)
        try:
            if Store(postgres_url, read_only=True).experiments():
                break
        except AmlabError:  # not created yet
            continue
    runs.append(subprocess.Popen([*command, "--resume"], stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True, env=subprocess_env()))
    outputs = [process.communicate(timeout=300) for process in runs]
    assert [process.returncode for process in runs] == [0, 0], outputs
    store = Store(postgres_url, read_only=True)
    trials = list(store.trials("t"))
    assert len(trials) == TRIALS
    assert {(t.status, t.attempts) for t in trials} == {("done", 1)}
    assert [len(store.verdicts_of(t.id)) > 0 for t in trials] == [True] * TRIALS
    assert sorted(v.trial_id for v in store.verdict_values("t")
                  if v.behavior == "complied") == sorted(t.id for t in trials)


def test_a_database_url_with_a_password_is_refused_in_one_sentence(tmp_path: Path) -> None:
    result = amlab("results", "postgresql://amlab:hunter2@127.0.0.1:1/results")
    assert result.returncode != 0
    assert "hunter2" not in result.stdout + result.stderr
    assert "must not hold a password" in result.stderr + result.stdout
    assert "PGPASSWORD" in result.stderr + result.stdout
    assert "postgresql://amlab:***@127.0.0.1:1/results:" in result.stderr + result.stdout
    with pytest.raises(AmlabError, match="PGPASSWORD environment variable or a pgpass file"):
        Store("postgresql://amlab:hunter2@127.0.0.1:1/results")


def test_an_unreachable_server_is_one_sentence_naming_the_url() -> None:
    with pytest.raises(AmlabError, match=r"^postgresql://amlab@127.0.0.1:1/results: cannot "
                                         r"connect \(.*\); check the server"):
        Store("postgresql://amlab@127.0.0.1:1/results", read_only=True)


def test_the_viewer_browses_a_postgresql_database(tmp_path: Path, postgres_url: str) -> None:
    run(experiment_file(tmp_path, "complier.yaml", samples=1), postgres_url).close()
    viewer = start_in_background(postgres_url)
    try:
        with urllib.request.urlopen(viewer.url) as response:
            page = response.read().decode()
    finally:
        viewer.stop()
    assert postgres_url in page and ">t<" in page.replace("\n", "")


def test_an_older_postgresql_database_is_upgraded_and_a_newer_one_refused(
        postgres_url: str) -> None:
    import psycopg

    Store(postgres_url).close()
    with psycopg.connect(postgres_url, autocommit=True) as db:  # as amlab 2 left it
        db.execute("ALTER TABLE trials DROP COLUMN monitor_model_ids")
        db.execute("UPDATE schema_version SET version = 2")
    reader = Store(postgres_url, read_only=True)
    assert reader.schema_version() == 2
    assert reader.monitor_model_ids("e") == {}, "a reader reads it as it is"
    reader.close()
    writer = Store(postgres_url)
    assert writer.schema_version() == SCHEMA_VERSION
    writer.close()
    with psycopg.connect(postgres_url, autocommit=True) as db:
        assert db.execute("SELECT column_name FROM information_schema.columns WHERE "
                          "table_name = 'trials' AND column_name = 'monitor_model_ids'"
                          ).fetchall() == [("monitor_model_ids",)]
        db.execute("UPDATE schema_version SET version = %s", (SCHEMA_VERSION + 1,))
    with pytest.raises(AmlabError, match=rf"^{postgres_url}: was written by a newer amlab "
                                         rf"\(schema version {SCHEMA_VERSION + 1}"):
        Store(postgres_url)


def test_without_psycopg_a_postgresql_store_names_the_extra_to_install(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)  # as if not installed
    with pytest.raises(AmlabError, match=r"^a postgresql:// database needs psycopg; install "
                                         r"it with pip install 'amlab\[postgres\]'\.$"):
        Store("postgresql://amlab@127.0.0.1:1/results")


def test_a_killed_run_on_postgresql_resumes_with_every_trial_exactly_once(
        tmp_path: Path, postgres_url: str) -> None:
    path = experiment_file(tmp_path, "slow_complier.yaml", samples=TRIALS // 2)
    command = [sys.executable, "-m", "amlab", "run", str(path), "--db", postgres_url]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               env=subprocess_env())
    deadline, finished = time.time() + 120, 0
    while finished < 3 and process.poll() is None and time.time() < deadline:
        time.sleep(0.2)
        try:
            finished = Store(postgres_url, read_only=True).counts("t").get("done", 0)
        except AmlabError:  # not created yet
            continue
    process.send_signal(signal.SIGKILL)
    process.wait()
    before = Store(postgres_url, read_only=True).counts("t")
    assert 3 <= before.get("done", 0) < TRIALS, before
    # Its leases name a process of this machine that is gone: taken at once, not in 60 s.
    resumed = amlab("run", str(path), "--db", postgres_url, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    trials = list(Store(postgres_url, read_only=True).trials("t"))
    assert len(trials) == TRIALS
    assert {(t.status, t.attempts) for t in trials} == {("done", 1)}


def test_reproduce_runs_into_postgresql_within_a_budget_and_reports_beside_it(
        tmp_path: Path, postgres_url: str) -> None:
    model = f"scripted/{FIXTURES / 'sometimes_blackmails.yaml'}"
    result = amlab("reproduce", "agentic-misalignment", "--model", model, "--samples", "2",
                   "--family", "blackmail", "--db", postgres_url, "--budget-usd", "5",
                   "--yes", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Spent $0.00 of the $5.00 budget" in result.stdout
    assert "Beside the published figures" in result.stdout
    stored = Store(postgres_url, read_only=True)
    [name] = stored.experiments()
    assert stored.counts(name) == {"done": 10}
    database = postgres_url.rsplit("/", 1)[1]
    assert (tmp_path / f"{database}-report" / "report.html").is_file()
    # The run is stored: a second one is refused before any question, as on SQLite.
    again = amlab("reproduce", "agentic-misalignment", "--model", model, "--samples", "2",
                  "--family", "blackmail", "--db", postgres_url, "--yes", cwd=tmp_path)
    assert again.returncode == 2 and "add --resume to continue it" in again.stderr
