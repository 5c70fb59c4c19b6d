"""Retries with exponential backoff and jitter around any model client, and the one place
that decides which provider failures are worth retrying.

Retryable: HTTP 408, 409, 425, 429 and every 5xx (529 "overloaded" included), timeouts,
dropped or refused connections, and a body that is truncated or not the JSON expected.
Not retryable: every other 4xx (a bad key, a bad request, an unknown model). After
`attempts` tries the last failure propagates; the runner stores the trial as an error and
`amlab run --resume` tries it again.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import random
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

import httpx
import httpx2
import pydantic

from amlab.models.base import ModelCallError, ModelClient, ModelRequest, ModelResponse

T = TypeVar("T")

RETRYABLE_STATUS = frozenset({408, 409, 425, 429})
_TIMEOUTS = (TimeoutError, httpx.TimeoutException, httpx2.TimeoutException)
_DROPPED = (ConnectionError, httpx.TransportError, httpx2.TransportError)
# aiohttp's own failures, named rather than imported (a run need not load aiohttp): the
# google-genai SDK lets them through unwrapped when it calls through aiohttp.
_AIOHTTP_DROPPED = frozenset({"ClientConnectionError", "ClientPayloadError"})
_MALFORMED = (json.JSONDecodeError, pydantic.ValidationError, KeyError, IndexError, TypeError)
_MESSAGE_LIMIT = 300
_SDK_PREFIX = re.compile(r"^Error code: \d+ - ")


def is_retryable_status(status: int) -> bool:
    return status in RETRYABLE_STATUS or status >= 500


def retry_after_seconds(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """The wait a provider asked for: `retry-after-ms`, or `Retry-After` in seconds or as an
    HTTP date; None when it asked for nothing readable."""
    lowered = {k.lower(): v for k, v in headers.items()}
    try:
        if "retry-after-ms" in lowered:
            return max(0.0, float(lowered["retry-after-ms"]) / 1000)
        value = lowered.get("retry-after")
        if value is None:
            return None
        try:
            return max(0.0, float(value))
        except ValueError:
            when = email.utils.parsedate_to_datetime(value).timestamp()
            return max(0.0, when - (time.time() if now is None else now))
    except (ValueError, TypeError):
        return None


def redact(text: str, secret: str | None) -> str:
    """`text` without the key, nor the masked prefixes of it some providers echo back."""
    if not secret:
        return text
    text = text.replace(secret, "[key]")
    prefix = secret[:8]
    return text.replace(prefix, "[key]") if len(prefix) == 8 else text


def classify_failure(name: str, exc: BaseException, secret: str | None = None
                     ) -> ModelCallError | None:
    """A provider SDK's exception as a `ModelCallError` (message free of the key), or None
    when it is not a call failure at all (a bug, which should propagate as it is).

    SDK errors are read by shape, not type, so that one function serves every SDK: HTTP
    errors carry `status_code` (openai, anthropic) or an int `code` (google-genai) and a
    `response` with headers; connection errors wrap the transport's exception."""
    status = getattr(exc, "status_code", None)
    if not isinstance(status, int):
        code = getattr(exc, "code", None)
        status = code if isinstance(code, int) and 100 <= code < 600 else None
    if status is not None:
        response = getattr(exc, "response", None)
        headers = getattr(response, "headers", None) or {}
        detail = _SDK_PREFIX.sub("", str(getattr(exc, "message", "") or exc))
        return ModelCallError(
            redact(f"{name}: HTTP {status}: {_shorten(detail)}", secret),
            retryable=is_retryable_status(status), retry_after=retry_after_seconds(headers))
    kind = type(exc).__name__
    cause = exc.__cause__ or exc.__context__
    if "Timeout" in kind or isinstance(exc, _TIMEOUTS) or isinstance(cause, _TIMEOUTS):
        return ModelCallError(f"{name}: the request timed out", retryable=True)
    if ("Connection" in kind or isinstance(exc, _DROPPED)
            or any(c.__name__ in _AIOHTTP_DROPPED for c in type(exc).__mro__)):
        reason = type(cause).__name__ if cause else kind
        return ModelCallError(f"{name}: the connection failed or was dropped ({reason})",
                              retryable=True)
    if "ResponseValidation" in kind or isinstance(exc, _MALFORMED):
        return malformed(name, exc)
    return None


def malformed(name: str, exc: BaseException) -> ModelCallError:
    """A response the adapter could not read (wrong shape, missing fields): retryable, as a
    body cut short or garbled by a proxy usually is."""
    return ModelCallError(f"{name}: the response was truncated or malformed "
                          f"({type(exc).__name__})", retryable=True)


# What reading a response of the wrong shape raises.
READ_ERRORS = (AttributeError, TypeError, KeyError, IndexError, ValueError)


async def call_and_read(name: str, secret: str | None, call: Awaitable[T],
                        read: Callable[[T], ModelResponse]) -> ModelResponse:
    """An SDK call and the reading of its answer, as every remote adapter makes them: the
    call's failures classified (unknown ones raised as they are), a response of the wrong
    shape a retryable malformed-response error."""
    raw = await call_classified(name, secret, call)
    try:
        return read(raw)
    except READ_ERRORS as exc:
        raise malformed(name, exc) from None


async def call_classified(name: str, secret: str | None, call: Awaitable[T]) -> T:
    """An SDK call whose failures are raised as `ModelCallError` (unknown ones as they are)."""
    try:
        return await call
    except Exception as exc:
        failure = classify_failure(name, exc, secret)
        if failure is None:
            raise
        raise failure from None


def _shorten(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _MESSAGE_LIMIT else text[: _MESSAGE_LIMIT - 1] + "…"


class RetryPolicy(pydantic.BaseModel):
    """How often a failed call is asked again: `attempts` tries in all, the wait doubling
    from `initial_wait` (with jitter) up to `max_wait`. Both the experiment file's `retry:`
    and the default of every client, so its defaults are written once."""

    model_config = pydantic.ConfigDict(extra="forbid", frozen=True)

    attempts: int = pydantic.Field(default=4, ge=1)
    initial_wait: float = pydantic.Field(default=1.0, ge=0)
    max_wait: float = pydantic.Field(default=60.0, ge=0)


@dataclass
class RetryingClient:
    """Retries retryable failures of `inner` as `policy` says; a `Retry-After` the provider
    sent is honoured (up to `max_wait`), otherwise the wait doubles with jitter.

    A plain loop: a retry library's per-call state cost more than a whole scripted turn,
    and nearly every call succeeds at its first attempt."""

    inner: ModelClient
    policy: RetryPolicy = field(default_factory=RetryPolicy)

    name: str = field(init=False)

    def __post_init__(self) -> None:
        self.name = self.inner.name

    def wait(self, failed_attempt: int, failure: ModelCallError) -> float:
        """Seconds to wait after the `failed_attempt`-th attempt (from 1) failed."""
        initial_wait, max_wait = self.policy.initial_wait, self.policy.max_wait
        if failure.retry_after is not None:
            return min(failure.retry_after, max(max_wait, 0.0))
        backoff = initial_wait * 2.0 ** (failed_attempt - 1) + random.uniform(0, initial_wait)
        return max(0.0, min(backoff, max_wait))

    async def generate(self, request: ModelRequest) -> ModelResponse:
        attempt = 1
        while True:
            try:
                return await self.inner.generate(request)
            except ModelCallError as failure:
                if not failure.retryable or attempt >= self.policy.attempts:
                    raise
                await asyncio.sleep(self.wait(attempt, failure))
                attempt += 1

    async def aclose(self) -> None:
        await self.inner.aclose()
