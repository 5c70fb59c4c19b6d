"""Token prices: the table shipped in `prices.yaml`, overridable per model in the experiment
file, and the cost of a call's usage."""

from __future__ import annotations

from dataclasses import dataclass, field
from fnmatch import fnmatch
from functools import lru_cache
from importlib import resources

import yaml
from pydantic import BaseModel, ConfigDict, Field

from amlab.models.api import split_base_url
from amlab.models.base import ModelClient, ModelRequest, ModelResponse
from amlab.records import Usage

PER = 1_000_000


class Price(BaseModel):
    """US dollars per million tokens."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    input: float = Field(ge=0)
    output: float = Field(ge=0)
    # Input tokens the provider served from its prompt cache; `input` when not given.
    cached_input: float | None = Field(default=None, ge=0)
    # Input tokens the provider wrote to its prompt cache (Anthropic: 1.25 x input for a
    # 5-minute entry); `input` when not given, as for providers that cache for free.
    cache_write_input: float | None = Field(default=None, ge=0)
    # The fraction off every rate above when the calls go through the provider's batch API
    # (OpenAI and Anthropic: 0.5); none given, a batched call costs the same.
    batch_discount: float | None = Field(default=None, ge=0, lt=1)

    def batched(self) -> Price:
        """This price for calls sent through the batch API."""
        if not self.batch_discount:
            return self
        keep = 1 - self.batch_discount

        def scaled(rate: float | None) -> float | None:
            return None if rate is None else rate * keep

        return Price(input=self.input * keep, output=self.output * keep,
                     cached_input=scaled(self.cached_input),
                     cache_write_input=scaled(self.cache_write_input))

    def cost(self, usage: Usage) -> float:
        """Input tokens are read from the cache, written to it, or neither, each at its own
        rate; `usage.input_tokens` counts all three."""
        cached_rate = self.input if self.cached_input is None else self.cached_input
        write_rate = self.input if self.cache_write_input is None else self.cache_write_input
        fresh = usage.input_tokens - usage.cached_input_tokens - usage.cache_write_input_tokens
        return (fresh * self.input + usage.cached_input_tokens * cached_rate
                + usage.cache_write_input_tokens * write_rate
                + usage.output_tokens * self.output) / PER


@lru_cache(maxsize=1)
def price_table() -> dict[str, Price]:
    text = resources.files("amlab.models").joinpath("prices.yaml").read_text(encoding="utf-8")
    return {pattern: Price.model_validate(entry)
            for pattern, entry in yaml.safe_load(text).items()}


def price_of(name: str, override: Price | None = None, batch: bool = False) -> Price | None:
    """The price of a model name (its `@base-url` ignored): the override if given, else the
    longest matching pattern of the table, else None (unknown); with `batch`, its price
    through the provider's batch API."""
    price = override
    if price is None:
        model, _ = split_base_url(name)
        matches = [pattern for pattern in price_table() if fnmatch(model, pattern)]
        price = price_table()[max(matches, key=len)] if matches else None
    return price.batched() if batch and price is not None else price


@dataclass
class PricedClient:
    """Sets each response's cost from `price`; with no price known the cost stays 0 and the
    results say the price is unknown. An answer that was not paid for this call (`cached`)
    costs 0."""

    inner: ModelClient
    price: Price | None
    name: str = field(init=False)

    def __post_init__(self) -> None:
        self.name = self.inner.name

    async def generate(self, request: ModelRequest) -> ModelResponse:
        response = await self.inner.generate(request)
        if self.price is not None and not response.cached:
            response.usage.cost_usd = self.price.cost(response.usage)
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()
