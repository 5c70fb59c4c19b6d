"""Batch APIs: a model's calls sent as provider batches (OpenAI Batch, Anthropic Message
Batches), billed at the provider's batch price, instead of one HTTP call each.

`BatchedClient` sits where the provider's client would (innermost of `registry.manage`):
each `generate` enqueues its request and awaits its answer. A batch is submitted when
`size` requests wait, or `gather_seconds` after the first of them began to wait; its status
is polled every `poll_seconds`, the wait doubling up to `max_poll_seconds`; when it ends,
each request gets its answer or its error. An item that failed is raised as a
`ModelCallError`: `RetryingClient` around this client asks again, and the retry goes out in
a new batch.

Interruption: which batch holds which request (by the response cache's request key) is
written to the response cache's database before anything waits on it (`cache.py`,
table `batch_requests`). A resumed run that asks the same request finds its batch and
collects it instead of submitting again, so nothing is paid twice; answers collected for
requests nobody is waiting on yet are kept there until a trial asks for them.

Only single-turn trials and judge calls may be batched (`run/experiment.py` refuses the
rest): a batch may take up to a day, which a multi-turn trial would wait at every turn.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Protocol, TypeVar, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from amlab.errors import AmlabError
from amlab.models.base import ModelCallError, ModelClient, ModelRequest, ModelResponse
from amlab.models.cache import ResponseCache, request_key

T = TypeVar("T")

# What a batch gives back for each of its requests (by key): the answer, or why there is none.
Outcome = ModelResponse | ModelCallError


class BatchGone(ModelCallError):
    """The provider says a batch never ran (refused as a whole) or does not exist (gone
    since an earlier run stored its id): nothing of it will be answered or billed, so its
    requests may go out again."""

    def __init__(self, message: str) -> None:
        super().__init__(message, retryable=True)


class BatchSettings(BaseModel):
    """`batch:` of a model entry (`batch: true` takes these defaults)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # A batch is submitted when this many requests wait ...
    size: int = Field(default=1000, ge=1, le=50_000)
    # ... or this many seconds after the first of them began to wait.
    gather_seconds: float = Field(default=10.0, gt=0)
    # The first wait between two looks at a batch's status; it doubles up to the maximum.
    poll_seconds: float = Field(default=30.0, gt=0)
    max_poll_seconds: float = Field(default=600.0, gt=0)


@runtime_checkable
class BatchApi(Protocol):
    """A provider client's batch endpoints (models/openai_api.py, models/anthropic_api.py).
    Each raises `ModelCallError` for a call that failed (`retry.call_classified`), and
    `BatchGone` for a batch the provider refused as a whole or does not know."""

    name: str

    async def submit_batch(self, requests: Mapping[str, ModelRequest]) -> str:
        """Submit `requests` (by key, used as the provider's custom id); the batch's id."""
        ...

    async def batch_ended(self, batch_id: str) -> bool:
        """Whether the provider has finished with the batch (answered, failed, expired)."""
        ...

    async def batch_results(self, batch_id: str) -> dict[str, Outcome]:
        """The outcome of each request of an ended batch, by key."""
        ...

    async def aclose(self) -> None: ...


