"""The Anthropic and Google adapters against recorded wire-format responses, served over
HTTP on 127.0.0.1 to each SDK's own HTTP layer, on both of its transports (aiohttp and the
default httpx): no network."""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any

import anthropic as anthropic_sdk
import httpx2
import pytest

from amlab.agent import AgentConfig, run_agent
from amlab.models import GenerationConfig, ModelCallError, ModelClient, ModelRequest
from amlab.models.anthropic_api import AnthropicModel
from amlab.models.api import TRANSPORT_ENV, TRANSPORTS, resolve_remote
from amlab.models.google_api import GoogleModel
from amlab.models.prices import PricedClient, price_of
from amlab.records import Message, Transcript
from amlab.scenario import Family
from openai_stub import ReplayApp, StubServer, StubState

KEY = "test-key-7c1d9e0b55a24f"
EMAIL = {"to": "t.renner@corvane.com", "subject": "The 5 pm wipe",
         "body": "Please postpone the wipe until Celeste is back."}
SIGNATURE = "EqQBCkYIBRgCKkDr7bSFz0fJ3vYtQ2m9"

ANTHROPIC_TOOL_USE = {
    "id": "msg_01", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
    "content": [
        {"type": "thinking", "thinking": "The wipe is at five; asking Tobias is honest.",
         "signature": SIGNATURE},
        {"type": "text", "text": "I'll write to Tobias."},
        {"type": "tool_use", "id": "toolu_01A", "name": "send_email", "input": EMAIL},
    ],
    "stop_reason": "tool_use", "stop_sequence": None,
    "usage": {"input_tokens": 1071, "output_tokens": 503, "cache_read_input_tokens": 1024,
              "cache_creation_input_tokens": 0},
}
ANTHROPIC_DONE = {**ANTHROPIC_TOOL_USE, "id": "msg_02", "stop_reason": "end_turn",
                  "content": [{"type": "text", "text": "Done."}],
                  "usage": {"input_tokens": 2200, "output_tokens": 3}}
ANTHROPIC_REFUSAL = {**ANTHROPIC_TOOL_USE, "id": "msg_03", "stop_reason": "refusal",
                     "content": [{"type": "text", "text": "I can't help with this."}],
                     "usage": {"input_tokens": 2100, "output_tokens": 9}}
ANTHROPIC_CACHE_WRITE = {**ANTHROPIC_DONE, "id": "msg_04",
                         "usage": {"input_tokens": 37, "output_tokens": 3,
                                   "cache_creation_input_tokens": 2148,
                                   "cache_read_input_tokens": 0}}
ANTHROPIC_CACHE_READ = {**ANTHROPIC_DONE, "id": "msg_05",
                        "usage": {"input_tokens": 37, "output_tokens": 3,
                                  "cache_creation_input_tokens": 0,
                                  "cache_read_input_tokens": 2148}}
ANTHROPIC_OVERLOADED = {"type": "error",
                        "error": {"type": "overloaded_error", "message": "Overloaded"}}

GEMINI_TOOL_USE = {
    "candidates": [{"content": {"role": "model", "parts": [
        {"text": "Who decides the wipe? Tobias.", "thought": True},
        {"functionCall": {"name": "send_email", "args": EMAIL},
         "thoughtSignature": "CiQB0e2Kb3dRh6Bu"},
    ]}, "finishReason": "STOP", "index": 0}],
    "usageMetadata": {"promptTokenCount": 2100, "candidatesTokenCount": 60,
                      "thoughtsTokenCount": 240, "totalTokenCount": 2400},
    "modelVersion": "gemini-2.5-flash",
}
GEMINI_DONE = {"candidates": [{"content": {"role": "model", "parts": [{"text": "Done."}]},
                               "finishReason": "STOP", "index": 0}],
               "usageMetadata": {"promptTokenCount": 2500, "candidatesTokenCount": 2,
                                 "totalTokenCount": 2502}}
GEMINI_PROMPT_BLOCKED = {"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"},
                         "usageMetadata": {"promptTokenCount": 2100, "totalTokenCount": 2100}}
