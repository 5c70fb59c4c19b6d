"""Model names (`provider/model[@base-url]`) to clients, and the layers every client is
wrapped in for a run: response cache, cost, retries, rate limits."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from amlab.errors import AmlabError
from amlab.models.api import ENDPOINTS, resolve_remote
from amlab.models.base import ModelClient
from amlab.models.cache import CachedClient, ResponseCache
from amlab.models.limits import LimitedClient
from amlab.models.local import BUNDLED, LocalModel
from amlab.models.prices import Price, PricedClient
from amlab.models.retry import RetryingClient
from amlab.models.scripted import ScriptedModel

PROVIDERS = ("local", "scripted", *ENDPOINTS)

def split_name(name: str) -> tuple[str, str]:
    provider, _, target = name.partition("/")
    if not provider or not target:
        raise AmlabError(f"model '{name}' is not of the form provider/model; providers are "
                         f"{', '.join(PROVIDERS)}.")
    if provider not in PROVIDERS:
        raise AmlabError(f"model '{name}': '{provider}' is not a known provider; providers are "
                         f"{', '.join(PROVIDERS)}.")
    return provider, target


def make_client(name: str, options: dict[str, Any] | None = None,
                base_dir: Path | None = None) -> ModelClient:
    """A client for a model name; `base_dir` resolves relative fixture and model paths."""
    provider, target = split_name(name)
    options = options or {}
    if provider in ENDPOINTS:
        return make_remote_client(name, provider, target, options)
    if provider == "scripted":
        if options:
            raise AmlabError(f"model {name}: scripted models take no options "
                             f"(got {', '.join(options)}).")
        return ScriptedModel.from_fixture(name, _resolve(target, base_dir, ".yaml"))
    local_target = target if target in BUNDLED else str(_resolve(target, base_dir, ".gguf"))
    return LocalModel.create(name, local_target, options)


def _resolve(target: str, base_dir: Path | None, suffix: str) -> Path:
    path = Path(target)
    if path.suffix != suffix:
        path = path.with_name(path.name + suffix)
    if not path.is_absolute() and base_dir is not None and not path.exists():
        path = base_dir / path
    return path


def make_remote_client(name: str, provider: str, target: str, options: dict[str, Any]
                       ) -> ModelClient:
    # The SDKs are imported only when a model of theirs is used.
    remote = resolve_remote(name, provider, target, options)
    if remote.endpoint.sdk == "anthropic":
        from amlab.models.anthropic_api import AnthropicModel
        return AnthropicModel.create(remote)
    if remote.endpoint.sdk == "google":
        from amlab.models.google_api import GoogleModel
        return GoogleModel.create(remote)
    from amlab.models.openai_api import OpenAIModel
    return OpenAIModel.create(remote)


def is_remote(name: str) -> bool:
    return name.partition("/")[0] in ENDPOINTS


@dataclass(frozen=True)
class ClientPolicy:
    """How a run wraps a model's client (see `manage`)."""

    attempts: int = 4
    initial_wait: float = 1.0
    max_wait: float = 60.0
    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None
    price: Price | None = None


def manage(client: ModelClient, policy: ClientPolicy, cache: ResponseCache | None = None,
           identity: str = "") -> ModelClient:
    """`client` as a run uses it: each attempt waits for the rate limits, failures are
    retried, the cost is set from the price, and answers are cached when `cache` is given
    (keyed by `identity`, the model's name and options, plus the request)."""
    limited = LimitedClient(client, policy.requests_per_minute, policy.tokens_per_minute)
    retrying = RetryingClient(limited, policy.attempts, policy.initial_wait, policy.max_wait)
    priced: ModelClient = PricedClient(retrying, policy.price)
    return CachedClient(priced, cache, identity or client.name) if cache else priced
