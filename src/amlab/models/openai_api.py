"""OpenAI and every OpenAI-compatible server (OpenRouter, Together, DeepSeek, vLLM, Ollama,
llama.cpp server...) through the official `openai` SDK's Chat Completions API.

Reasoning is read from `reasoning_content` (DeepSeek, vLLM) or `reasoning` (OpenRouter)
when the server sends it, and from `<think>` blocks in the answer (open models). OpenAI's
own models do not return their reasoning through Chat Completions; its token count is in
the usage. The SDK's own retries are off: `RetryingClient` owns retries. The HTTP transport
is the SDK's aiohttp one when installed (`api.http_transport`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import httpx2
import openai
from openai.types import Batch
from openai.types.chat import ChatCompletion

from amlab.models.api import CONNECTION_LIMITS, RemoteTarget, http_transport, split_think
from amlab.models.base import FinishReason, ModelCallError, ModelRequest, ModelResponse
from amlab.models.batch import BatchGone
from amlab.models.quirks import sampling
from amlab.models.retry import (
    READ_ERRORS,
    call_and_read,
    call_classified,
    is_retryable_status,
    malformed,
    redact,
)
from amlab.records import Message, ToolCall, Usage
from amlab.world.base import ToolSpec

_FINISH: dict[str, FinishReason] = {"length": "length", "tool_calls": "tool_calls",
                                    "function_call": "tool_calls",
                                    "content_filter": "content_filter"}
# The Batch API: each line of the uploaded file is one call to this endpoint.
BATCH_ENDPOINT: Final = "/v1/chat/completions"
BATCH_WINDOW: Final = "24h"
BATCH_ENDED = frozenset({"completed", "failed", "expired", "cancelled"})


@dataclass
class OpenAIModel:
    name: str
    target: RemoteTarget
    client: openai.AsyncOpenAI

    @classmethod
    def create(cls, target: RemoteTarget, http_client: httpx2.AsyncClient | None = None
               ) -> OpenAIModel:
        if http_client is None:
            http_client = (openai.DefaultAioHttpClient if http_transport() == "aiohttp"
                           else openai.DefaultAsyncHttpxClient)(limits=CONNECTION_LIMITS)
        client = openai.AsyncOpenAI(api_key=target.key_or_placeholder, base_url=target.base_url,
                                    timeout=target.options.timeout, max_retries=0,
                                    http_client=http_client)
        return cls(name=target.name, target=target, client=client)

    def request_body(self, request: ModelRequest) -> dict[str, Any]:
        options = self.target.options
        params = sampling(f"{self.target.provider}/{self.target.model}", request.config,
                          options)
        body: dict[str, Any] = {
            "model": self.target.model,
            "messages": [_message(m) for m in request.messages],
            params.max_tokens_field: params.max_tokens,
        }
        if request.tools:
            body["tools"] = [_tool(t) for t in request.tools]
        if params.temperature is not None:
            body["temperature"] = params.temperature
        if params.seed is not None:
            body["seed"] = params.seed
        if params.stop:
            body["stop"] = list(params.stop)
        if options.reasoning_effort:
            body["reasoning_effort"] = options.reasoning_effort
        return body

    def wire_body(self, request: ModelRequest) -> dict[str, Any]:
        """The body sent, with the options' `extra_body` in it."""
        return {**self.request_body(request), **self.target.options.extra_body}

    async def generate(self, request: ModelRequest) -> ModelResponse:
        # The SDK's generic `post` (its documented way to any endpoint) rather than
        # `chat.completions.create`: same HTTP layer, errors and parsing, without the
        # per-call transformation of the parameters through their type annotations,
        # which was a fifth of the client's CPU time per call.
        completion = self.client.post("/chat/completions", cast_to=ChatCompletion,
                                      body=self.wire_body(request))
        return await call_and_read(self.name, self.target.api_key, completion, self.read)

    async def submit_batch(self, requests: Mapping[str, ModelRequest]) -> str:
        """Upload the requests as a JSONL file (one line per request, its key the custom
        id) and create a batch of it (`models/batch.py`)."""
        lines = "".join(json.dumps({"custom_id": key, "method": "POST", "url": BATCH_ENDPOINT,
                                    "body": self.wire_body(request)}) + "\n"
                        for key, request in requests.items())
        secret = self.target.api_key
        upload = await call_classified(self.name, secret, self.client.files.create(
            file=("amlab-batch.jsonl", lines.encode(), "application/jsonl"), purpose="batch"))
        batch = await call_classified(self.name, secret, self.client.batches.create(
            input_file_id=upload.id, endpoint=BATCH_ENDPOINT, completion_window=BATCH_WINDOW))
        return batch.id

    async def _retrieve_batch(self, batch_id: str) -> Batch:
        async def retrieve() -> Batch:
            try:
                return await self.client.batches.retrieve(batch_id)
            except openai.NotFoundError:
                raise BatchGone(f"{self.name}: batch {batch_id} is not known to the "
                                f"provider") from None

        return await call_classified(self.name, self.target.api_key, retrieve())

    async def batch_ended(self, batch_id: str) -> bool:
        return (await self._retrieve_batch(batch_id)).status in BATCH_ENDED

    async def batch_results(self, batch_id: str) -> dict[str, ModelResponse | ModelCallError]:
        """Each request's line of the output file (answers) and the error file (failures,
        and requests a batch that expired or was cancelled never ran)."""
        secret = self.target.api_key
        batch = await self._retrieve_batch(batch_id)
        if batch.status == "failed":  # the file was refused as a whole
            reasons = "; ".join(e.message or e.code or "" for e in
                                (batch.errors.data or [] if batch.errors else []))
            raise BatchGone(redact(f"{self.name}: batch {batch_id} failed: "
                                   f"{reasons[:300] or 'no reason given'}", secret))
        outcomes: dict[str, ModelResponse | ModelCallError] = {}
        for file_id in (batch.output_file_id, batch.error_file_id):
            if file_id:
                content = await call_classified(self.name, secret,
                                                self.client.files.content(file_id))
                for line in content.text.splitlines():
                    outcomes.update(self._batch_outcome(line))
        return outcomes

    def _batch_outcome(self, line: str) -> dict[str, ModelResponse | ModelCallError]:
        """{custom id: outcome} of a line of a batch's output or error file; {} for a line
        that names no request (its request then counts as unanswered, and is retried)."""
        try:
            item = json.loads(line)
            key = str(item["custom_id"])
        except READ_ERRORS:
            return {}
        response = item.get("response") or {}
        status = response.get("status_code")
        if item.get("error") or status != 200:
            error = item.get("error") or (response.get("body") or {}).get("error") or {}
            reason = str(error.get("message") or error.get("code") or "no reason given")
            return {key: ModelCallError(
                redact(f"{self.name}: batch item failed (HTTP {status}): {reason[:300]}",
                       self.target.api_key),
                # No status: the batch expired or was cancelled before the request ran.
                retryable=status is None or is_retryable_status(status))}
        try:
            return {key: self.read(ChatCompletion.model_validate(response["body"]))}
        except READ_ERRORS as exc:
            return {key: malformed(self.name, exc)}

    def read(self, completion: Any) -> ModelResponse:
        choice = completion.choices[0]
        message = choice.message
        extra = message.model_extra or {}
        text = message.content or ""
        reasoning = str(extra.get("reasoning_content") or extra.get("reasoning") or "")
        if self.target.options.think_tags:
            text, in_text = split_think(text)
            reasoning = "\n\n".join(r for r in (reasoning, in_text) if r)
        finish: FinishReason = _FINISH.get(choice.finish_reason or "", "stop")
        if message.refusal:
            finish, text = "refusal", message.refusal
        calls = [_tool_call(c) for c in message.tool_calls or []]
        return ModelResponse(text=text, tool_calls=calls, reasoning=reasoning,
                             usage=_usage(completion.usage), finish_reason=finish,
                             model_id=completion.model or "")

    async def aclose(self) -> None:
        await self.client.close()