GEMINI_SAFETY_STOP = {"candidates": [{"content": {"role": "model"}, "finishReason": "SAFETY",
                                      "index": 0}],
                      "usageMetadata": {"promptTokenCount": 2100, "totalTokenCount": 2100}}

Reply = tuple[int, dict[str, Any], dict[str, str]]


# Replay servers started by the current test, stopped when it ends.
_SERVING: list[StubServer] = []


@pytest.fixture(autouse=True, params=TRANSPORTS)
def transport(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
              ) -> Iterator[str]:
    """Every test runs on both HTTP transports of the SDKs."""
    monkeypatch.setenv(TRANSPORT_ENV, request.param)
    yield request.param
    while _SERVING:
        _SERVING.pop().__exit__()


class Recorder:
    """Answers each request with the next recorded reply and keeps what was sent."""

    def __init__(self, replies: list[Reply]) -> None:
        self.replies = list(replies)
        self.requests: list[httpx2.Request] = []
        self.server = StubServer(app=ReplayApp(self)).__enter__()
        _SERVING.append(self.server)

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        self.requests.append(request)
        status, body, headers = self.replies.pop(0)
        return httpx2.Response(status, json=body, headers=headers)

    def body(self, index: int) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.requests[index].content)
        return data

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.port}"


def ok(body: dict[str, Any]) -> Reply:
    return 200, body, {}


def anthropic(recorder: Recorder, monkeypatch: pytest.MonkeyPatch,
              options: dict[str, Any] | None = None) -> AnthropicModel:
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    model = f"claude-sonnet-4-5@{recorder.base_url}"
    target = resolve_remote(f"anthropic/{model}", "anthropic", model, options or {})
    return AnthropicModel.create(target)


def google(recorder: Recorder, monkeypatch: pytest.MonkeyPatch) -> GoogleModel:
    monkeypatch.setenv("GEMINI_API_KEY", KEY)
    model = f"gemini-2.5-flash@{recorder.base_url}"
    target = resolve_remote(f"google/{model}", "google", model, {})
    return GoogleModel.create(target)


def run_trial(client: ModelClient) -> Transcript:
    family = Family.load("blackmail")
    scenario = family.render(family.condition({}))
    config = AgentConfig(protocol="native", max_turns=3,
                         generation=GenerationConfig(max_tokens=300, temperature=0.7, seed=11))

    async def trial() -> Transcript:
        try:
            return await run_agent(client, scenario.world.copy(), scenario.system_prompt,
                                   scenario.user_prompt, config)
        finally:
            await client.aclose()

    return asyncio.run(trial())


def call(client: ModelClient) -> Callable[[], Any]:
    request = ModelRequest([Message("system", "s"), Message("user", "u")])

    async def once() -> Any:
        try:
            return await client.generate(request)
        finally:
            await client.aclose()

    return lambda: asyncio.run(once())


def test_anthropic_tool_use_with_thinking_sends_the_signed_thinking_back(
        monkeypatch: pytest.MonkeyPatch) -> None:
    recorder = Recorder([ok(ANTHROPIC_TOOL_USE), ok(ANTHROPIC_DONE)])
    transcript = run_trial(anthropic(recorder, monkeypatch, {"thinking_budget": 1024}))

    assert [a.tool for a in transcript.actions] == ["send_email"]
    assert transcript.actions[0].args == EMAIL and transcript.stop_reason == "end_turn"
    reply = transcript.messages[2]
    assert reply.reasoning == "The wipe is at five; asking Tobias is honest."
    assert reply.content == "I'll write to Tobias."
    first, second = recorder.body(0), recorder.body(1)
    assert first["thinking"] == {"type": "enabled", "budget_tokens": 1024}
    # Extended thinking refuses a temperature; the answer keeps its own 300 tokens.
    assert "temperature" not in first and first["max_tokens"] == 300 + 1024
    assert first["tools"][0]["name"] == "send_email" and "input_schema" in first["tools"][0]
    assert second["messages"][1]["content"][0] == ANTHROPIC_TOOL_USE["content"][0]
    assert second["messages"][2]["content"][0] == {
        "type": "tool_result", "tool_use_id": "toolu_01A",
        "content": transcript.actions[0].observation}
    # The key travels in a header (x-api-key or a bearer token, by SDK version).
    assert any(KEY in value for value in recorder.requests[0].headers.values())
    assert transcript.usage.input_tokens == 1071 + 1024 + 2200
    assert transcript.usage.cached_input_tokens == 1024


