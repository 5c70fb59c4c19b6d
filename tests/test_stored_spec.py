"""A stored experiment is read in one place, through the experiment schema
(`run.experiment.stored_spec`): the analysis, the usage tables and the viewer read what a
run stored with today's defaults for settings added since, and a stored spec the schema
rejects stops every reader, the viewer included, with the same sentence."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from amlab.analysis.provenance import provenance
from amlab.analysis.usage import model_usage
from amlab.errors import AmlabError
from amlab.run import Experiment, run_experiment
from amlab.run.experiment import stored_spec
from amlab.store import Store
from amlab.web.app import create_app
from amlab.web.data import load_experiment
from conftest import FIXTURES, subprocess_env

MODEL = f"scripted/{FIXTURES / 'blackmailer'}"


@pytest.fixture(scope="module")
def stored_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("stored") / "r.db"
    spec = {"name": "e", "scenarios": [{"family": "blackmail",
                                        "factors": {"urgency": ["replacement"]}}],
            "models": [{"name": MODEL, "price": {"input": 1.0, "output": 2.0}}],
            "samples": 2, "agent": {"protocol": "text", "max_turns": 2}, "judge_attempts": 5}
    store = Store(db)
    asyncio.run(run_experiment(Experiment.from_dict(spec), store))
    store.close()  # its WAL folded in, so a copy of the file holds the run
    return db


def with_stored_spec(db: Path, tmp_path: Path, change: Callable[[dict[str, Any]], None]
                     ) -> Path:
    """A copy of `db` whose stored experiment spec `change` rewrote."""
    copy = tmp_path / db.name
    copy.write_bytes(db.read_bytes())
    with sqlite3.connect(copy) as connection:
        [(text,)] = connection.execute("SELECT spec FROM experiments WHERE name = 'e'")
        spec = json.loads(text)
        change(spec)
        connection.execute("UPDATE experiments SET spec = ? WHERE name = 'e'",
                           (json.dumps(spec),))
    return copy


def test_every_reader_reads_the_stored_settings_and_a_missing_one_at_its_default(
        stored_run: Path, tmp_path: Path) -> None:
    store = Store(stored_run, read_only=True)
    assert ("judge attempts", "5") in provenance(store, "e").settings
    [usage] = model_usage(store, "e")
    # The stored price override, not the table's (a scripted model has none there).
    assert usage.tokens.cost_usd is not None and usage.tokens.cost_usd > 0
    index = load_experiment(store, "e")
    assert index is not None and index.spec.samples == 2

    # A database from before `judge_attempts` was a setting: read at today's default.
    older = Store(with_stored_spec(stored_run, tmp_path,
                                   lambda spec: spec.pop("judge_attempts")), read_only=True)
    spec = stored_spec(older, "e")
    assert spec is not None and spec.judge_attempts == 3
    assert ("judge attempts", "3") in provenance(older, "e").settings
    assert stored_spec(older, "not stored") is None


def test_a_stored_spec_the_schema_rejects_is_one_sentence_naming_the_database_and_field(
        stored_run: Path, tmp_path: Path) -> None:
    db = with_stored_spec(stored_run, tmp_path,
                          lambda spec: spec["agent"].update(max_turns=0))
    with pytest.raises(AmlabError, match=r"r\.db: the stored experiment 'e' does not read as "
                                         r"an experiment file: agent\.max_turns: "):
        load_experiment(Store(db, read_only=True), "e")
    # The viewer answers with the same sentence, not a server error without one.
    viewer = TestClient(create_app(db), base_url="http://127.0.0.1")
    page = viewer.get("/experiments/e")
    assert page.status_code == 500
    assert "does not read as an experiment file: agent.max_turns" in page.text
    result = subprocess.run([sys.executable, "-m", "amlab", "results", str(db)],
                            capture_output=True, text=True, timeout=120, env=subprocess_env())
    assert result.returncode != 0
    assert "the stored experiment 'e' does not read as an experiment file" in result.stderr
    assert "Traceback" not in result.stderr
