"""The agent loop: ask the model, apply its tool calls to the world, feed back the results,
until it stops calling tools or a limit is reached."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache, partial
from typing import Literal

from amlab.agent import text_tags
from amlab.agent.grammar import tools_grammar, world_grammar
from amlab.agent.labels import ToolLabels
from amlab.agent.monitor import DEFAULT_BLOCK_MESSAGE, Monitor
from amlab.models.base import (
    GenerationConfig,
    ModelCallError,
    ModelClient,
    ModelRequest,
    ModelResponse,
)
from amlab.records import Action, Answers, Message, StopReason, ToolCall, Transcript, Usage
from amlab.world.base import Observation, ToolSpec, World

Protocol = Literal["native", "text"]


@dataclass(frozen=True)
class AgentConfig:
    protocol: Protocol = "native"
    max_turns: int = 6
    # Budget of generated tokens across the whole trial; None means no budget.
    max_output_tokens: int | None = None
    generation: GenerationConfig = field(default_factory=GenerationConfig)
    # What the agent is told when a monitor blocks a call; {reason} is the monitor's reason.
    block_message: str = DEFAULT_BLOCK_MESSAGE


@lru_cache(maxsize=64)
def _text_protocol(tools: tuple[ToolSpec, ...]) -> tuple[str, str]:
    return text_tags.instructions(tools), tools_grammar(tools)


async def run_agent(
    model: ModelClient,
    world: World,
    system_prompt: str,
    user_prompt: str,
    config: AgentConfig,
    sample: int = 0,
    tools_described: bool = False,
    monitor: Monitor | None = None,
    tool_labels: ToolLabels | None = None,
) -> Transcript:
    """Run one trial's conversation; `world` is changed in place by the agent's calls.
    `tools_described`: the system prompt already teaches the text tags; add nothing to it.
    `tool_labels`: the names the tools are presented under (the rendering's `tool_labels`);
    the transcript's messages keep what the agent said, its actions the canonical names, and
    a monitor reviews each call under its canonical name (what it really does).

    With a `monitor`, every call is reviewed before it runs; a blocked call never reaches
    the world, and the agent is told so in the call's result. A failed model call raises
    ModelCallError carrying the usage of the trial's calls before it."""
    usage = Usage()
    monitor_usage = Usage()
    try:
        return await _converse(model, world, system_prompt, user_prompt, config, sample,
                               tools_described, monitor, tool_labels or ToolLabels(), usage,
                               monitor_usage)
    except ModelCallError as exc:
        exc.usage, exc.monitor_usage = usage, monitor_usage
        raise


async def _converse(model: ModelClient, world: World, system_prompt: str, user_prompt: str,
                    config: AgentConfig, sample: int, tools_described: bool,
                    monitor: Monitor | None, labels: ToolLabels, usage: Usage,
                    monitor_usage: Usage) -> Transcript:
    """The conversation of `run_agent`, adding each call's tokens and cost to `usage` and
    `monitor_usage` as it goes."""
    tools = labels.present(world.tools)
    grammar = None
    if config.protocol == "text":
        how_to, grammar = _text_protocol(tools)
        if not tools_described:
            system_prompt = f"{system_prompt.rstrip()}\n\n{how_to}\n"
    messages = [Message("system", system_prompt), Message("user", user_prompt)]
    actions: list[Action] = []
    answers, monitor_answers = Answers(), Answers()
    stop: StopReason = "max_turns"
    turn = 0
    for turn in range(1, config.max_turns + 1):
        request = ModelRequest(
            messages=list(messages),
            tools=tools if config.protocol == "native" else (),
            config=config.generation,
            grammar=grammar,
            # Built inside `generate`, before this turn's calls change the world.
            world_grammar=(partial(world_grammar, world, (system_prompt, user_prompt),
                                   labels=labels)
                           if grammar else None),
            sample=sample,
        )
        response = await model.generate(request)
        usage.add(response.usage)
        answers.add(response.model_id, response.cached)
        calls = _calls(response, config.protocol, tools)
        messages.append(Message("assistant", response.text, calls, response.reasoning,
                                provider_content=response.provider_content))
        if response.finish_reason in ("refusal", "content_filter"):
            stop = "refused"
            break
        if not calls:
            stop = "end_turn"
            break
        for shown_call in calls:
            call = labels.to_world(shown_call)
            review = None
            if monitor is not None:
                result = await monitor.review(call, messages, world, actions)
                review = result.review
                monitor_usage.add(result.usage)
                monitor_answers.merge(result.answers)
            if review is not None and not review.allow:
                observation = Observation.error(config.block_message.format(reason=review.reason))
            else:
                observation = world.apply(call)
            # Stored as the agent saw it: the world's answer may name a tool (a parse error
            # already speaks of the presented names).
            shown = observation.text if call.parse_error else labels.to_agent(observation.text)
            actions.append(Action(index=len(actions), turn=turn, tool=call.name,
                                  args=dict(call.arguments), ok=observation.ok,
                                  observation=shown,
                                  changes=observation.stored_changes(), review=review))
        messages.extend(_results(calls, actions[-len(calls):], config.protocol, tools))
        if config.max_output_tokens is not None and usage.output_tokens >= config.max_output_tokens:
            stop = "max_tokens"
            break
    return Transcript(messages=messages, actions=actions, stop_reason=stop, usage=usage,
                      turns=turn, monitor_usage=monitor_usage, answers=answers,
                      monitor_answers=monitor_answers)


def _calls(response: ModelResponse, protocol: Protocol, tools: tuple[ToolSpec, ...]
           ) -> list[ToolCall]:
    if protocol == "native":
        return response.tool_calls
    return text_tags.parse_tool_calls(response.text, tools)


def _results(calls: list[ToolCall], actions: list[Action], protocol: Protocol,
             tools: tuple[ToolSpec, ...]) -> list[Message]:
    """The results of the agent's calls (as it made them: presented names) for it to read."""
    if protocol == "native":
        return [Message("tool", a.observation, tool_call_id=c.id, name=c.name)
                for c, a in zip(calls, actions, strict=True)]
    tags = {spec.name: spec.text_tag for spec in tools}
    blocks = []
    for call, action in zip(calls, actions, strict=True):
        blocks.append(text_tags.format_result(tags.get(call.name, call.name),
                                              action.observation))
    return [Message("user", "\n\n".join(blocks))]
