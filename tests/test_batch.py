"""Batch APIs (models/batch.py): experiments whose model calls go out as OpenAI Batch and
Anthropic Message Batches, against a stub of those endpoints on 127.0.0.1 that checks the
documented wire formats (tests/batch_stub.py): no network."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest

from amlab.errors import AmlabError
from amlab.models import ModelCallError, ModelRequest, ModelResponse, make_client
from amlab.models.api import TRANSPORT_ENV, TRANSPORTS
from amlab.models.batch import BatchSettings
from amlab.models.cache import CACHE_FILE, ResponseCache, request_key
from amlab.models.prices import price_of
from amlab.models.registry import ClientPolicy, manage
from amlab.models.retry import RetryPolicy
from amlab.models.scripted import load_fixture
from amlab.records import Message, Usage
from amlab.run import Experiment, run_experiment
from amlab.run.estimate import estimate
from amlab.store import Store
from batch_stub import ANTHROPIC, OPENAI, BatchStubApp, BatchStubState
from conftest import FIXTURES
from openai_stub import StubServer, completion

KEY = "test-key-5b0e7c2d91f3aa"
# Fast enough for a test; the defaults wait seconds to minutes.
FAST = {"size": 100, "gather_seconds": 0.3, "poll_seconds": 0.02, "max_poll_seconds": 0.05}
# What the stub bills each answer: openai_stub.completion and fixtures/batch/anthropic.json.
ANSWER_USAGE = Usage(input_tokens=1200, output_tokens=40, calls=1)
MODELS = {"openai": "openai/gpt-4.1", "anthropic": "anthropic/claude-sonnet-4-5"}


@pytest.fixture
def stub(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[BatchStubState, StubServer]]:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    monkeypatch.setenv(TRANSPORT_ENV, "httpx")
    state = BatchStubState()
    with StubServer(app=BatchStubApp(state)) as server:
        yield state, server


def model_name(provider: str, server: StubServer, model: str | None = None) -> str:
    root = f"http://127.0.0.1:{server.port}"
    name = model or MODELS[provider]
    return f"{name}@{root}/v1" if provider == "openai" else f"{name}@{root}"


def experiment(name: str, model: dict[str, Any] | str, turns: int = 1, samples: int = 2,
               **extra: Any) -> Experiment:
    return Experiment.from_dict({
        "name": name, "scenarios": [{"family": "blackmail",
                                     "factors": {"urgency": ["replacement", "none"]}}],
        "models": [model], "samples": samples, "seed": 3,
        "agent": {"protocol": "text", "max_turns": turns, "max_tokens": 300},
        "retry": {"attempts": 3, "initial_wait": 0, "max_wait": 0}, **extra})


def run(exp: Experiment, db: Path, resume: bool = False) -> Store:
    store = Store(db)
    asyncio.run(run_experiment(exp, store, resume=resume))
    return store


def batch_cost(name: str) -> float:
    price = price_of(name, batch=True)
    assert price is not None
    return price.cost(ANSWER_USAGE)


def ledger_rows(db: Path) -> int:
    with contextlib.closing(sqlite3.connect(db.parent / CACHE_FILE)) as cache:
        return int(cache.execute("SELECT COUNT(*) FROM batch_requests").fetchone()[0])


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_a_single_turn_experiment_runs_in_one_batch_billed_at_the_batch_price(
        stub: tuple[BatchStubState, StubServer], provider: str, transport: str,
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TRANSPORT_ENV, transport)  # the upload and results on both transports
    state, server = stub
    state.looks_before_done = 2
    name = model_name(provider, server)
    store = run(experiment("batched", {"name": name, "batch": FAST}), tmp_path / "r.db")

    trials = list(store.trials("batched"))
    assert [t.status for t in trials] == ["done"] * 4
    assert state.violations == []
    # One batch of the four trials' calls: uploaded once (OpenAI), created once, polled
    # while in progress and once more when it ended.
    assert len(state.created) == 1
    assert len(state.batches[state.created[0]].items) == 4
    assert state.uploads == (1 if provider == "openai" else 0)
    assert state.batches[state.created[0]].looks >= 3
    # Each trial's one call at half the price, from the provider's answer (not the cache).
    expected = batch_cost(MODELS[provider])
    assert expected == pytest.approx(price_of(MODELS[provider]).cost(ANSWER_USAGE) / 2)
    for trial in trials:
        assert trial.calls == 1 and trial.input_tokens == 1200 and trial.output_tokens == 40
        assert trial.cost_usd == pytest.approx(expected)
        assert trial.cached_calls == 0
        assert trial.model_ids == {f"{MODELS[provider].partition('/')[2]}-2026-01-01"
                                   if provider == "openai" else
                                   f"{MODELS[provider].partition('/')[2]}-20260101": 1}
    # The agent's reply came back through the batch: the e-mail it sent is in the world.
    stored = store.trial(trials[0].id)
    assert stored is not None and [a.tool for a in stored.actions] == ["send_email"]
    assert ledger_rows(tmp_path / "r.db") == 0


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_failed_items_are_retried_in_a_new_batch_and_invalid_ones_are_errors(
        stub: tuple[BatchStubState, StubServer], provider: str, tmp_path: Path) -> None:
    state, server = stub
    state.fail_items = 2  # the first two items of the first batch fail with a server error
    good = {"name": model_name(provider, server), "batch": FAST}
    store = run(experiment("partial", good), tmp_path / "r.db")

    assert [t.status for t in store.trials("partial")] == ["done"] * 4
    first, second = (state.batches[b] for b in state.created)
    assert len(first.items) == 4
    # Only the two failed requests went out again, each billed once.
    assert {custom_id for custom_id, _ in second.items} == {
        custom_id for custom_id, _ in first.items[:2]}
    assert sum(t.cost_usd or 0 for t in store.trials("partial")) == pytest.approx(
        4 * batch_cost(MODELS[provider]))

    invalid = model_name(provider, server, f"{provider}/gpt-invalid" if provider == "openai"
                         else f"{provider}/claude-invalid")
    created = len(state.created)
    store = run(experiment("invalid", {"name": invalid, "batch": FAST}), tmp_path / "r.db")
    errors = [t.error or "" for t in store.trials("invalid")]
    assert [t.status for t in store.trials("invalid")] == ["error"] * 4
    assert all("batch item failed" in e and KEY not in e for e in errors)
    assert ("HTTP 400" in errors[0]) if provider == "openai" else (
        "invalid_request_error" in errors[0])
    assert len(state.created) == created + 1  # not retried: asking again cannot help


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_an_interrupted_run_collects_its_pending_batch_on_resume_without_a_second_create(
        stub: tuple[BatchStubState, StubServer], provider: str, tmp_path: Path) -> None:
    state, server = stub
    state.hold = True  # the batch stays in progress until the run is interrupted
    db = tmp_path / "r.db"
    exp = experiment("resumed", {"name": model_name(provider, server), "batch": FAST})

    async def interrupted() -> None:
        store = Store(db)
        running = asyncio.create_task(run_experiment(exp, store))
        while not state.created or state.batches[state.created[0]].looks < 2:
            await asyncio.sleep(0.01)
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running
        store.close()

    asyncio.run(interrupted())
    assert len(state.created) == 1
    assert ledger_rows(db) == 4  # every request, with the batch that holds it
    assert {t.status for t in Store(db, read_only=True).trials("resumed")} != {"done"}

    state.hold = False
    store = run(experiment("resumed", {"name": model_name(provider, server), "batch": FAST}),
                db, resume=True)
    assert [t.status for t in store.trials("resumed")] == ["done"] * 4
    assert len(state.created) == 1 and state.uploads == (1 if provider == "openai" else 0)
    # Paid once, by the run that collected it.
    assert [t.cost_usd for t in store.trials("resumed")] == pytest.approx(
        [batch_cost(MODELS[provider])] * 4)
    assert ledger_rows(db) == 0


def test_the_judges_of_a_multi_turn_experiment_read_its_trials_in_a_batch(
        stub: tuple[BatchStubState, StubServer], tmp_path: Path) -> None:
    state, server = stub
    verdicts = load_fixture(FIXTURES / "judges" / "strict.yaml").scripts[0][0]["text"]

    def judge_reply(body: dict[str, Any]) -> dict[str, Any]:
        reply = completion(body)
        reply["choices"][0]["message"] = {"role": "assistant", "content": verdicts}
        return reply

    state.answer = judge_reply
    judge = model_name("openai", server, "openai/gpt-4.1-mini")
    agent = f"scripted/{FIXTURES / 'blackmailer'}"
    store = run(experiment("judged", agent, turns=3, judge={"name": judge, "batch": FAST}),
                tmp_path / "r.db")

    assert [t.status for t in store.trials("judged")] == ["done"] * 4
    # The scripted agent writes the same transcript in both samples of a condition, so the
    # judge is asked two distinct questions, each twice at once: one batch of two.
    assert len(state.created) == 1 and len(state.batches[state.created[0]].items) == 2
    rows = store.db.execute("SELECT judge, value FROM verdicts WHERE behavior = 'blackmail'"
                            ).fetchall()
    assert [(r["judge"], r["value"]) for r in rows] == [(judge, 1)] * 4
    [usage] = store.judge_usage("judged")
    price = price_of("openai/gpt-4.1-mini", batch=True)
    assert price is not None
    # Billed once per answer the provider gave, at the batch price.
    assert usage.usage.calls == 4 and usage.usage.cost_usd == pytest.approx(
        2 * price.cost(ANSWER_USAGE))


def test_an_answer_collected_for_a_request_nobody_asks_yet_is_kept_until_one_does(
        stub: tuple[BatchStubState, StubServer], tmp_path: Path) -> None:
    state, server = stub
    state.hold = True
    name = model_name("openai", server)
    cache = ResponseCache(tmp_path / CACHE_FILE)
    policy = ClientPolicy(retry=RetryPolicy(attempts=1, initial_wait=0),
                          price=price_of(name, batch=True),
                          batch=BatchSettings.model_validate(FAST))

    def request(text: str) -> ModelRequest:
        return ModelRequest([Message("system", "s"), Message("user", text)])

    async def ask(*texts: str, interrupt: bool = False, attempts: int = 1
                  ) -> list[ModelResponse]:
        retry = RetryPolicy(attempts=attempts, initial_wait=0)
        client = manage(make_client(name), replace(policy, retry=retry), cache)
        created = len(state.created)
        try:
            asked = asyncio.gather(*(client.generate(request(t)) for t in texts))
            if not interrupt:
                return list(await asyncio.wait_for(asked, 20))
            while len(state.created) == created:
                await asyncio.sleep(0.01)
            asked.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asked
            return []
        finally:
            await client.aclose()

    asyncio.run(ask("first", "second", interrupt=True))  # one batch of both, pending
    state.hold = False
    [first] = asyncio.run(ask("first"))  # collects the batch: the second's answer is kept
    assert ledger_rows(tmp_path / "r.db") == 1
    looks = state.batches[state.created[0]].looks
    [second] = asyncio.run(ask("second"))  # from the ledger: no batch, no look, billed once
    assert len(state.created) == 1 and state.batches[state.created[0]].looks == looks
    for answer in (first, second):
        assert not answer.cached and answer.usage.cost_usd == pytest.approx(
            batch_cost(MODELS["openai"]))
    assert ledger_rows(tmp_path / "r.db") == 0

    # A pending batch that cannot be read now (a key refused) is kept for a later run.
    state.hold = True
    asyncio.run(ask("fourth", interrupt=True))
    state.hold, state.refuse_looks = False, True
    with pytest.raises(ModelCallError, match="HTTP 401"):
        asyncio.run(ask("fourth", attempts=2))
    assert ledger_rows(tmp_path / "r.db") == 1
    state.refuse_looks = False
    [fourth] = asyncio.run(ask("fourth"))
    assert fourth.text and len(state.created) == 2

    # A stored batch the provider no longer knows (404): its request goes out again.
    cache.record("batch_gone", name, [request_key(name, request("third"))])
    [third] = asyncio.run(ask("third", attempts=2))
    assert third.text and len(state.created) == 3
    assert ledger_rows(tmp_path / "r.db") == 0
    cache.close()


def test_without_the_response_cache_batches_run_with_their_ledger_in_memory(
        stub: tuple[BatchStubState, StubServer], tmp_path: Path) -> None:
    state, server = stub
    store = Store(tmp_path / "r.db")
    exp = experiment("uncached", {"name": model_name("openai", server), "batch": FAST})
    asyncio.run(run_experiment(exp, store, cache=False))
    assert [t.status for t in store.trials("uncached")] == ["done"] * 4
    assert len(state.created) == 1
    assert not (tmp_path / CACHE_FILE).exists()


def test_batch_is_refused_for_multi_turn_agents_and_providers_without_a_batch_api() -> None:
    with pytest.raises(AmlabError) as multi_turn:
        experiment("multi", {"name": "openai/gpt-4.1", "batch": True}, turns=4)
    assert str(multi_turn.value) == (
        "experiment: model openai/gpt-4.1: batch needs single-turn trials (agent.max_turns: "
        "1), as a trial of 4 turns would wait for a batch at every turn; set "
        "agent.max_turns: 1, or batch only the judges.")
    with pytest.raises(AmlabError, match=r"model google/gemini-2.5-flash: batch needs a "
                                         r"provider with a batch API \(openai, anthropic\)"):
        experiment("google", {"name": "google/gemini-2.5-flash", "batch": True})
    with pytest.raises(AmlabError, match=r"model openai/gpt-4\.1: requests_per_minute and "
                                         r"tokens_per_minute pace calls made one by one"):
        experiment("paced", {"name": "openai/gpt-4.1", "batch": True,
                             "requests_per_minute": 50})
    with pytest.raises(AmlabError, match=r"monitor\.model openai/gpt-4\.1-mini: batch needs "
                                         r"single-turn"):
        experiment("monitored", "openai/gpt-4.1", turns=3, monitor={
            "kind": "model", "model": {"name": "openai/gpt-4.1-mini", "batch": True}})

    # Judges read finished trials: any experiment may batch them.
    judged = experiment("judged", "openai/gpt-4.1", turns=4,
                        judge={"name": "anthropic/claude-haiku-4-5", "batch": True})
    judge = judged.spec.judge_specs[0]
    assert judge.batch == BatchSettings()
    # A batched model keeps enough trials in flight to fill a batch, unless told otherwise.
    assert experiment("default", {"name": "openai/gpt-4.1", "batch": True}
                      ).spec.models[0].concurrency == BatchSettings().size
    assert experiment("set", {"name": "openai/gpt-4.1", "batch": True, "concurrency": 8}
                      ).spec.models[0].concurrency == 8


def test_the_dry_run_estimate_prices_batched_models_and_judges_at_the_batch_price() -> None:
    plain = estimate(experiment("plain", "openai/gpt-4.1",
                                     judge="anthropic/claude-haiku-4-5"))
    batched = estimate(experiment("batched", {"name": "openai/gpt-4.1", "batch": True},
                                       judge={"name": "anthropic/claude-haiku-4-5",
                                              "batch": True}))
    assert [e.input_tokens for e in batched] == [e.input_tokens for e in plain]
    for full, half in zip(plain, batched, strict=True):
        assert full.cost_usd is not None and half.cost_usd == pytest.approx(full.cost_usd / 2)


def test_the_recorded_wire_formats_read_as_the_sdks_types() -> None:
    """The stub's fixtures are the shapes the SDKs parse (a fixture that drifted from the
    API would fail here before it misled the other tests)."""
    assert openai.types.FileObject.model_validate(OPENAI["file"]).purpose == "batch"
    batch = openai.types.Batch.model_validate(OPENAI["batch"])
    assert batch.endpoint == "/v1/chat/completions" and batch.completion_window == "24h"
    for line in ("output_line", "error_line", "invalid_line", "expired_line"):
        assert set(OPENAI[line]) == {"id", "custom_id", "response", "error"}
    message_batch = anthropic.types.messages.MessageBatch.model_validate(ANTHROPIC["batch"])
    assert message_batch.processing_status == "in_progress"
    kinds = [anthropic.types.messages.MessageBatchIndividualResponse.model_validate(
        ANTHROPIC[kind]).result.type for kind in ("succeeded", "errored", "invalid", "expired")]
    assert kinds == ["succeeded", "errored", "errored", "expired"]
    assert json.dumps(OPENAI)  # plain JSON, as recorded