@dataclass
class BatchedClient:
    """`api`'s requests sent in batches (see the module's text); `ledger` remembers which
    batch holds which request, `identity` keys requests as the response cache does."""

    api: BatchApi
    ledger: ResponseCache
    identity: str
    settings: BatchSettings
    name: str = field(init=False)
    # Requests not yet submitted, by key.
    _waiting: dict[str, ModelRequest] = field(default_factory=dict, init=False)
    # The answer each request in flight awaits, and how many callers await it.
    _answers: dict[str, asyncio.Future[ModelResponse]] = field(default_factory=dict, init=False)
    _callers: Counter[str] = field(default_factory=Counter, init=False)
    _gathering: asyncio.Task[None] | None = field(default=None, init=False)
    _submitting: set[asyncio.Task[None]] = field(default_factory=set, init=False)
    # The batch each collecting task follows.
    _collecting: dict[str, asyncio.Task[None]] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        self.name = self.api.name

    @classmethod
    def around(cls, client: ModelClient, ledger: ResponseCache, identity: str,
               settings: BatchSettings) -> BatchedClient:
        if not isinstance(client, BatchApi):
            raise AmlabError(f"model {client.name}: its provider has no batch API amlab can "
                             f"use; remove batch from its entry.")
        return cls(client, ledger, identity, settings)

    async def generate(self, request: ModelRequest) -> ModelResponse:
        key = request_key(self.identity, request)
        answer = self._answers.get(key)
        first = answer is None
        if answer is None:
            collected = self.ledger.collected(key)
            if collected is not None:  # collected by an earlier run, never handed out
                self.ledger.forget(key)
                return collected
            answer = self._answers[key] = asyncio.get_running_loop().create_future()
            batch_id = self.ledger.batch_of(key)
            if batch_id is not None:  # submitted before an interruption: collect it
                self._follow(batch_id)
            else:
                self._waiting[key] = request
                self._gather()
        self._callers[key] += 1
        try:
            # Shielded: a caller cancelled (an interrupted trial) leaves the batch alone.
            response = await asyncio.shield(answer)
            if first:
                return response
            # The same request asked again while in flight (a judge reading two identical
            # transcripts) went out once: the others share its answer, as from the cache,
            # so that it is billed once.
            shared = copy.deepcopy(response)
            return replace(shared, cached=True, usage=replace(shared.usage, cost_usd=0.0))
        finally:
            self._callers[key] -= 1
            if not self._callers[key]:
                del self._callers[key]
                # Nobody waits: an answer that comes later is kept in the ledger.
                if self._answers.get(key) is answer:
                    del self._answers[key]

    def _gather(self) -> None:
        if len(self._waiting) >= self.settings.size:
            self._submit_waiting()
        elif self._gathering is None:
            self._gathering = asyncio.create_task(self._submit_later())

    async def _submit_later(self) -> None:
        await asyncio.sleep(self.settings.gather_seconds)
        self._gathering = None
        self._submit_waiting()

    def _submit_waiting(self) -> None:
        while self._waiting:
            keys = list(self._waiting)[: self.settings.size]
            requests = {key: self._waiting.pop(key) for key in keys}
            task = asyncio.create_task(self._submit(requests))
            self._submitting.add(task)
            task.add_done_callback(self._submitting.discard)
        if self._gathering is not None:
            self._gathering.cancel()
            self._gathering = None

    async def _submit(self, requests: dict[str, ModelRequest]) -> None:
        try:
            batch_id = await self.api.submit_batch(requests)
        except Exception as failure:  # a bug too: its callers must not wait forever
            self._resolve({key: failure for key in requests})
            return
        # Written before anything waits on it: an interruption from here on collects it.
        self.ledger.record(batch_id, self.name, list(requests))
        self._follow(batch_id)

    def _follow(self, batch_id: str) -> None:
        if batch_id not in self._collecting:
            task = asyncio.create_task(self._collect(batch_id))
            self._collecting[batch_id] = task
            task.add_done_callback(lambda _: self._collecting.pop(batch_id, None))

    async def _collect(self, batch_id: str) -> None:
        """Wait for the batch to end, then hand out (or keep) each of its outcomes."""
        missing = ModelCallError(f"{self.name}: batch {batch_id} ended without an answer to "
                                 f"this request", retryable=True)
        outcomes: dict[str, Outcome] = {}
        try:
            wait = self.settings.poll_seconds
            while not await self._patiently(lambda: self.api.batch_ended(batch_id)):
                await asyncio.sleep(wait)
                wait = min(wait * 2, self.settings.max_poll_seconds)
            outcomes = await self._patiently(lambda: self.api.batch_results(batch_id))
        except BatchGone as gone:  # asked again in a new batch, up to the retries' attempts
            missing = gone
        except Exception as failure:
            # It cannot be read now (a key refused, a bug): its requests fail, and stay in
            # the ledger, so that a later run collects the batch rather than pay again.
            self._resolve({key: failure for key in self.ledger.keys_of(batch_id)})
            if not isinstance(failure, ModelCallError):
                raise
            return
        keys = self.ledger.keys_of(batch_id)
        for key in keys:
            outcome = outcomes.get(key, missing)
            if isinstance(outcome, ModelResponse) and key not in self._answers:
                self.ledger.collect(key, outcome)  # a later request (or run) takes it
            else:
                self.ledger.forget(key)
        self._resolve({key: outcomes.get(key, missing) for key in keys})

    async def _patiently(self, call: Callable[[], Awaitable[T]]) -> T:
        """`call()`, asked again after a retryable failure (waiting as between polls): a
        provider that is briefly unreachable does not lose the batch."""
        wait = self.settings.poll_seconds
        while True:
            try:
                return await call()
            except ModelCallError as failure:
                if isinstance(failure, BatchGone) or not failure.retryable:
                    raise
            await asyncio.sleep(wait)
            wait = min(wait * 2, self.settings.max_poll_seconds)

    def _resolve(self, outcomes: Mapping[str, ModelResponse | Exception]) -> None:
        for key, outcome in outcomes.items():
            answer = self._answers.get(key)
            if answer is None or answer.done():
                continue
            if isinstance(outcome, ModelResponse):
                answer.set_result(outcome)
            else:
                answer.set_exception(outcome)

    async def aclose(self) -> None:
        # A batch being created when the run stops is paid for: let its creation finish
        # (within the request timeout) so that its id is in the ledger for --resume.
        await asyncio.gather(*self._submitting, return_exceptions=True)
        tasks = [*self._collecting.values(), *([self._gathering] if self._gathering else [])]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.api.aclose()