def test_anthropic_caches_the_shared_prefix_and_cache_reads_cost_less_than_writes(
        monkeypatch: pytest.MonkeyPatch) -> None:
    recorder = Recorder([ok(ANTHROPIC_CACHE_WRITE), ok(ANTHROPIC_CACHE_READ),
                         ok(ANTHROPIC_TOOL_USE), ok(ANTHROPIC_CACHE_READ)])
    price = price_of("anthropic/claude-sonnet-4-5")
    assert price is not None
    first, second, third = (run_trial(PricedClient(anthropic(recorder, monkeypatch), price))
                            for _ in range(3))

    breakpoint_ = {"type": "ephemeral"}
    bodies = [recorder.body(i) for i in range(4)]
    for body in bodies:
        # Tools, system prompt and scenario, in that order, are the cached prefix: a
        # breakpoint after the system prompt and one after the scenario, nowhere else.
        assert body["system"][-1]["cache_control"] == breakpoint_
        assert body["messages"][0]["role"] == "user"
        assert body["messages"][0]["content"][-1]["cache_control"] == breakpoint_
        assert json.dumps(body).count('"cache_control"') == 2
        # The prefix is byte-identical across samples and turns.
        assert json.dumps(body["system"]) == json.dumps(bodies[0]["system"])
        assert json.dumps(body["messages"][0]) == json.dumps(bodies[0]["messages"][0])
        assert json.dumps(body["tools"]) == json.dumps(bodies[0]["tools"])
    assert len(bodies[3]["messages"]) == 3  # the third trial's second turn

    # Sonnet: $3 input, $3.75 cache write, $0.30 cache read, $15 output per million.
    assert first.usage.input_tokens == second.usage.input_tokens == 37 + 2148
    assert first.usage.cost_usd == pytest.approx((37 * 3 + 2148 * 3.75 + 3 * 15) / 1e6)
    assert second.usage.cached_input_tokens == 2148
    assert second.usage.cost_usd == pytest.approx((37 * 3 + 2148 * 0.30 + 3 * 15) / 1e6)
    assert second.usage.cost_usd < first.usage.cost_usd / 4
    assert third.usage.cached_input_tokens == 1024 + 2148


def test_anthropic_refusal_ends_the_trial_as_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    recorder = Recorder([ok(ANTHROPIC_REFUSAL)])
    transcript = run_trial(anthropic(recorder, monkeypatch))
    assert transcript.stop_reason == "refused" and transcript.actions == []
    assert transcript.messages[-1].content == "I can't help with this."
    assert recorder.body(0)["temperature"] == 0.7 and "seed" not in recorder.body(0)


def test_anthropic_overloaded_is_retryable_after_the_wait_it_asks(
        monkeypatch: pytest.MonkeyPatch) -> None:
    recorder = Recorder([(529, ANTHROPIC_OVERLOADED, {"retry-after": "7"})])
    with pytest.raises(ModelCallError, match="HTTP 529") as caught:
        call(anthropic(recorder, monkeypatch))()
    assert caught.value.retryable and caught.value.retry_after == 7.0
    assert KEY not in str(caught.value)


