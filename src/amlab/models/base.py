"""The one interface every model provider implements, and the request/response records."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from amlab.records import Message, ToolCall, Usage
from amlab.world.base import ToolSpec

FinishReason = Literal["stop", "length", "tool_calls", "refusal", "content_filter"]


@dataclass(frozen=True)
class GenerationConfig:
    max_tokens: int = 1024
    temperature: float | None = None
    seed: int | None = None
    stop: tuple[str, ...] = ()


@dataclass(frozen=True)
class ModelRequest:
    messages: list[Message]
    # Offered for native function calling; empty when the agent uses the text-tag protocol.
    tools: tuple[ToolSpec, ...] = ()
    config: GenerationConfig = GenerationConfig()
    # GBNF grammars of the text-tag protocol, for models that can be constrained by one:
    # `grammar` from the tool schemas alone, `world_grammar` also with the values that exist
    # in the trial's world (agent/grammar.py). The latter is built on demand: it costs
    # milliseconds per turn, which only a model that uses it should pay.
    grammar: str | None = None
    world_grammar: Callable[[], str] | None = None
    # Which sample of a cell this is: part of the cache key so samples stay independent.
    sample: int = 0


@dataclass
class ModelResponse:
    text: str
    tool_calls: list[ToolCall] = field(default_factory=list)
    reasoning: str = ""
    usage: Usage = field(default_factory=Usage)
    finish_reason: FinishReason = "stop"
    # See `records.Message.provider_content`.
    provider_content: list[dict[str, Any]] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict)
    # The model id the provider says answered (a dated snapshot where the name asked for
    # was an alias); scripted and local models give their own. '' when it said none.
    model_id: str = ""
    # Answered from amlab's response cache, not by the provider this run.
    cached: bool = False


class ModelCallError(Exception):
    """A call that failed; `retryable` says whether trying again may help. The agent loop
    sets `usage` and `monitor_usage` to what the trial's earlier calls used, so that the
    tokens and cost already paid are stored with the error."""

    def __init__(self, message: str, *, retryable: bool, retry_after: float | None = None):
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after
        self.usage = Usage()
        self.monitor_usage = Usage()


class ModelClient(Protocol):
    """A model by name: `generate` is all the agent loop needs."""

    name: str

    async def generate(self, request: ModelRequest) -> ModelResponse: ...

    async def aclose(self) -> None: ...
