"""The dry-run estimate of tokens and cost, per model, before any model is called.

For each condition the prompts are rendered as a trial would send them (system prompt with
the text-tag instructions, or the tool schemas for native calls, plus the user prompt) and
counted at 4 characters a token, the usual ratio of English text under BPE tokenizers
(expect the real count within about 20 %). A trial is then assumed to use all of its
`max_turns` (fewer if `max_output_tokens` stops it sooner), each answer using all of
`max_tokens` (the model's `options.max_tokens` if set), and each call re-sending the whole
conversation so far:

    input  = turns × prompt + max_tokens × turns × (turns − 1) / 2
    output = turns × max_tokens

so the figures are an upper bound; a trial that stops after one turn costs `prompt`
input tokens and its one answer. Cost is the price table's (or the experiment's override).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from amlab.agent import text_tags
from amlab.models.limits import CHARS_PER_TOKEN
from amlab.models.prices import price_of
from amlab.run.experiment import Experiment


@dataclass(frozen=True)
class ModelEstimate:
    model: str
    trials: int
    # Tokens of a trial's first call, averaged over its conditions.
    prompt_tokens: int
    input_tokens: int
    output_tokens: int
    # None when the model has no known price.
    cost_usd: float | None


def prompt_tokens(experiment: Experiment) -> dict[tuple[str, str], int]:
    """Tokens of the first call of each (family, condition key), as the agent sends it."""
    agent = experiment.spec.agent
    counts = {}
    for family, condition in experiment.conditions:
        scenario = family.render(condition)
        tools = tuple(scenario.world.tools)
        protocol = (text_tags.instructions(tools) if agent.protocol == "text" else
                    json.dumps([[t.name, t.description, t.parameters] for t in tools]))
        chars = len(scenario.system_prompt) + len(protocol) + len(scenario.user_prompt)
        counts[(family.name, scenario.condition_key)] = chars // CHARS_PER_TOKEN
    return counts


def estimate(experiment: Experiment) -> list[ModelEstimate]:
    agent = experiment.spec.agent
    prompts = prompt_tokens(experiment)
    estimates = []
    for spec in experiment.spec.models:
        trials = [t for t in experiment.trials() if t.key.model == spec.name]
        first_calls = [prompts[(t.key.family, t.key.condition)] for t in trials]
        answer = int(spec.options.get("max_tokens", agent.max_tokens))
        turns = agent.max_turns
        if agent.max_output_tokens is not None:
            # The loop stops after the turn that reaches the trial's output budget.
            turns = min(turns, -(-agent.max_output_tokens // answer))
        input_tokens = sum(turns * p + answer * turns * (turns - 1) // 2 for p in first_calls)
        output_tokens = len(trials) * turns * answer
        price = price_of(spec.name, spec.price)
        cost = None if price is None else (input_tokens * price.input
                                           + output_tokens * price.output) / 1_000_000
        estimates.append(ModelEstimate(
            spec.name, len(trials), sum(first_calls) // max(len(trials), 1), input_tokens,
            output_tokens, cost))
    return estimates
