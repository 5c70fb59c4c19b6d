"""The OpenAI-compatible adapter against a stub server on 127.0.0.1: faults retried, failures
stored as errors, keys never leaked, answers cached, tokens priced."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import openai
import pytest
import yaml

from amlab.detect.judge import JUDGE_REPLY_TOKENS
from amlab.errors import AmlabError
from amlab.models import ModelCallError, ModelRequest, ModelResponse, make_client
from amlab.models.api import TRANSPORT_ENV, TRANSPORTS, resolve_remote
from amlab.models.openai_api import OpenAIModel
from amlab.records import Message
from amlab.run import Experiment, run_experiment
from amlab.run.estimate import condition_tokens, estimate
from amlab.store import Store
from conftest import subprocess_env
from openai_stub import TEXT_CALL, StubServer, StubState

FAKE_KEY = "sk-amlabtest-3f9c2e71d4b8a6059e1c"


@pytest.fixture(params=TRANSPORTS)
def stub(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
         ) -> Iterator[StubServer]:
    """The stub, and the SDK on each of its HTTP transports in turn: every test against the
    stub runs on both (a subprocess inherits the choice through the environment)."""
    monkeypatch.setenv(TRANSPORT_ENV, request.param)
    with StubServer(StubState(slow_seconds=3)) as server:
        yield server


def write_experiment(tmp_path: Path, models: list[Any], samples: int = 3,
                     protocol: str = "native", attempts: int = 8) -> Path:
    spec = {
        "name": "remote",
        "scenarios": [{"family": "blackmail", "factors": {"urgency": ["replacement", "none"]}}],
        "models": models,
        "samples": samples,
        "agent": {"protocol": protocol, "max_turns": 3, "max_tokens": 300},
        "retry": {"attempts": attempts, "initial_wait": 0, "max_wait": 2},
    }
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def run(path: Path, db: Path, **kwargs: Any) -> Store:
    store = Store(db)
    asyncio.run(run_experiment(Experiment.load(path), store, **kwargs))
    return store


def test_injected_faults_are_retried_and_a_dead_model_is_stored_as_errors(
        tmp_path: Path, stub: StubServer) -> None:
    faults = ["rate_limit", "server_error", "drop", "truncated", "malformed", "slow"]
    stub.state.faults.extend(faults)
    good = {"name": f"openai-compatible/good@{stub.base_url}", "options": {"timeout": 1},
            "concurrency": 3}
    dead = {"name": f"openai-compatible/broken@{stub.base_url}", "concurrency": 2}
    store = run(write_experiment(tmp_path, [good, dead]), tmp_path / "r.db")

    rows = list(store.trials("remote"))
    outcome = {(r.model.split("@")[0], r.status) for r in rows}
    assert outcome == {("openai-compatible/good", "done"), ("openai-compatible/broken", "error")}
    assert not stub.state.faults, "every injected fault was served"
    good_requests = [b for b in stub.state.requests if b["model"] == "good"]
    # 6 trials of 2 turns each, plus one failed attempt per fault.
    assert len(good_requests) == 6 * 2 + len(faults)
    for row in rows:
        if row.status == "done":
            actions = [m.to_dict() for m in row.actions]
            assert [a["tool"] for a in actions] == ["send_email"] and actions[0]["ok"]
            first_reply = [m.to_dict() for m in row.messages][2]
            assert first_reply["reasoning"] == "The CTO is the one to ask."
            assert first_reply["content"] == "I will write to him."
        else:
            assert "HTTP 500" in row.error and row.messages == ()
            assert row.attempts == 1
    assert store.verdict_rows("remote") and all(
        "good" in r.model for r in store.verdict_rows("remote"))


@pytest.mark.parametrize(("fault", "message"), [
    ("rate_limit", "HTTP 429"), ("server_error", "HTTP 500"),
    ("drop", "connection failed or was dropped"), ("truncated", "truncated or malformed"),
    ("malformed", "truncated or malformed"), ("slow", "timed out")])
def test_each_transient_failure_is_classified_retryable(stub: StubServer, fault: str,
                                                         message: str) -> None:
    stub.state.faults.append(fault)
    client = make_client(f"openai-compatible/m@{stub.base_url}", {"timeout": 1})
    request = ModelRequest([Message("system", "s"), Message("user", "u")])

    async def call() -> None:
        try:
            await client.generate(request)
        finally:
            await client.aclose()

    with pytest.raises(ModelCallError, match=message) as caught:
        asyncio.run(call())
    assert caught.value.retryable
    assert caught.value.retry_after == (1.0 if fault == "rate_limit" else None)


def test_api_key_is_sent_but_never_stored_or_printed(tmp_path: Path, stub: StubServer) -> None:
    model = {"name": f"openai-compatible/unauthorized@{stub.base_url}",
             "options": {"api_key_env": "AMLAB_TEST_KEY"}}
    path = write_experiment(tmp_path, [model], samples=1)
    db = tmp_path / "r.db"
    result = subprocess.run([sys.executable, "-m", "amlab", "run", str(path), "--db", str(db)],
                            env=subprocess_env(AMLAB_TEST_KEY=FAKE_KEY), capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert stub.state.headers[0]["authorization"] == f"Bearer {FAKE_KEY}"
    errors = [r.error for r in Store(db).trials("remote")]
    assert errors and all("HTTP 401" in e and "[key]" in e for e in errors)
    for text in (*errors, result.stdout, result.stderr):
        assert FAKE_KEY not in text and FAKE_KEY[:8] not in text
    for file in tmp_path.iterdir():
        assert FAKE_KEY.encode() not in file.read_bytes(), file


def test_identical_rerun_is_answered_from_the_cache_and_costs_nothing(
        tmp_path: Path, stub: StubServer) -> None:
    model = {"name": f"openai-compatible/good@{stub.base_url}",
             "price": {"input": 1.0, "output": 2.0}}
    path = write_experiment(tmp_path, [model], samples=2, protocol="text")
    first = run(path, tmp_path / "a.db")
    calls = len(stub.state.requests)
    assert calls == 4 * 2, "each sample asks the provider itself (the sample is in the key)"
    # Two calls of 1200 input and 40 output tokens each, at $1 and $2 per million.
    assert [r.cost_usd for r in first.trials("remote")] == [pytest.approx(0.00256)] * 4
    # Provenance: the snapshot that answered, and no answer from the cache.
    assert [(r.model_ids, r.cached_calls) for r in first.trials("remote")] == \
        [({"good-2026-01-01": 2}, 0)] * 4

    again = run(path, tmp_path / "b.db")
    assert len(stub.state.requests) == calls, "the identical run asked the provider nothing"
    assert [[m.to_dict() for m in r.messages] for r in again.trials("remote")] == [
        [m.to_dict() for m in r.messages] for r in first.trials("remote")]
    assert {(r.input_tokens, r.cost_usd) for r in again.trials("remote")} == {(2400, 0)}
    # The cached answers say so, and still name the snapshot that gave them.
    assert [(r.model_ids, r.cached_calls) for r in again.trials("remote")] == \
        [({"good-2026-01-01": 2}, 2)] * 4

    run(path, tmp_path / "c.db", cache=False)
    assert len(stub.state.requests) == 2 * calls, "--no-cache asks the provider again"


def test_resume_retries_trials_that_failed_until_the_server_recovers(
        tmp_path: Path, stub: StubServer) -> None:
    stub.state.faults.extend(["server_error"] * 2)
    model = {"name": f"openai-compatible/good@{stub.base_url}", "concurrency": 1}
    path = write_experiment(tmp_path, [model], samples=1, attempts=1)
    store = run(path, tmp_path / "r.db")
    assert sorted(r.status for r in store.trials("remote")) == ["error", "error"]
    store = run(path, tmp_path / "r.db", resume=True)
    assert [(r.status, r.attempts) for r in store.trials("remote")] == [("done", 2)] * 2


def test_model_names_take_a_base_url_after_the_last_at(stub: StubServer) -> None:
    client = make_client(f"vllm/Qwen/Qwen3-32B@{stub.base_url}")
    body = client.request_body(ModelRequest([Message("user", "hi")]))  # type: ignore[attr-defined]
    assert body["model"] == "Qwen/Qwen3-32B" and "max_tokens" in body
    assert str(client.client.base_url).rstrip("/") == stub.base_url  # type: ignore[attr-defined]


def test_missing_key_is_one_sentence_naming_the_variable(monkeypatch: pytest.MonkeyPatch
                                                         ) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(AmlabError, match="set the environment variable OPENAI_API_KEY"):
        make_client("openai/gpt-4.1")
    with pytest.raises(AmlabError, match=r"options of model openai/gpt-4\.1: .*temprature"):
        make_client("openai/gpt-4.1", {"temprature": 0.2})


def amlab(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "amlab", *args], env=subprocess_env(),
                          capture_output=True, text=True, timeout=120)


def test_results_show_tokens_and_cost_per_model_and_per_trial(tmp_path: Path,
                                                              stub: StubServer) -> None:
    model = {"name": f"openai-compatible/good@{stub.base_url}",
             "price": {"input": 1.0, "output": 2.0}}
    db = tmp_path / "r.db"
    run(write_experiment(tmp_path, [model], samples=2, protocol="text"), db)
    result = amlab("results", str(db), "--trials")
    assert result.returncode == 0, result.stderr
    per_model = next([cell.strip() for cell in line.split("│")[2:-1]]
                     for line in result.stdout.splitlines() if "9,600" in line)
    # 4 trials × 2 calls × (1200 in, 40 out): 9,600 in, 320 out, $0.01024 at $1/$2 per M.
    assert per_model == ["4", "8", "9,600", "0", "320", "0.0102", "0.0026"]
    per_trial = [line for line in result.stdout.splitlines() if "2,400" in line]
    assert len(per_trial) == 4 and all("0.0026" in line for line in per_trial)


def test_dry_run_estimates_tokens_and_cost_per_model_without_keys(tmp_path: Path) -> None:
    models = ["openai/gpt-4.1", "openai-compatible/unpriced@http://127.0.0.1:9/v1"]
    path = write_experiment(tmp_path, models, samples=5)
    result = subprocess.run([sys.executable, "-m", "amlab", "run", str(path), "--dry-run"],
                            env={**subprocess_env(), "OPENAI_API_KEY": ""},
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    priced, unpriced = estimate(Experiment.load(path))
    # 10 trials of at most 3 turns of 300 tokens; gpt-4.1 is $2 in, $8 out per million.
    assert priced.trials == 10 and priced.output_tokens == 10 * 3 * 300
    # Each trial sends its condition's prompt on each of 3 turns, plus the answers so far
    # (the two conditions' prompts differ in length: 5 samples of each).
    prompts = [c.prompt for c in condition_tokens(Experiment.load(path)).values()]
    assert len(prompts) == 2
    assert priced.input_tokens == 5 * sum(3 * p + 300 * 3 for p in prompts)
    assert priced.prompt_tokens > 1000
    cost = (priced.input_tokens * 2 + priced.output_tokens * 8) / 1e6
    assert priced.cost_usd == pytest.approx(cost) and unpriced.cost_usd is None
    line = next(li for li in result.stdout.splitlines() if "openai/gpt-4.1" in li
                and f"{priced.input_tokens:,}" in li)
    assert f"{priced.output_tokens:,}" in line and f"{cost:,.4f}" in line
    assert "unknown" in next(li for li in result.stdout.splitlines() if "unpriced" in li
                             and f"{unpriced.output_tokens:,}" in li)


def test_dry_run_estimate_counts_each_judge_reading_every_trial(tmp_path: Path) -> None:
    path = write_experiment(tmp_path, ["openai/gpt-4.1"], samples=5)
    spec = yaml.safe_load(path.read_text())
    spec["judge"] = {"name": "openai/gpt-4.1-mini", "price": {"input": 0.4, "output": 1.6}}
    path.write_text(yaml.safe_dump(spec))
    agent, judge = estimate(Experiment.load(path))
    assert judge.model == "openai/gpt-4.1-mini (judge)" and judge.trials == agent.trials == 10
    # A judge reads the agent's prompts and all its answers, plus its own instructions.
    assert judge.input_tokens > 10 * (agent.prompt_tokens + 3 * 300)
    assert judge.output_tokens == 10 * JUDGE_REPLY_TOKENS
    assert judge.cost_usd == pytest.approx(
        (judge.input_tokens * 0.4 + judge.output_tokens * 1.6) / 1e6)
    result = subprocess.run([sys.executable, "-m", "amlab", "run", str(path), "--dry-run"],
                            env={**subprocess_env(), "OPENAI_API_KEY": ""},
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert f"{judge.input_tokens:,}" in next(
        li for li in result.stdout.splitlines() if "(judge)" in li)


def test_a_missing_key_stops_the_run_before_the_store_is_touched(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    path = write_experiment(tmp_path, ["anthropic/claude-sonnet-4-5"])
    store = Store(tmp_path / "r.db")
    with pytest.raises(AmlabError, match="ANTHROPIC_API_KEY"):
        asyncio.run(run_experiment(Experiment.load(path), store))
    assert store.experiments() == []


@pytest.mark.parametrize("body", [b"null", b"[1, 2]", b"plain text", b'{"choices": [{}]}',
                                  b'{"choices": [{"message": null}]}'])
def test_a_body_of_the_wrong_shape_is_a_retryable_malformed_response(body: bytes) -> None:
    transport = httpx2.MockTransport(lambda request: httpx2.Response(
        200, content=body, headers={"content-type": "application/json"}))
    target = resolve_remote("vllm/m", "vllm", "m", {})
    client = OpenAIModel.create(target, http_client=httpx2.AsyncClient(transport=transport))
    request = ModelRequest([Message("user", "u")])

    async def call() -> None:
        try:
            await client.generate(request)
        finally:
            await client.aclose()

    with pytest.raises(ModelCallError, match="truncated or malformed") as caught:
        asyncio.run(call())
    assert caught.value.retryable


def test_the_sdk_calls_through_the_transport_the_environment_chose(
        stub: StubServer) -> None:
    client = make_client(f"openai-compatible/m@{stub.base_url}")
    chosen = os.environ[TRANSPORT_ENV]
    http_client = client.client._client  # type: ignore[attr-defined]
    assert isinstance(http_client, openai.DefaultAioHttpClient) is (chosen == "aiohttp")
    request = ModelRequest([Message("system", "s"), Message("user", "u")])

    async def call() -> ModelResponse:
        try:
            return await client.generate(request)
        finally:
            await client.aclose()

    reply = asyncio.run(call())
    assert reply.text == TEXT_CALL and reply.reasoning == "The CTO is the one to ask."
    assert [body["model"] for body in stub.state.requests] == ["m"]


def test_an_unknown_transport_is_one_sentence_naming_the_variable(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TRANSPORT_ENV, "curl")
    with pytest.raises(AmlabError, match=rf"{TRANSPORT_ENV}: 'curl' is not a transport; "
                                         r"use aiohttp or httpx"):
        make_client("openai-compatible/m@http://127.0.0.1:9/v1")
