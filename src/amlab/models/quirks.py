"""Model-specific quirks, all in one place: which sampling parameters a model refuses and
how its provider spells them. The adapters ask `sampling()` and send what it returns.

Rules are matched in order on `provider/model` (fnmatch patterns); later rules override
earlier ones. Add a rule here, not an `if` in an adapter.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from fnmatch import fnmatch
from typing import Any

from amlab.models.api import ApiOptions
from amlab.models.base import GenerationConfig


@dataclass(frozen=True)
class Quirks:
    temperature: bool = True
    seed: bool = True
    stop: bool = True
    # OpenAI's own API wants `max_completion_tokens`; compatible servers read `max_tokens`.
    max_tokens_field: str = "max_tokens"
    # Accepts a thinking configuration (Gemini models before 2.5 reject one).
    thinking: bool = True


RULES: tuple[tuple[str, dict[str, Any]], ...] = (
    ("openai/*", {"max_tokens_field": "max_completion_tokens"}),
    # Reasoning models reject any temperature but the default, and stop sequences.
    ("openai/o[0-9]*", {"temperature": False, "stop": False}),
    ("openai/gpt-5*", {"temperature": False, "stop": False}),
    ("*/deepseek-reasoner", {"temperature": False}),
    # The Messages API has no seed.
    ("anthropic/*", {"seed": False}),
    ("google/gemini-1*", {"thinking": False}),
    ("google/gemini-2.0*", {"thinking": False}),
)


@dataclass(frozen=True)
class Sampling:
    max_tokens: int
    temperature: float | None
    seed: int | None
    stop: tuple[str, ...]
    max_tokens_field: str
    thinking_budget: int | None
    # Whether to send a thinking configuration at all.
    thinking: bool


def quirks_for(model: str, *, thinking: bool = False) -> Quirks:
    quirks = Quirks()
    for pattern, overrides in RULES:
        if fnmatch(model, pattern):
            quirks = replace(quirks, **overrides)
    if thinking and model.startswith("anthropic/"):
        # Extended thinking accepts only the default temperature.
        quirks = replace(quirks, temperature=False)
    return quirks


def sampling(model: str, config: GenerationConfig, options: ApiOptions) -> Sampling:
    """The parameters to send for `model` (`provider/model`): the request's settings,
    overridden by the model's options, minus what the model refuses."""
    budget = options.thinking_budget
    quirks = quirks_for(model, thinking=bool(budget))
    temperature = options.temperature if options.temperature is not None else config.temperature
    max_tokens = options.max_tokens or config.max_tokens
    if budget and model.startswith("anthropic/"):
        # Anthropic counts thinking inside max_tokens: the answer keeps its own budget.
        max_tokens += budget
    return Sampling(
        max_tokens=max_tokens,
        temperature=temperature if quirks.temperature else None,
        seed=config.seed if quirks.seed else None,
        stop=config.stop if quirks.stop else (),
        max_tokens_field=quirks.max_tokens_field,
        thinking_budget=budget if quirks.thinking else None,
        thinking=quirks.thinking,
    )
