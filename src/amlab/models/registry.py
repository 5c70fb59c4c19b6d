"""Model names (`provider/model[@base-url]`) to clients, and the layers every client is
wrapped in for use: response cache, cost, retries, rate limits.

Importing this module registers every provider: `local`, `scripted`, and the remote ones of
`api.ENDPOINTS`."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Imported for their registrations (models/providers.py).
from amlab.models import local, remote, scripted  # noqa: F401
from amlab.models.base import ModelClient
from amlab.models.batch import BatchedClient, BatchSettings
from amlab.models.cache import CachedClient, ResponseCache
from amlab.models.limits import LimitedClient
from amlab.models.prices import Price, PricedClient
from amlab.models.providers import PROVIDERS, split_name
from amlab.models.retry import RetryingClient, RetryPolicy


def make_client(name: str, options: dict[str, Any] | None = None,
                base_dir: Path | None = None) -> ModelClient:
    """A client for a model name, built by its provider; `base_dir` resolves relative fixture
    and model paths."""
    provider, target = split_name(name)
    return PROVIDERS[provider].build(name, target, options or {}, base_dir)


@dataclass(frozen=True)
class ClientPolicy:
    """How a model's client is wrapped (see `manage`)."""

    retry: RetryPolicy = field(default_factory=RetryPolicy)
    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None
    price: Price | None = None
    # Send the calls in provider batches (models/batch.py); `price` is then the batch price.
    batch: BatchSettings | None = None


def manage(client: ModelClient, policy: ClientPolicy, cache: ResponseCache | None = None,
           identity: str = "") -> ModelClient:
    """`client` as a run uses it: each attempt waits for the rate limits, failures are
    retried, the cost is set from the price, and answers are cached when `cache` is given
    (keyed by `identity`, the model's name and options, plus the request). With
    `policy.batch`, calls go out in batches, the cache's file keeping which batch holds
    which request (a cache in memory when there is none)."""
    identity = identity or client.name
    if policy.batch is not None:
        client = BatchedClient.around(client, cache or ResponseCache.in_memory(), identity,
                                      policy.batch)
    limited = LimitedClient(client, policy.requests_per_minute, policy.tokens_per_minute)
    retrying = RetryingClient(limited, policy.retry)
    priced: ModelClient = PricedClient(retrying, policy.price)
    return CachedClient(priced, cache, identity) if cache else priced
