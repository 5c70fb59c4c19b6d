"""The pieces around the remote adapters: `<think>` blocks, model quirks, prices, Retry-After,
retries and rate limits."""

from __future__ import annotations

import asyncio
import calendar
import time
from dataclasses import dataclass, field

import pytest

from amlab.models import (
    GenerationConfig,
    ModelCallError,
    ModelRequest,
    ModelResponse,
    make_client,
)
from amlab.models.api import ApiOptions, split_base_url, split_think
from amlab.models.limits import LimitedClient
from amlab.models.prices import Price, price_of
from amlab.models.quirks import sampling
from amlab.models.retry import RetryingClient, RetryPolicy, retry_after_seconds
from amlab.records import Message, Usage


@pytest.mark.parametrize(("text", "answer", "reasoning"), [
    ("<think>weigh it</think>I will write.", "I will write.", "weigh it"),
    ("opened by the template</think>Answer", "Answer", "opened by the template"),
    ("Start <think>cut off mid-thought", "Start", "cut off mid-thought"),
    ("No reasoning here.", "No reasoning here.", ""),
])
def test_think_blocks_move_to_the_reasoning_channel(text: str, answer: str,
                                                    reasoning: str) -> None:
    assert split_think(text) == (answer, reasoning)


def test_a_base_url_is_only_what_follows_the_last_at_and_contains_a_scheme() -> None:
    assert split_base_url("Qwen/Qwen3-32B@http://gpu:8000/v1") == (
        "Qwen/Qwen3-32B", "http://gpu:8000/v1")
    assert split_base_url("claude-3-5-sonnet@20240620") == ("claude-3-5-sonnet@20240620", None)


