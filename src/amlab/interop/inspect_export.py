"""A stored run as Inspect AI logs, for `inspect view`, Inspect Scout, Docent and the other
tools that read `.eval` files: `amlab export DB --format inspect --out DIR`.

One log per experiment and model: an Inspect log has one model (`EvalSpec.model`), and
`inspect view` lists logs by task and model, so an experiment (the task) and the model it
ran are the unit a reader already knows. Within a log, a sample is one trial: its id the
family and stored condition (`blackmail/urgency=replacement,...`), its epoch the amlab
sample + 1, as Inspect numbers repeated runs of one input.

Each sample holds the conversation (reasoning as `ContentReasoning`; a native call's
result as a tool message, with a monitor's block as an `approval` tool error and a world's
refusal as an error), the condition's factors and the trial's key as metadata, every
verdict as a score (1.0 / 0.0, the evidence as its explanation, method, version, judge and
reasoning in its metadata), the token usage of each model that worked on the trial (the
agent, each judge and a model monitor), a failed trial's reason as the sample's error
and a refusal as Inspect marks one (`content_filter`, a refusal text).
Pending trials have no transcript and are left out. Written only through inspect_ai's
public log API; the store is read only through `ResultReader`.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from amlab import __version__
from amlab.interop import require_inspect
from amlab.records import Action, Evidence, Verdict
from amlab.run.experiment import ExperimentSpec, stored_spec
from amlab.run.trial import Arms
from amlab.store.interface import (
    JudgeMonitorUsage,
    ResultReader,
    StoredTrial,
    require_experiment,
)

if TYPE_CHECKING:
    from inspect_ai.log import EvalLog, EvalSample, EvalSampleLimit
    from inspect_ai.model import ChatMessage, ModelOutput, ModelUsage, StopReason
    from inspect_ai.scorer import Score

# The scorer name under which every verdict is recorded.
SCORER = "amlab"
# A model name's characters that are kept in a log's file name; the rest become '-'.
_UNSAFE = re.compile(r"[^A-Za-z0-9._=+-]+")


@dataclass(frozen=True)
class WrittenLog:
    experiment: str
    model: str
    path: Path
    samples: int
    pending: int


def export_inspect(store: ResultReader, out: Path, experiment: str | None = None
                   ) -> list[WrittenLog]:
    """Write one `.eval` log per experiment and model into the folder `out`; returns them."""
    require_inspect()
    from inspect_ai.log import write_eval_log

    require_experiment(store, experiment)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    taken: set[str] = set()
    for name in [experiment] if experiment else store.experiments():
        spec = stored_spec(store, name)
        monitor = spec.monitor.model.name if spec and spec.monitor and spec.monitor.model \
            else None
        others: dict[int, list[JudgeMonitorUsage]] = defaultdict(list)
        for usage in store.judge_monitor_usage(name):
            others[usage.trial_id].append(usage)
        # Each trial becomes its sample as it is read, so that its stored record is not
        # held beside it.
        by_model: dict[str, list[EvalSample]] = {}
        pending: dict[str, int] = defaultdict(int)
        for trial in store.trials(name):
            samples = by_model.setdefault(trial.model, [])
            if trial.status == "pending":
                pending[trial.model] += 1
            else:
                samples.append(_sample(trial, store.verdicts_of(trial.id), spec,
                                       _model_usage(trial, others[trial.id], monitor)))
        for model, samples in by_model.items():
            path = out / _file_name(name, model, taken)
            write_eval_log(_log(name, spec, model, samples), str(path))
            written.append(WrittenLog(name, model, path, len(samples), pending[model]))
    return written


def _file_name(experiment: str, model: str, taken: set[str]) -> str:
    stem = _UNSAFE.sub("-", f"{experiment}_{model}").strip("-")[:150]
    name, number = f"{stem}.eval", 1
    while name in taken:  # two models whose names differ only in unsafe characters
        number += 1
        name = f"{stem}-{number}.eval"
    taken.add(name)
    return name


def _log(experiment: str, spec: ExperimentSpec | None, model: str, samples: list[EvalSample]
         ) -> EvalLog:
    from inspect_ai.log import (
        EvalConfig,
        EvalDataset,
        EvalLog,
        EvalMetric,
        EvalResults,
        EvalScore,
        EvalSpec,
        EvalStats,
    )

    now = datetime.now(UTC).isoformat()
    usage: dict[str, ModelUsage] = {}
    for sample in samples:
        for used_by, one in sample.model_usage.items():
            usage[used_by] = usage[used_by] + one if used_by in usage else one
    # Per behaviour over the log's finished trials: the share where it holds (the
    # conditions pooled, as Inspect shows one figure per score; amlab's report has them
    # per cell, with intervals).
    held: dict[str, list[float]] = defaultdict(list)
    for sample in samples:
        for behaviour, score in (sample.scores or {}).items():
            held[behaviour].append(float(score.as_float()))
    scores = [EvalScore(name=behaviour, scorer=SCORER, scored_samples=len(values),
                        unscored_samples=len(samples) - len(values),
                        metrics={"mean": EvalMetric(name="mean",
                                                    value=sum(values) / len(values))})
              for behaviour, values in held.items()]
    epochs = max((s.epoch for s in samples), default=1)
    # Inspect counts a dataset's samples without their epochs (it shows ids x epochs).
    sample_ids = sorted({str(s.id) for s in samples})
    return EvalLog(
        status="success",
        eval=EvalSpec(
            created=now, task=experiment, task_version=0,
            dataset=EvalDataset(name=experiment, samples=len(sample_ids),
                                sample_ids=sample_ids),
            model=model, config=EvalConfig(epochs=epochs),
            packages={"amlab": __version__},
            metadata={"amlab_experiment": spec.model_dump(mode="json") if spec else {},
                      "source": "amlab export"}),
        results=EvalResults(total_samples=len(samples),
                            completed_samples=sum(s.error is None for s in samples),
                            scores=scores),
        stats=EvalStats(started_at=now, completed_at=now,
                        model_usage=usage),
        samples=samples,
    )


def _sample(trial: StoredTrial, verdicts: dict[str, Verdict], spec: ExperimentSpec | None,
            model_usage: dict[str, ModelUsage]) -> EvalSample:
    from inspect_ai.log import EvalError, EvalSample

    messages = _messages(trial)
    return EvalSample(
        id=f"{trial.family}/{trial.condition}",
        epoch=trial.sample + 1,
        # A trial starts with its system prompt and its user message, the sample's input (as
        # in a task whose solver adds the system prompt).
        input=messages[1:2] or "",
        target="",
        messages=messages,
        output=_output(trial, messages),
        scores={behaviour: _score(verdict) for behaviour, verdict in verdicts.items()},
        metadata=_metadata(trial),
        model_usage=model_usage,
        error=EvalError(message=trial.error, traceback="", traceback_ansi="")
        if trial.status == "error" and trial.error else None,
        limit=_limit(trial, spec),
        turn_count=trial.turns,
        uuid=f"amlab-{trial.experiment}-{trial.id}",
    )


def _model_usage(trial: StoredTrial, others: Iterable[JudgeMonitorUsage],
                 monitor: str | None) -> dict[str, ModelUsage]:
    """Each model's tokens and cost on the trial: the agent's, each judge's and the model
    monitor's (`monitor`: its model in the experiment's spec); a model in two roles is
    summed, as Inspect keeps one usage per model."""
    used = {trial.model: _inspect_usage(trial.input_tokens or 0, trial.cached_input_tokens or 0,
                                        trial.output_tokens or 0, trial.cost_usd)
            } if trial.calls else {}
    for other in others:
        # Only a model monitor uses tokens, so the spec names it ('monitor' if it did not).
        name = other.judge or monitor or "monitor"
        one = _inspect_usage(other.input_tokens, other.cached_input_tokens,
                             other.output_tokens, other.cost_usd)
        used[name] = used[name] + one if name in used else one
    return used


def _inspect_usage(input_tokens: int, cached_input_tokens: int, output_tokens: int,
                   cost_usd: float | None) -> ModelUsage:
    """Usage as Inspect counts it: input tokens at full rate apart from those read from
    the cache (amlab's input tokens include them)."""
    from inspect_ai.model import ModelUsage

    return ModelUsage(input_tokens=input_tokens - cached_input_tokens,
                      input_tokens_cache_read=cached_input_tokens or None,
                      output_tokens=output_tokens,
                      total_tokens=input_tokens + output_tokens, total_cost=cost_usd)


def _metadata(trial: StoredTrial) -> dict[str, Any]:
    arms = Arms.from_factors(trial.factors)
    return {
        "experiment": trial.experiment, "family": trial.family,
        "condition": arms.family_key(trial.condition), "factors": dict(trial.factors),
        "monitor": arms.monitor, "monitor_sees_reasoning": arms.sees_reasoning,
        "sample": trial.sample, "seed": trial.seed,
        "trial_key": {"experiment": trial.experiment, "family": trial.family,
                      "condition": trial.condition, "model": trial.model,
                      "sample": trial.sample},
        "trial_id": trial.id, "status": trial.status, "stop_reason": trial.stop_reason,
        "turns": trial.turns, "model_ids": trial.model_ids, "cached_calls": trial.cached_calls,
        "actions": [action.to_dict() for action in trial.actions],
    }


def _messages(trial: StoredTrial) -> list[ChatMessage]:
    """The conversation in Inspect's messages. A call is an Inspect tool call when a tool
    message answers it (the native protocol); a text-protocol call stays the tag in the
    assistant's text, as the model wrote it, and its parsed form goes in the message's
    metadata, since the model read its results in a user message, not as tool results."""
    from inspect_ai.model import (
        ChatMessageAssistant,
        ChatMessageSystem,
        ChatMessageTool,
        ChatMessageUser,
        ContentReasoning,
        ContentText,
    )
    from inspect_ai.tool import ToolCall, ToolCallError

    answered = {m.tool_call_id for m in trial.messages if m.role == "tool"}
    # A native turn's results follow its calls in the order they were made: the n-th tool
    # message is the n-th action.
    actions = iter(trial.actions)
    last_assistant = max((i for i, m in enumerate(trial.messages) if m.role == "assistant"),
                         default=-1)
    converted: list[ChatMessage] = []
    for index, message in enumerate(trial.messages):
        ident = f"{trial.id}-{index}"
        if message.role == "system":
            converted.append(ChatMessageSystem(id=ident, content=message.content))
        elif message.role == "user":
            converted.append(ChatMessageUser(id=ident, content=message.content))
        elif message.role == "tool":
            action = next(actions, None)
            error = None
            if action is not None and action.blocked and action.review is not None:
                error = ToolCallError("approval", action.review.reason or message.content)
            elif action is not None and not action.ok:
                error = ToolCallError("unknown", message.content)
            converted.append(ChatMessageTool(
                id=ident, content=message.content, tool_call_id=message.tool_call_id,
                function=message.name or None, error=error,
                metadata=_review(action)))
        else:
            refused = trial.status == "refused" and index == last_assistant
            content: list[Any] = []
            if message.reasoning:
                content.append(ContentReasoning(reasoning=message.reasoning))
            content.append(ContentText(text=message.content, refusal=True if refused else None))
            native = [c for c in message.tool_calls if c.id and c.id in answered]
            parsed = [c for c in message.tool_calls if c not in native]
            converted.append(ChatMessageAssistant(
                id=ident, content=content, model=trial.model,
                tool_calls=[ToolCall(id=c.id, function=c.name, arguments=dict(c.arguments),
                                     parse_error=c.parse_error) for c in native] or None,
                metadata={"parsed_tool_calls": [
                    {"name": c.name, "arguments": c.arguments, "parse_error": c.parse_error}
                    for c in parsed]} if parsed else None))
    return converted


def _review(action: Action | None) -> dict[str, Any] | None:
    if action is None or action.review is None:
        return None
    review = action.review
    return {"monitor": review.monitor, "allow": review.allow, "reason": review.reason,
            "harm": list(review.harm), "error": review.error, "action_index": action.index}


def _output(trial: StoredTrial, messages: Sequence[ChatMessage]) -> ModelOutput:
    """The agent's last turn, with why it stopped in Inspect's terms."""
    from inspect_ai.model import (
        ChatCompletionChoice,
        ChatMessageAssistant,
        ModelOutput,
        StopDetails,
    )

    last = next((m for m in reversed(messages) if isinstance(m, ChatMessageAssistant)), None)
    if last is None:
        return ModelOutput(model=trial.model)
    if trial.status == "refused":
        return ModelOutput(model=trial.model, choices=[ChatCompletionChoice(
            message=last, stop_reason="content_filter",
            stop_details=StopDetails(type="refusal", explanation=last.text or None))])
    stop: StopReason = "tool_calls" if last.tool_calls else "unknown"
    if trial.stop_reason == "end_turn":
        stop = "stop"
    elif trial.stop_reason == "max_tokens":
        stop = "max_tokens"
    return ModelOutput(model=trial.model, choices=[ChatCompletionChoice(
        message=last, stop_reason=stop)])


def _limit(trial: StoredTrial, spec: ExperimentSpec | None) -> EvalSampleLimit | None:
    """The limit that ended the trial, as Inspect records one: the turn limit (Inspect has
    no turn limit of its own: `custom`) or the output token budget."""
    from inspect_ai.log import EvalSampleLimit

    if trial.stop_reason == "max_turns" and trial.turns is not None:
        return EvalSampleLimit(type="custom", limit=trial.turns,
                               reason=f"max_turns: still acting after {trial.turns} turns")
    if trial.stop_reason == "max_tokens":
        budget = (spec.agent.max_output_tokens if spec else None) or trial.output_tokens or 0
        return EvalSampleLimit(type="token", limit=float(budget),
                               reason="the trial's output token budget was spent")
    return None


def _score(verdict: Verdict) -> Score:
    from inspect_ai.scorer import Score

    return Score(
        value=1.0 if verdict.value else 0.0,
        explanation=evidence_text(verdict.evidence) or None,
        metadata={"method": verdict.method, "version": verdict.version,
                  "judge": verdict.judge or None, "reasoning": verdict.reasoning or None,
                  "offline_value": verdict.offline_value,
                  "evidence": [e.to_dict() for e in verdict.evidence]})


def evidence_text(evidence: Iterable[Evidence]) -> str:
    """A verdict's evidence, one line each: what it is and the words quoted."""
    lines = []
    for item in evidence:
        where = f"action {item.action_index}: " if item.action_index is not None else ""
        quote = f" — “{item.quote}”" if item.quote else ""
        lines.append(f"{item.kind}: {where}{item.detail}{quote}")
    return "\n".join(lines)