def _message(message: Message) -> dict[str, Any]:
    if message.role == "tool":
        return {"role": "tool", "tool_call_id": message.tool_call_id, "content": message.content}
    if message.role == "assistant" and message.tool_calls:
        return {"role": "assistant", "content": message.content or None, "tool_calls": [
            {"id": c.id, "type": "function",
             "function": {"name": c.name, "arguments": json.dumps(c.arguments)}}
            for c in message.tool_calls]}
    return {"role": message.role, "content": message.content}


def _tool(tool: ToolSpec) -> dict[str, Any]:
    return {"type": "function", "function": {
        "name": tool.name, "description": tool.description, "parameters": tool.parameters}}


def _tool_call(call: Any) -> ToolCall:
    raw = call.function.arguments or "{}"
    try:
        arguments = json.loads(raw)
    except json.JSONDecodeError:
        return ToolCall(call.function.name, {}, call.id,
                        parse_error=f"the arguments are not valid JSON: {raw[:200]}")
    if not isinstance(arguments, dict):
        return ToolCall(call.function.name, {}, call.id,
                        parse_error="the arguments are not a JSON object")
    return ToolCall(call.function.name, arguments, call.id)


def _usage(usage: Any) -> Usage:
    if usage is None:
        return Usage(calls=1)
    details = usage.prompt_tokens_details
    cached = (details.cached_tokens or 0) if details is not None else 0
    return Usage(input_tokens=usage.prompt_tokens or 0,
                 output_tokens=usage.completion_tokens or 0,
                 cached_input_tokens=cached, calls=1)
