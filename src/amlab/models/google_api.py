"""Google's Gemini API through the official `google-genai` SDK.

Thoughts (`include_thoughts`) come back as parts marked `thought`, kept in the reasoning
channel; a turn's parts are also kept verbatim (`provider_content`) so their thought
signatures go back with the function results. A prompt blocked by the safety filter, or an
answer stopped for safety, prohibited content, a blocklist or personal data, ends the trial
as refused (`content_filter`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx2
from google import genai
from google.genai import types

from amlab.models.api import CONNECTION_LIMITS, RemoteTarget, http_transport
from amlab.models.base import FinishReason, ModelCallError, ModelRequest, ModelResponse
from amlab.models.quirks import sampling
from amlab.models.retry import call_and_read
from amlab.records import Message, ToolCall, Usage

# Gemini may leave function calls without an id; ours are marked so they are never sent back.
_LOCAL_ID = "amlab_call_"
_FILTERED = {"SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII",
             "IMAGE_SAFETY", "MODEL_ARMOR"}


@dataclass
class GoogleModel:
    name: str
    target: RemoteTarget
    client: genai.Client

    @classmethod
    def create(cls, target: RemoteTarget, http_client: httpx2.AsyncClient | None = None
               ) -> GoogleModel:
        # The SDK calls through aiohttp when it is installed and is given neither an httpx
        # client nor an httpx transport; it builds and closes its own client around this one.
        transport = (httpx2.AsyncHTTPTransport(limits=CONNECTION_LIMITS)
                     if http_client is None and http_transport() == "httpx" else None)
        http_options = types.HttpOptions(
            base_url=target.base_url, timeout=int(target.options.timeout * 1000),
            retry_options=types.HttpRetryOptions(attempts=1), httpx_async_client=http_client,
            async_client_args={"transport": transport} if transport else None)
        client = genai.Client(api_key=target.api_key, http_options=http_options)
        return cls(name=target.name, target=target, client=client)

    def request_config(self, request: ModelRequest) -> types.GenerateContentConfig:
        options = self.target.options
        params = sampling(f"google/{self.target.model}", request.config, options)
        system = "\n\n".join(m.content for m in request.messages if m.role == "system")
        tools: list[Any] | None = None
        if request.tools:
            tools = [types.Tool(function_declarations=[
                types.FunctionDeclaration(name=t.name, description=t.description,
                                          parameters_json_schema=t.parameters)
                for t in request.tools])]
        thinking = types.ThinkingConfig(include_thoughts=params.thinking_budget != 0,
                                        thinking_budget=params.thinking_budget
                                        ) if params.thinking else None
        return types.GenerateContentConfig(
            system_instruction=system or None,
            max_output_tokens=params.max_tokens,
            temperature=params.temperature,
            seed=params.seed,
            stop_sequences=list(params.stop) or None,
            tools=tools,
            automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
            thinking_config=thinking,
            http_options=(types.HttpOptions(extra_body=options.extra_body)
                          if options.extra_body else None),
        )

    async def generate(self, request: ModelRequest) -> ModelResponse:
        config = self.request_config(request)
        response = self.client.aio.models.generate_content(
            model=self.target.model, contents=_contents(request.messages), config=config)
        return await call_and_read(self.name, self.target.api_key, response, self.read)

    def read(self, response: types.GenerateContentResponse) -> ModelResponse:
        usage = _usage(response.usage_metadata)
        if not response.candidates:
            feedback = response.prompt_feedback
            if feedback is not None and feedback.block_reason is not None:
                reason = feedback.block_reason_message or str(feedback.block_reason.value)
                return ModelResponse(text=f"[blocked: {reason}]", usage=usage,
                                     finish_reason="content_filter")
            raise ModelCallError(f"{self.name}: the response has no candidate",
                                 retryable=True)
        candidate = response.candidates[0]
        parts = candidate.content.parts if candidate.content and candidate.content.parts else []
        texts, thoughts, calls = [], [], []
        for i, part in enumerate(parts):
            if part.function_call is not None and part.function_call.name:
                call = part.function_call
                calls.append(ToolCall(call.name or "", dict(call.args or {}),
                                      call.id or f"{_LOCAL_ID}{i}"))
            elif part.text and part.thought:
                thoughts.append(part.text)
            elif part.text:
                texts.append(part.text)
        reason = candidate.finish_reason.value if candidate.finish_reason else "STOP"
        finish: FinishReason = ("content_filter" if reason in _FILTERED else
                                "length" if reason == "MAX_TOKENS" else
                                "tool_calls" if calls else "stop")
        return ModelResponse(
            text="".join(texts), tool_calls=calls, reasoning="\n\n".join(thoughts), usage=usage,
            finish_reason=finish,
            provider_content=[p.model_dump(mode="json", exclude_none=True) for p in parts],
        )

    async def aclose(self) -> None:
        await self.client.aio.aclose()


def _contents(messages: list[Message]) -> list[types.Content]:
    contents: list[types.Content] = []
    for message in messages:
        if message.role == "system":
            continue
        role = "model" if message.role == "assistant" else "user"
        parts = _parts(message)
        if contents and contents[-1].role == role and contents[-1].parts is not None:
            contents[-1].parts.extend(parts)
        else:
            contents.append(types.Content(role=role, parts=parts))
    return contents


def _parts(message: Message) -> list[types.Part]:
    if message.role == "tool":
        return [types.Part(function_response=types.FunctionResponse(
            id=_sent_id(message.tool_call_id), name=message.name,
            response={"result": message.content}))]
    if message.role == "assistant" and message.provider_content:
        return [types.Part.model_validate(p) for p in message.provider_content]
    parts = [types.Part(text=message.content)] if message.content else []
    parts.extend(types.Part(function_call=types.FunctionCall(
        id=_sent_id(c.id), name=c.name, args=c.arguments)) for c in message.tool_calls)
    return parts


def _sent_id(call_id: str) -> str | None:
    return None if not call_id or call_id.startswith(_LOCAL_ID) else call_id


def _usage(metadata: types.GenerateContentResponseUsageMetadata | None) -> Usage:
    if metadata is None:
        return Usage(calls=1)
    # Thoughts are billed as output tokens.
    output = (metadata.candidates_token_count or 0) + (metadata.thoughts_token_count or 0)
    return Usage(input_tokens=metadata.prompt_token_count or 0, output_tokens=output,
                 cached_input_tokens=metadata.cached_content_token_count or 0, calls=1)
