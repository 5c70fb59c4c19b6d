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
most `JUDGE_REPLY_TOKENS` (output); replies it must ask again for are not counted. A model
monitor reviews one call a turn of each trial it watches, reading its rubric, the prompts and
the answers so far, and replies with at most `MONITOR_REPLY_TOKENS`. Cost is the price
table's (or the experiment's override). A budget (run/budget.py) reserves this estimate for
a trial until trials of its model have finished.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass

from amlab.agent import text_tags
from amlab.detect import TrialView
from amlab.detect.judge import JUDGE_REPLY_TOKENS, build_messages, judge_rubrics
from amlab.detect.reading import with_reading_behaviours
from amlab.models.limits import CHARS_PER_TOKEN
from amlab.models.prices import Price, price_of
from amlab.monitor import default_rubric
from amlab.monitor.monitors import MONITOR_REPLY_TOKENS
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


# What makes two trials' estimates the same: model, (family, condition key), watched by a
# model monitor.
TrialShape = tuple[str, tuple[str, str], bool]


def shape_of(trial: TrialSpec) -> TrialShape:
    return trial.key.model, scenario_of(trial), trial.trial.arms.watched


@dataclass(frozen=True)
class RoleTokens:
    """What one role's calls in one trial send and receive, at most."""

    # The estimate's row: the agent's model, `NAME (judge)` or `NAME (monitor)`.
    role: str
    price: Price | None
    first_call: int
    input_tokens: int
    output_tokens: int

    @property
    def cost_usd(self) -> float | None:
        if self.price is None:
            return None
        return (self.input_tokens * self.price.input
                + self.output_tokens * self.price.output) / 1_000_000


def trial_tokens(experiment: Experiment) -> dict[TrialShape, list[RoleTokens]]:
    """Each planned shape of trial: its agent's calls, then each judge's, then a model
    monitor's (one review a turn) when it watches the trial."""
    agent = experiment.spec.agent
    tokens = condition_tokens(experiment)
    monitor = experiment.spec.monitor
    monitor_model = monitor.model if monitor else None
    rubric = 0
    if monitor_model is not None:
        rubric = len(experiment.monitor_rubric or default_rubric()) // CHARS_PER_TOKEN
    shapes: dict[TrialShape, list[RoleTokens]] = {}
    for trial in experiment.trials():
        shape = shape_of(trial)
        if shape in shapes:
            continue
        model, scenario, watched = shape
        spec = experiment.model(model)
        answer = int(spec.options.get("max_tokens", agent.max_tokens))
        turns = agent.max_turns
        if agent.max_output_tokens is not None:
            # The loop stops after the turn that reaches the trial's output budget.
            turns = min(turns, -(-agent.max_output_tokens // answer))
        prompt = tokens[scenario].prompt
        price = price_of(model, spec.price, batch=spec.batch is not None)
        roles = [RoleTokens(model, price, prompt,
                            turns * prompt + answer * turns * (turns - 1) // 2,
                            turns * answer)]
        read = tokens[scenario].judge + turns * answer
        roles += [RoleTokens(f"{judge.name} (judge)",
                             price_of(judge.name, judge.price, batch=judge.batch is not None),
                             read, read, JUDGE_REPLY_TOKENS)
                  for judge in experiment.spec.judge_specs]
        if watched and monitor_model is not None:
            # Each review reads the rubric, the prompts and the answers so far.
            first = rubric + prompt + answer
            roles.append(RoleTokens(f"{monitor_model.name} (monitor)",
                                    price_of(monitor_model.name, monitor_model.price,
                                             batch=monitor_model.batch is not None), first,
                                    turns * (rubric + prompt) + answer * turns * (turns + 1) // 2,
                                    turns * MONITOR_REPLY_TOKENS))
        shapes[shape] = roles
    return shapes


def estimate(experiment: Experiment) -> list[ModelEstimate]:
    """A row per agent model, then a row per judge (named `NAME (judge)`), then one for a
    model monitor (`NAME (monitor)`)."""
    shapes = trial_tokens(experiment)
    counts = Counter(shape_of(t) for t in experiment.trials())
    rows: dict[str, list[tuple[RoleTokens, int]]] = {}
    # Each shape lists its agent, then its judges, then its monitor: by position, the rows
    # come in that order, and agents in the file's order of models.
    for position in range(max(len(roles) for roles in shapes.values())):
        for shape, roles in shapes.items():
            if position < len(roles):
                rows.setdefault(roles[position].role, []).append((roles[position],
                                                                  counts[shape]))
    estimates = []
    for name, uses in rows.items():
        trials = sum(n for _, n in uses)
        cost = sum((role.cost_usd or 0) * n for role, n in uses)
        estimates.append(ModelEstimate(
            name, trials, sum(role.first_call * n for role, n in uses) // max(trials, 1),
            sum(role.input_tokens * n for role, n in uses),
            sum(role.output_tokens * n for role, n in uses),
            None if uses[0][0].price is None else cost))
    return estimates


def trial_costs(experiment: Experiment) -> dict[TrialShape, float | None]:
    """The estimated cost of a trial of each shape in USD: its agent's, judges' and model
    monitor's calls (None if any of them has no known price)."""
    costs: dict[TrialShape, float | None] = {}
    for shape, roles in trial_tokens(experiment).items():
        parts = [role.cost_usd for role in roles]
        costs[shape] = None if None in parts else sum(p or 0 for p in parts)
    return costs

