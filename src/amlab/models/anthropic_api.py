"""Anthropic's Messages API through the official `anthropic` SDK.

Extended thinking (`options.thinking_budget`) comes back as `thinking` blocks, kept in the
reasoning channel; a turn's blocks are also kept verbatim (`provider_content`) because the
API wants the signed thinking blocks back with the tool results that follow them. A
`refusal` stop reason ends the trial as refused.

Prompt caching: the system prompt and the first user message (the scenario) are the same,
byte for byte, in every sample of a condition and every turn of a trial, so each ends with
an ephemeral `cache_control` breakpoint; the API then serves tools, system prompt and
scenario from its cache on repeated calls (prompts under the model's minimum cacheable
length are simply not cached). Cache reads and writes are priced apart, see `prices.py`.
The HTTP transport is the SDK's aiohttp one when installed (`api.http_transport`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import anthropic
import httpx2
from anthropic.types.messages import MessageBatch

from amlab.models.api import CONNECTION_LIMITS, RemoteTarget, http_transport
from amlab.models.base import FinishReason, ModelCallError, ModelRequest, ModelResponse
from amlab.models.batch import BatchGone
from amlab.models.quirks import sampling
from amlab.models.retry import READ_ERRORS, call_and_read, call_classified, malformed, redact
from amlab.records import Message, ToolCall, Usage

# A 5-minute entry, refreshed by every read: samples of a condition run close together.
CACHE_BREAKPOINT = {"type": "ephemeral"}

_FINISH: dict[str, FinishReason] = {"max_tokens": "length", "tool_use": "tool_calls",
                                    "refusal": "refusal",
                                    "model_context_window_exceeded": "length"}
# Message Batches: the errors of a batch's request that asking again may cure; a request
# the batch cancelled or let expire never ran, and is asked again too.
BATCH_RETRYABLE = frozenset({"api_error", "overloaded_error", "rate_limit_error",
                             "timeout_error"})


@dataclass
class AnthropicModel:
    name: str
    target: RemoteTarget
    client: anthropic.AsyncAnthropic

    @classmethod
    def create(cls, target: RemoteTarget, http_client: httpx2.AsyncClient | None = None
               ) -> AnthropicModel:
        if http_client is None:
            http_client = (anthropic.DefaultAioHttpClient if http_transport() == "aiohttp"
                           else anthropic.DefaultAsyncHttpxClient)(limits=CONNECTION_LIMITS)
        client = anthropic.AsyncAnthropic(api_key=target.api_key, base_url=target.base_url,
                                          timeout=target.options.timeout, max_retries=0,
                                          http_client=http_client)
        return cls(name=target.name, target=target, client=client)

    def request_body(self, request: ModelRequest) -> dict[str, Any]:
        options = self.target.options
        params = sampling(f"anthropic/{self.target.model}", request.config, options)
        system = "\n\n".join(m.content for m in request.messages if m.role == "system")
        body: dict[str, Any] = {
            "model": self.target.model,
            "max_tokens": params.max_tokens,
            "messages": _messages(request.messages),
        }
        if system:
            body["system"] = [{"type": "text", "text": system,
                               "cache_control": dict(CACHE_BREAKPOINT)}]
        if request.tools:
            body["tools"] = [{"name": t.name, "description": t.description,
                              "input_schema": t.parameters} for t in request.tools]
        if params.stop:
            body["stop_sequences"] = list(params.stop)
        if params.thinking_budget:
            body["thinking"] = {"type": "enabled", "budget_tokens": params.thinking_budget}
        extra = dict(options.extra_body)
        if params.temperature is not None:
            # Not a named argument of this SDK version's `create`; the API still reads it.
            extra["temperature"] = params.temperature
        if extra:
            body["extra_body"] = extra
        return body

    async def generate(self, request: ModelRequest) -> ModelResponse:
        body = self.request_body(request)
        return await call_and_read(self.name, self.target.api_key,
                                   self.client.messages.create(**body), self.read)

    async def submit_batch(self, requests: Mapping[str, ModelRequest]) -> str:
        """A Message Batch of the requests, each under its key as custom id
        (`models/batch.py`)."""
        entries: list[Any] = []
        for key, request in requests.items():
            params = self.request_body(request)
            # The SDK's `extra_body` argument is, in a batch, part of the params themselves.
            params.update(params.pop("extra_body", {}))
            entries.append({"custom_id": key, "params": params})
        batch = await call_classified(self.name, self.target.api_key,
                                      self.client.messages.batches.create(requests=entries))
        return batch.id

    async def batch_ended(self, batch_id: str) -> bool:
        async def retrieve() -> MessageBatch:
            try:
                return await self.client.messages.batches.retrieve(batch_id)
            except anthropic.NotFoundError:
                raise BatchGone(f"{self.name}: batch {batch_id} is not known to the "
                                f"provider") from None

        batch = await call_classified(self.name, self.target.api_key, retrieve())
        return batch.processing_status == "ended"

    async def batch_results(self, batch_id: str) -> dict[str, ModelResponse | ModelCallError]:
        async def read_all() -> list[Any]:
            results = await self.client.messages.batches.results(batch_id)
            return [item async for item in results]

        items = await call_classified(self.name, self.target.api_key, read_all())
        return {item.custom_id: self._batch_outcome(item.result) for item in items}

    def _batch_outcome(self, result: Any) -> ModelResponse | ModelCallError:
        if result.type == "succeeded":
            try:
                return self.read(result.message)
            except READ_ERRORS as exc:
                return malformed(self.name, exc)
        if result.type == "errored":
            error = result.error.error
            return ModelCallError(redact(f"{self.name}: batch item failed ({error.type}): "
                                         f"{str(error.message)[:300]}", self.target.api_key),
                                  retryable=error.type in BATCH_RETRYABLE)
        return ModelCallError(f"{self.name}: the batch's request was {result.type} before it "
                              f"ran", retryable=True)

    def read(self, message: Any) -> ModelResponse:
        texts, thoughts, calls = [], [], []
        for block in message.content:
            if block.type == "text":
                texts.append(block.text)
            elif block.type == "thinking":
                thoughts.append(block.thinking)
            elif block.type == "redacted_thinking":
                thoughts.append("[thinking redacted by the provider]")
            elif block.type == "tool_use":
                calls.append(ToolCall(block.name, dict(block.input), block.id))
        usage = message.usage
        cached = usage.cache_read_input_tokens or 0
        written = usage.cache_creation_input_tokens or 0
        return ModelResponse(
            text="".join(texts),
            tool_calls=calls,
            reasoning="\n\n".join(thoughts),
            usage=Usage(input_tokens=usage.input_tokens + cached + written,
                        output_tokens=usage.output_tokens, cached_input_tokens=cached,
                        cache_write_input_tokens=written, calls=1),
            finish_reason=_FINISH.get(message.stop_reason or "", "stop"),
            provider_content=([b.model_dump(mode="json", exclude_none=True)
                               for b in message.content] if thoughts else []),
            model_id=message.model or "",
        )

    async def aclose(self) -> None:
        await self.client.close()


def _messages(messages: list[Message]) -> list[dict[str, Any]]:
    """Anthropic turns: tool results travel in a user turn, consecutive same-role turns are
    merged (the API wants them alternating). The first user message, the scenario shared
    by every sample of a condition, ends with a cache breakpoint."""
    turns: list[dict[str, Any]] = []
    scenario_marked = False
    for message in messages:
        if message.role == "system":
            continue
        role = "assistant" if message.role == "assistant" else "user"
        blocks = _blocks(message)
        if message.role == "user" and blocks and not scenario_marked:
            blocks[-1]["cache_control"] = dict(CACHE_BREAKPOINT)
            scenario_marked = True
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    return turns


def _blocks(message: Message) -> list[dict[str, Any]]:
    if message.role == "tool":
        return [{"type": "tool_result", "tool_use_id": message.tool_call_id,
                 "content": message.content}]
    if message.role == "assistant" and message.provider_content:
        return list(message.provider_content)
    blocks: list[dict[str, Any]] = []
    if message.content:
        blocks.append({"type": "text", "text": message.content})
    blocks.extend({"type": "tool_use", "id": c.id, "name": c.name, "input": c.arguments}
                  for c in message.tool_calls)
    return blocks
