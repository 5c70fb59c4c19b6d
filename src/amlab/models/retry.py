"""Retries with exponential backoff and jitter around any model client."""

from __future__ import annotations

from dataclasses import dataclass, field

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

from amlab.models.base import ModelCallError, ModelClient, ModelRequest, ModelResponse


def _retryable(exc: BaseException) -> bool:
    return isinstance(exc, ModelCallError) and exc.retryable


@dataclass
class RetryingClient:
    """Retries retryable failures of `inner`; a `Retry-After` the provider sent is honoured."""

    inner: ModelClient
    attempts: int = 4
    initial_wait: float = 1.0
    max_wait: float = 60.0

    name: str = field(init=False)

    def __post_init__(self) -> None:
        self.name = self.inner.name

    def _wait(self, state: RetryCallState) -> float:
        exponential = wait_exponential_jitter(initial=self.initial_wait, max=self.max_wait)
        backoff = float(exponential(state))
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, ModelCallError) and exc.retry_after is not None:
            return min(max(exc.retry_after, backoff), self.max_wait)
        return backoff

    async def generate(self, request: ModelRequest) -> ModelResponse:
        retrying = AsyncRetrying(stop=stop_after_attempt(self.attempts), wait=self._wait,
                                 retry=retry_if_exception(_retryable), reraise=True)
        async for attempt in retrying:
            with attempt:
                return await self.inner.generate(request)
        raise AssertionError("unreachable: tenacity re-raises the last failure")

    async def aclose(self) -> None:
        await self.inner.aclose()