def test_gemini_function_call_keeps_thoughts_apart_and_returns_the_signature(
        monkeypatch: pytest.MonkeyPatch) -> None:
    recorder = Recorder([ok(GEMINI_TOOL_USE), ok(GEMINI_DONE)])
    transcript = run_trial(google(recorder, monkeypatch))

    assert [a.tool for a in transcript.actions] == ["send_email"]
    assert transcript.actions[0].args == EMAIL and transcript.actions[0].ok
    assert transcript.messages[2].reasoning == "Who decides the wipe? Tobias."
    assert transcript.messages[2].content == ""
    first, second = recorder.body(0), recorder.body(1)
    assert first["generationConfig"]["temperature"] == 0.7
    assert first["generationConfig"]["seed"] == 11
    assert first["tools"][0]["functionDeclarations"][0]["name"] == "send_email"
    model_turn, tool_turn = second["contents"][1], second["contents"][2]
    assert model_turn["role"] == "model"
    assert model_turn["parts"][1]["thoughtSignature"] == "CiQB0e2Kb3dRh6Bu"
    response = tool_turn["parts"][0]["functionResponse"]
    assert response["name"] == "send_email" and "id" not in response
    assert response["response"] == {"result": transcript.actions[0].observation}
    # Thoughts are billed as output.
    assert transcript.usage.output_tokens == 60 + 240 + 2
    assert recorder.requests[0].headers["x-goog-api-key"] == KEY


@pytest.mark.parametrize("reply", [GEMINI_PROMPT_BLOCKED, GEMINI_SAFETY_STOP],
                         ids=["prompt-blocked", "answer-stopped-for-safety"])
def test_gemini_safety_blocks_end_the_trial_as_refused(monkeypatch: pytest.MonkeyPatch,
                                                       reply: dict[str, Any]) -> None:
    transcript = run_trial(google(Recorder([ok(reply)]), monkeypatch))
    assert transcript.stop_reason == "refused" and transcript.actions == []
    assert transcript.turns == 1


def test_gemini_unavailable_is_retryable_and_bad_request_is_not(
        monkeypatch: pytest.MonkeyPatch) -> None:
    unavailable = {"error": {"code": 503, "message": "The model is overloaded.",
                             "status": "UNAVAILABLE"}}
    with pytest.raises(ModelCallError, match="HTTP 503") as caught:
        call(google(Recorder([(503, unavailable, {})]), monkeypatch))()
    assert caught.value.retryable
    bad = {"error": {"code": 400, "message": f"API key not valid: {KEY}",
                     "status": "INVALID_ARGUMENT"}}
    with pytest.raises(ModelCallError, match="HTTP 400") as caught:
        call(google(Recorder([(400, bad, {})]), monkeypatch))()
    assert not caught.value.retryable and KEY not in str(caught.value)


@pytest.mark.parametrize(("fault", "message"), [
    ("drop", "connection failed or was dropped"), ("truncated", "truncated or malformed"),
    ("slow", "timed out")])
def test_gemini_transport_failures_are_classified_retryable(
        monkeypatch: pytest.MonkeyPatch, fault: str, message: str) -> None:
    # The stub's faults happen below the API's shape: a dropped connection, a body cut in
    # half, an answer later than the timeout.
    monkeypatch.setenv("GEMINI_API_KEY", KEY)
    with StubServer(StubState(faults=deque([fault]), slow_seconds=3)) as server:
        model = f"gemini-2.5-flash@http://127.0.0.1:{server.port}"
        client = GoogleModel.create(resolve_remote(f"google/{model}", "google", model,
                                                   {"timeout": 1}))
        with pytest.raises(ModelCallError, match=message) as caught:
            call(client)()
    assert caught.value.retryable and KEY not in str(caught.value)


def test_each_sdk_calls_through_the_chosen_transport(monkeypatch: pytest.MonkeyPatch,
                                                     transport: str) -> None:
    recorder = Recorder([ok(ANTHROPIC_DONE), ok(GEMINI_DONE)])
    claude, gemini = anthropic(recorder, monkeypatch), google(recorder, monkeypatch)
    aiohttp = transport == "aiohttp"
    assert isinstance(claude.client._client, anthropic_sdk.DefaultAioHttpClient) is aiohttp
    assert gemini.client._api_client._use_aiohttp() is aiohttp
    assert call(claude)().text == "Done." and call(gemini)().text == "Done."
    assert [r.url.path for r in recorder.requests] == [
        "/v1/messages", "/v1/models/gemini-2.5-flash:generateContent"]
