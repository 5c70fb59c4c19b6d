"""What the remote adapters share: their options, where each provider lives, where its key
comes from, and the `<think>` blocks open models write into their answers.

A remote model is named `provider/model`, optionally followed by `@base-url`:

    openai/gpt-4.1
    openrouter/deepseek/deepseek-r1
    vllm/Qwen/Qwen3-32B@http://gpu-box:8000/v1
    openai-compatible/my-model@https://llm.internal.example/v1

The part after the last `@` is a base URL only if it contains `://`, so model names with an
`@` of their own stay whole. Keys come only from environment variables (`ENDPOINTS`, or
`options.api_key_env`); they are never stored, logged or put in an error message.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx2
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from amlab.errors import AmlabError, describe_validation_error
from amlab.reasoning import split_private

Transport = Literal["aiohttp", "httpx"]
TRANSPORTS: tuple[Transport, ...] = ("aiohttp", "httpx")
TRANSPORT_ENV = "AMLAB_HTTP_TRANSPORT"


def http_transport() -> Transport:
    """The HTTP transport under the remote SDKs: their aiohttp transport when aiohttp is
    installed (about half the CPU per call of their default httpx transport, see
    benchmarks/concurrency.py), else the default; `AMLAB_HTTP_TRANSPORT=httpx` forces the
    default. Retries and error classification are the same on both."""
    chosen = os.environ.get(TRANSPORT_ENV, "").strip().lower()
    if chosen and chosen not in TRANSPORTS:
        raise AmlabError(f"environment variable {TRANSPORT_ENV}: '{chosen}' is not a transport; "
                         f"use {' or '.join(TRANSPORTS)}, or leave it unset.")
    installed = importlib.util.find_spec("aiohttp") is not None
    if chosen == "aiohttp" and not installed:
        raise AmlabError(f"environment variable {TRANSPORT_ENV} asks for aiohttp, which is not "
                         f"installed; pip install aiohttp, or leave the variable unset.")
    return "aiohttp" if installed and chosen != "httpx" else "httpx"


@dataclass(frozen=True)
class Endpoint:
    sdk: Literal["openai", "anthropic", "google"]
    # None: the SDK's own default (or, for `openai-compatible`, a base URL is required).
    base_url: str | None
    key_env: str
    key_required: bool = True


ENDPOINTS: dict[str, Endpoint] = {
    "openai": Endpoint("openai", None, "OPENAI_API_KEY"),
    "openrouter": Endpoint("openai", "https://openrouter.ai/api/v1", "OPENROUTER_API_KEY"),
    "together": Endpoint("openai", "https://api.together.xyz/v1", "TOGETHER_API_KEY"),
    "deepseek": Endpoint("openai", "https://api.deepseek.com/v1", "DEEPSEEK_API_KEY"),
    "vllm": Endpoint("openai", "http://localhost:8000/v1", "VLLM_API_KEY", False),
    "ollama": Endpoint("openai", "http://localhost:11434/v1", "OLLAMA_API_KEY", False),
    "llamacpp": Endpoint("openai", "http://localhost:8080/v1", "LLAMACPP_API_KEY", False),
    "openai-compatible": Endpoint("openai", None, "OPENAI_COMPATIBLE_API_KEY", False),
    "anthropic": Endpoint("anthropic", None, "ANTHROPIC_API_KEY"),
    "google": Endpoint("google", None, "GEMINI_API_KEY"),
}
# Servers that ignore the key still make the OpenAI SDK insist on one.
UNUSED_KEY = "unused"
# Every call in flight keeps its connection alive for the next one (the SDKs' default keeps
# 100, so at higher concurrency the rest would reconnect each time).
CONNECTION_LIMITS = httpx2.Limits(max_connections=1000, max_keepalive_connections=1000)


class ApiOptions(BaseModel):
    """`options:` of a remote model in the experiment file."""

    model_config = ConfigDict(extra="forbid")

    base_url: str | None = None
    # The environment variable holding the key, instead of the provider's usual one.
    api_key_env: str | None = None
    timeout: float = Field(default=120.0, gt=0)
    # Override the experiment's agent settings for this model.
    temperature: float | None = None
    max_tokens: int | None = Field(default=None, ge=1)
    # OpenAI reasoning models (and servers that accept the same field).
    reasoning_effort: Literal["minimal", "low", "medium", "high"] | None = None
    # Anthropic extended thinking / Gemini thinking budget, in tokens.
    thinking_budget: int | None = Field(default=None, ge=0)
    # Move `<think>...</think>` out of the answer into the reasoning channel.
    think_tags: bool = True
    # Sent as they are in the request body, for server-specific settings (top_k, ...).
    extra_body: dict[str, Any] = Field(default_factory=dict)


@dataclass(frozen=True)
class RemoteTarget:
    name: str
    provider: str
    model: str
    endpoint: Endpoint
    options: ApiOptions
    base_url: str | None
    # Out of the repr, so that no traceback or debug print shows it.
    api_key: str | None = field(repr=False)

    @property
    def key_or_placeholder(self) -> str:
        return self.api_key or UNUSED_KEY


def split_base_url(target: str) -> tuple[str, str | None]:
    model, at, url = target.rpartition("@")
    if at and "://" in url and model:
        return model, url
    return target, None


def resolve_remote(name: str, provider: str, target: str, options: dict[str, Any]
                   ) -> RemoteTarget:
    """Validate a remote model's name and options and fetch its key from the environment."""
    try:
        parsed = ApiOptions.model_validate(options)
    except ValidationError as exc:
        raise AmlabError(f"options of model {name}: {describe_validation_error(exc)}") from None
    endpoint = ENDPOINTS[provider]
    model, url_in_name = split_base_url(target)
    base_url = url_in_name or parsed.base_url or endpoint.base_url
    if provider == "openai-compatible" and base_url is None:
        raise AmlabError(f"model {name}: an openai-compatible model needs a base URL, as "
                         f"'{name}@http://host:port/v1' or options.base_url.")
    key_env = parsed.api_key_env or endpoint.key_env
    key = os.environ.get(key_env) or None
    if provider == "google" and key is None and parsed.api_key_env is None:
        key = os.environ.get("GOOGLE_API_KEY") or None
    if key is None and endpoint.key_required:
        raise AmlabError(f"model {name}: set the environment variable {key_env} to the "
                         f"provider's API key (or name another variable in "
                         f"options.api_key_env).")
    return RemoteTarget(name, provider, model, endpoint, parsed, base_url, key)


def split_think(text: str) -> tuple[str, str]:
    """(answer, reasoning) of a reply that may hold `<think>` blocks, read by the shared
    definition of private reasoning (`amlab.reasoning`): a reply with only `</think>` (the
    chat template opened the block in the prompt) is reasoning up to it; a block never
    closed (the reply was cut) is all reasoning. Other private tags (a scratchpad the
    prompt asked for) stay in the answer, where they are still private."""
    answer, reasoning = split_private(text, tags=("think",))
    return answer.strip(), "\n\n".join(reasoning)