def test_the_key_is_not_in_the_repr_of_a_client(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-repr-check-91b3f0c2")
    client = make_client("openai/gpt-4.1")
    assert "sk-repr-check" not in repr(client)


def test_reasoning_models_get_no_temperature_and_openai_gets_max_completion_tokens() -> None:
    config = GenerationConfig(max_tokens=500, temperature=0.7, seed=3, stop=("END",))
    o3 = sampling("openai/o3", config, ApiOptions())
    assert (o3.temperature, o3.stop, o3.seed, o3.max_tokens_field) == (
        None, (), 3, "max_completion_tokens")
    vllm = sampling("vllm/Qwen/Qwen3-32B", config, ApiOptions(temperature=0.2))
    assert (vllm.temperature, vllm.stop, vllm.max_tokens_field) == (0.2, ("END",), "max_tokens")


def test_anthropic_thinking_drops_temperature_and_seed_and_adds_its_budget() -> None:
    config = GenerationConfig(max_tokens=500, temperature=0.7, seed=3)
    plain = sampling("anthropic/claude-sonnet-4-5", config, ApiOptions())
    thinking = sampling("anthropic/claude-sonnet-4-5", config, ApiOptions(thinking_budget=2000))
    assert (plain.temperature, plain.seed, plain.max_tokens) == (0.7, None, 500)
    assert (thinking.temperature, thinking.max_tokens) == (None, 2500)


def test_gemini_before_2_5_gets_no_thinking_configuration() -> None:
    config = GenerationConfig()
    assert not sampling("google/gemini-2.0-flash", config, ApiOptions(thinking_budget=99)).thinking
    flash = sampling("google/gemini-2.5-flash", config, ApiOptions(thinking_budget=0))
    assert flash.thinking and flash.thinking_budget == 0


def test_longest_price_pattern_wins_and_the_override_beats_the_table() -> None:
    lite = price_of("google/gemini-2.5-flash-lite")
    flash = price_of("google/gemini-2.5-flash")
    assert lite is not None and flash is not None and lite.output < flash.output
    opus_4_5 = price_of("anthropic/claude-opus-4-5")
    opus_4_1 = price_of("anthropic/claude-opus-4-1")
    assert opus_4_5 is not None and opus_4_1 is not None and opus_4_5.input < opus_4_1.input
    assert price_of("vllm/Qwen/Qwen3-32B@http://gpu:8000/v1") == Price(input=0, output=0)
    assert price_of("openai-compatible/mystery@http://x/v1") is None
    override = Price(input=1, output=1)
    assert price_of("openai/gpt-4.1", override) is override


def test_cached_input_tokens_are_charged_at_the_cached_rate() -> None:
    price = Price(input=2.0, cached_input=0.5, output=8.0)
    usage = Usage(input_tokens=1_000_000, cached_input_tokens=400_000, output_tokens=100_000)
    assert price.cost(usage) == pytest.approx(0.6 * 2.0 + 0.4 * 0.5 + 0.1 * 8.0)


def test_cache_writes_are_charged_at_the_write_rate_and_default_to_the_input_rate() -> None:
    usage = Usage(input_tokens=1_000_000, cached_input_tokens=300_000,
                  cache_write_input_tokens=500_000, output_tokens=100_000)
    anthropic = Price(input=3.0, cached_input=0.3, cache_write_input=3.75, output=15.0)
    assert anthropic.cost(usage) == pytest.approx(0.2 * 3.0 + 0.3 * 0.3 + 0.5 * 3.75
                                                  + 0.1 * 15.0)
    free_writes = Price(input=3.0, cached_input=0.3, output=15.0)
    assert free_writes.cost(usage) == pytest.approx(0.7 * 3.0 + 0.3 * 0.3 + 0.1 * 15.0)
    total = Usage()
    total.add(usage)
    total.add(usage)
    assert total.cache_write_input_tokens == 1_000_000


def test_retry_after_is_read_in_seconds_milliseconds_or_as_a_date() -> None:
    assert retry_after_seconds({"Retry-After": "7"}) == 7.0
    assert retry_after_seconds({"retry-after-ms": "250"}) == 0.25
    date = "Mon, 23 Nov 2026 09:00:30 GMT"
    now = calendar.timegm((2026, 11, 23, 9, 0, 0))
    assert retry_after_seconds({"Retry-After": date}, now=now) == pytest.approx(30)
    assert retry_after_seconds({"Retry-After": "soon"}) is None


@dataclass
class Failing:
    """Fails `failures` times with the given error, then answers."""

    failures: int
    error: ModelCallError
    name: str = "fake/failing"
    calls: list[float] = field(default_factory=list)

    async def generate(self, request: ModelRequest) -> ModelResponse:
        self.calls.append(time.monotonic())
        if len(self.calls) <= self.failures:
            raise self.error
        return ModelResponse(text="ok")

    async def aclose(self) -> None:
        return None


REQUEST = ModelRequest([Message("user", "hi")])


def test_retry_waits_what_retry_after_asks_even_with_no_backoff() -> None:
    inner = Failing(1, ModelCallError("429", retryable=True, retry_after=0.4))
    response = asyncio.run(RetryingClient(
        inner, RetryPolicy(attempts=2, initial_wait=0, max_wait=5)).generate(REQUEST))
    assert response.text == "ok" and inner.calls[1] - inner.calls[0] >= 0.4


def test_retries_are_bounded_and_non_retryable_errors_are_not_retried() -> None:
    flaky = Failing(10, ModelCallError("500", retryable=True))
    with pytest.raises(ModelCallError, match="500"):
        asyncio.run(RetryingClient(flaky, RetryPolicy(attempts=3, initial_wait=0, max_wait=0))
                    .generate(REQUEST))
    assert len(flaky.calls) == 3
    rejected = Failing(10, ModelCallError("401", retryable=False))
    with pytest.raises(ModelCallError, match="401"):
        asyncio.run(RetryingClient(rejected, RetryPolicy(attempts=3, initial_wait=0))
                    .generate(REQUEST))
    assert len(rejected.calls) == 1


def test_requests_per_minute_spaces_the_calls_beyond_the_first_burst() -> None:
    inner = Failing(0, ModelCallError("unused", retryable=False))
    # 600 a minute is 10 a second; the bucket holds 600, so drain it first.
    limited = LimitedClient(inner, requests_per_minute=600)
    assert limited._requests is not None

    async def calls() -> float:
        assert limited._requests is not None
        await limited._requests.acquire(600)
        started = time.monotonic()
        for _ in range(3):
            await limited.generate(REQUEST)
        return time.monotonic() - started

    assert asyncio.run(calls()) >= 0.25
    assert len(inner.calls) == 3
