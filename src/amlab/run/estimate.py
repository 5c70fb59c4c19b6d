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
input tokens and its one answer. Each judge reads every trial once: its instructions and
rubrics, the situation, the agent's prompts and every answer (input), and replies with at
most `JUDGE_REPLY_TOKENS` (output); replies it must ask again for are not counted. Cost is
the price table's (or the experiment's override).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from amlab.agent import text_tags
from amlab.detect import TrialView
from amlab.detect.judge import JUDGE_REPLY_TOKENS, build_messages, judge_rubrics
from amlab.detect.reading import with_reading_behaviours
from amlab.models.limits import CHARS_PER_TOKEN
from amlab.models.prices import Price, price_of
from amlab.records import Message
from amlab.run.experiment import Experiment
from amlab.run.trial import TrialSpec


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


@dataclass(frozen=True)
class ConditionTokens:
    # The agent's first call.
    prompt: int
    # A judge's call before the agent's answers: instructions, rubrics, situation, prompts.
    judge: int


def condition_tokens(experiment: Experiment) -> dict[tuple[str, str], ConditionTokens]:
    """Tokens of each (family, condition key), as the agent and a judge would send them."""
    agent = experiment.spec.agent
    counts = {}
    for family, condition in experiment.conditions:
        scenario = family.render(condition)
        tools = tuple(scenario.world.tools)
        protocol = (text_tags.instructions(tools) if agent.protocol == "text" else
                    json.dumps([[t.name, t.description, t.parameters] for t in tools]))
        system = scenario.system_prompt + protocol
        view = TrialView((), (Message("system", system), Message("user", scenario.user_prompt)))
        rubrics = judge_rubrics(with_reading_behaviours(list(family.spec.detectors)))
        judge = sum(len(m.content) for m in build_messages(view, scenario.facts, rubrics))
        counts[(family.name, scenario.condition_key)] = ConditionTokens(
            (len(system) + len(scenario.user_prompt)) // CHARS_PER_TOKEN,
            judge // CHARS_PER_TOKEN)
    return counts


def scenario_of(trial: TrialSpec) -> tuple[str, str]:
    """The (family, condition key) of what a trial's agent reads: its arms (the monitor's)
    do not change it."""
    return trial.trial.family, trial.trial.family_key


def estimate(experiment: Experiment) -> list[ModelEstimate]:
    """A row per agent model, then a row per judge (named `NAME (judge)`)."""
    agent = experiment.spec.agent
    tokens = condition_tokens(experiment)
    planned = experiment.trials()
    estimates = []
    # Upper bound of the agent's answers in a trial of each model, for the judges.
    answers: dict[str, int] = {}
    for spec in experiment.spec.models:
        trials = [t for t in planned if t.key.model == spec.name]
        first_calls = [tokens[scenario_of(t)].prompt for t in trials]
        answer = int(spec.options.get("max_tokens", agent.max_tokens))
        turns = agent.max_turns
        if agent.max_output_tokens is not None:
            # The loop stops after the turn that reaches the trial's output budget.
            turns = min(turns, -(-agent.max_output_tokens // answer))
        answers[spec.name] = turns * answer
        input_tokens = sum(turns * p + answer * turns * (turns - 1) // 2 for p in first_calls)
        price = price_of(spec.name, spec.price, batch=spec.batch is not None)
        estimates.append(_priced(spec.name, price, len(trials),
                                 sum(first_calls) // max(len(trials), 1), input_tokens,
                                 len(trials) * turns * answer))
    for judge in experiment.spec.judge_specs:
        reads = [tokens[scenario_of(t)].judge + answers[t.key.model]
                 for t in planned]
        price = price_of(judge.name, judge.price, batch=judge.batch is not None)
        estimates.append(_priced(f"{judge.name} (judge)", price,
                                 len(planned), sum(reads) // max(len(reads), 1), sum(reads),
                                 len(planned) * JUDGE_REPLY_TOKENS))
    return estimates


def _priced(model: str, price: Price | None, trials: int, prompt_tokens: int,
            input_tokens: int, output_tokens: int) -> ModelEstimate:
    cost = None if price is None else (input_tokens * price.input
                                       + output_tokens * price.output) / 1_000_000
    return ModelEstimate(model, trials, prompt_tokens, input_tokens, output_tokens, cost)
