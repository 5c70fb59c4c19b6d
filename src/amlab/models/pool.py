"""The one place model clients are built for use: every role (agent, judge, monitor) of a
run, of `amlab rejudge` and of `amlab classify` comes from a `ClientPool`, with the same
policy — retries, rate limits, price, the response cache for the providers that declare
themselves cacheable — and the pool closes them all, and the cache, once."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from amlab.models.base import ModelClient
from amlab.models.cache import ResponseCache, cache_identity
from amlab.models.prices import price_of
from amlab.models.providers import capabilities_of
from amlab.models.registry import ClientPolicy, make_client, manage


class ClientPool:
    """Builds and wraps clients; `async with` (or `aclose`) closes every one of them.

    `cache_path`: the response cache's file (None: always ask the provider). `base_dir`: what
    relative fixture and model paths are resolved against. `given`: clients to use instead
    of building one for that name (tests); they are wrapped and closed like the others."""

    def __init__(self, cache_path: Path | None = None, base_dir: Path | None = None,
                 given: Mapping[str, ModelClient] | None = None) -> None:
        # Opens its file only when a cacheable model is first asked.
        self.cache = ResponseCache(cache_path) if cache_path is not None else None
        self.base_dir = base_dir
        self.given = dict(given or {})
        self.clients: list[ModelClient] = []

    def client(self, name: str, options: dict[str, Any] | None = None,
               policy: ClientPolicy | None = None) -> ModelClient:
        """A client for `name` with `policy` (default: the default retries and the price
        table's price), answered from the cache when its provider is cacheable."""
        options = options or {}
        built = self.given.get(name) or make_client(name, options, self.base_dir)
        cache = self.cache if capabilities_of(name).cacheable else None
        managed = manage(built, policy or ClientPolicy(price=price_of(name)), cache,
                         cache_identity(name, options))
        self.clients.append(managed)
        return managed

    async def aclose(self) -> None:
        clients, self.clients = self.clients, []
        try:
            for client in clients:
                await client.aclose()
        finally:
            if self.cache is not None:
                self.cache.close()

    async def __aenter__(self) -> ClientPool:
        return self

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None,
                        traceback: TracebackType | None) -> None:
        await self.aclose()
