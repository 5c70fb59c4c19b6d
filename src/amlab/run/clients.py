"""A model's client as the experiment file configures it for a run."""

from __future__ import annotations

from amlab.models import ModelClient
from amlab.models.cache import ResponseCache, cache_identity
from amlab.models.prices import price_of
from amlab.models.registry import ClientPolicy, is_remote, manage
from amlab.run.experiment import Experiment, ModelSpec


def managed_client(experiment: Experiment, spec: ModelSpec, client: ModelClient,
                   cache: ResponseCache | None) -> ModelClient:
    """`client` (an agent or a judge) with the experiment's retries, the model's rate limits
    and price, and the response cache for remote models (local and scripted models cost
    nothing to ask)."""
    name = spec.name
    retry = experiment.spec.retry
    policy = ClientPolicy(
        attempts=retry.attempts, initial_wait=retry.initial_wait, max_wait=retry.max_wait,
        requests_per_minute=spec.requests_per_minute, tokens_per_minute=spec.tokens_per_minute,
        price=price_of(name, spec.price))
    return manage(client, policy, cache if is_remote(name) else None,
                  cache_identity(name, spec.options))
