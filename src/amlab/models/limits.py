"""Per-model request and token rates (aiolimiter), set in the experiment file:

    models:
      - name: openai/gpt-4.1
        concurrency: 16              # trials in flight at once (each makes one call at a time)
        requests_per_minute: 500
        tokens_per_minute: 200000

A call takes one request and its estimated tokens (prompt characters / 4, plus its
max_tokens) before it is sent; each retry takes them again.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from aiolimiter import AsyncLimiter

from amlab.models.base import ModelClient, ModelRequest, ModelResponse

CHARS_PER_TOKEN = 4


def estimate_tokens(request: ModelRequest) -> int:
    chars = sum(len(m.content) for m in request.messages)
    return chars // CHARS_PER_TOKEN + request.config.max_tokens


@dataclass
class LimitedClient:
    inner: ModelClient
    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None
    name: str = field(init=False)
    _requests: AsyncLimiter | None = field(default=None, init=False, repr=False)
    _tokens: AsyncLimiter | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.name = self.inner.name
        if self.requests_per_minute:
            self._requests = AsyncLimiter(self.requests_per_minute, 60)
        if self.tokens_per_minute:
            self._tokens = AsyncLimiter(self.tokens_per_minute, 60)

    async def generate(self, request: ModelRequest) -> ModelResponse:
        if self._requests is not None:
            await self._requests.acquire()
        if self._tokens is not None:
            # A call larger than the whole minute's budget waits for a full bucket.
            await self._tokens.acquire(min(estimate_tokens(request), self._tokens.max_rate))
        return await self.inner.generate(request)

    async def aclose(self) -> None:
        await self.inner.aclose()
