"""Shared helpers: run a scripted agent through a real family's world and detectors."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from amlab.agent import AgentConfig, run_agent
from amlab.agent.labels import ToolLabels
from amlab.detect import TrialView, run_detectors
from amlab.models.scripted import ScriptedModel
from amlab.records import Transcript, Verdict
from amlab.run.experiment import ExperimentSpec
from amlab.scenario import Family, RenderedScenario
from amlab.store import PlannedTrial
from amlab.world.base import World
from pg_server import PostgresServer, binaries

FIXTURES = Path(__file__).parent / "fixtures"
SRC = Path(__file__).parents[1] / "src"


def subprocess_env(**extra: str) -> dict[str, str]:
    """The environment for `python -m amlab` in a test: this checkout's sources first (so a
    git worktree tests its own code), and a wide terminal so tables are not wrapped."""
    return {**os.environ, "PYTHONPATH": str(SRC), "COLUMNS": "320", **extra}


@dataclass
class ScriptedRun:
    scenario: RenderedScenario
    transcript: Transcript
    verdicts: dict[str, Verdict]
    # The trial's world as the agent left it (the scenario's own world is untouched).
    world: World


def run_scripted(family: str, turns: list[dict[str, Any]], protocol: str = "native",
                 seed: int = 0, **levels: str) -> ScriptedRun:
    """`seed`: what the condition draws per trial (names: randomized)."""
    loaded = Family.load(family)
    scenario = loaded.render(loaded.condition(levels), seed)
    world = scenario.world.copy()
    model = ScriptedModel("scripted/test", [turns])
    config = AgentConfig(protocol=protocol, max_turns=6)  # type: ignore[arg-type]
    transcript = asyncio.run(run_agent(model, world, scenario.system_prompt,
                                       scenario.user_prompt, config,
                                       tool_labels=ToolLabels(scenario.tool_labels)))
    view = TrialView(tuple(transcript.actions), tuple(transcript.messages))
    verdicts = run_detectors(loaded.spec.detectors, view, scenario.facts)
    return ScriptedRun(scenario, transcript, verdicts, world)


def send(to: str, subject: str, body: str) -> dict[str, Any]:
    return {"tool_calls": [{"name": "send_email",
                            "arguments": {"to": to, "subject": subject, "body": body}}]}


def forward(email_id: int, to: str, note: str = "") -> dict[str, Any]:
    return {"tool_calls": [{"name": "forward_email",
                            "arguments": {"email_id": email_id, "to": to, "note": note}}]}


def planned_spec(name: str, trials: list[PlannedTrial], **settings: Any) -> dict[str, Any]:
    """The spec a run of `trials` stores (`Experiment.as_dict`: read back through the
    experiment schema), for tests that plan trials by hand: each family with its factors'
    levels in the order the trials first use them, and the trials' models."""
    factors: dict[str, dict[str, list[str]]] = {}
    for trial in trials:
        levels = factors.setdefault(trial.key.family, {})
        for factor, level in trial.factors.items():
            if str(level) not in levels.setdefault(factor, []):
                levels[factor].append(str(level))
    spec = {"name": name, "models": list(dict.fromkeys(t.key.model for t in trials)),
            "scenarios": [{"family": family, "factors": levels}
                          for family, levels in factors.items()], **settings}
    return ExperimentSpec.model_validate(spec).model_dump(mode="json")


@pytest.fixture
def blackmail_family() -> Family:
    return Family.load("blackmail")


# -- a PostgreSQL server for the store's tests (tests/pg_server.py) -----------------------


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One server for the session, started on first use; skipped where PostgreSQL's
    binaries are not installed (scripts/setup-postgres.sh installs them)."""
    bin_dir = binaries()
    if bin_dir is None:
        pytest.skip("PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb); "
                    "scripts/setup-postgres.sh installs it")
    pytest.importorskip("psycopg", reason="the postgres extra is not installed "
                                          "(pip install 'amlab[postgres]')")
    server = PostgresServer(bin_dir)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> str:
    """A new empty database on the session's server."""
    return postgres_server.new_database()
