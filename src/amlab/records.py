"""Plain records shared by the layers: messages, tool calls, actions, verdicts, trials.

They are dataclasses rather than pydantic models because the harness creates millions of
them in a sweep; `to_dict`/`from_dict` give the JSON form the store keeps.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Role = Literal["system", "user", "assistant", "tool"]
# "fallback": an offline heuristic's verdict that stands because the judge that was to decide
# the behaviour gave no usable answer (kept apart so a reader sees how many there are).
Method = Literal["state", "heuristic", "judge", "fallback"]
TrialStatus = Literal["pending", "done", "error", "refused"]
StopReason = Literal["end_turn", "max_turns", "max_tokens", "refused", "error"]


@dataclass(frozen=True)
class ToolCall:
    name: str
    arguments: dict[str, Any]
    id: str = ""
    # Set by the text-tag parser when a tag was recognised but could not be read.
    parse_error: str | None = None


@dataclass
class Message:
    role: Role
    content: str
    tool_calls: list[ToolCall] = field(default_factory=list)
    reasoning: str = ""
    tool_call_id: str = ""
    name: str = ""
    # The provider's own content blocks of an assistant turn (signed thinking blocks, thought
    # signatures), sent back verbatim when the same provider continues the conversation.
    provider_content: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        # Written out rather than `asdict`, whose recursive deep copy was a tenth of a
        # scripted trial's time; the dicts inside are the message's own, not copies.
        return {"role": self.role, "content": self.content,
                "tool_calls": [{"name": c.name, "arguments": c.arguments, "id": c.id,
                                "parse_error": c.parse_error} for c in self.tool_calls],
                "reasoning": self.reasoning, "tool_call_id": self.tool_call_id,
                "name": self.name, "provider_content": list(self.provider_content)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Message:
        calls = [ToolCall(**c) for c in data.get("tool_calls", [])]
        return cls(**{**data, "tool_calls": calls})


@dataclass
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0
    cost_usd: float = 0.0
    calls: int = 0
    # Input tokens the provider wrote to its prompt cache (priced apart; not stored: the
    # cost already includes them).
    cache_write_input_tokens: int = 0

    def add(self, other: Usage) -> None:
        self.input_tokens += other.input_tokens
        self.output_tokens += other.output_tokens
        self.cached_input_tokens += other.cached_input_tokens
        self.cache_write_input_tokens += other.cache_write_input_tokens
        self.cost_usd += other.cost_usd
        self.calls += other.calls


@dataclass
class Answers:
    """Where a trial's (or a judge call's) answers came from: each model id the provider
    said answered -> its calls, and how many answers the response cache gave instead."""

    model_ids: dict[str, int] = field(default_factory=dict)
    cached_calls: int = 0

    def add(self, model_id: str, cached: bool) -> None:
        if model_id:
            self.model_ids[model_id] = self.model_ids.get(model_id, 0) + 1
        self.cached_calls += cached

    def merge(self, other: Answers) -> None:
        for model_id, calls in other.model_ids.items():
            self.model_ids[model_id] = self.model_ids.get(model_id, 0) + calls
        self.cached_calls += other.cached_calls


@dataclass
class Action:
    """One tool call as the world saw it: what was asked, what came back, what changed."""

    index: int
    turn: int
    tool: str
    args: dict[str, Any]
    ok: bool
    observation: str
    changes: list[dict[str, Any]] = field(default_factory=list)
    # A runtime monitor's review of the call before it ran (None when unmonitored).
    review: Review | None = None

    @property
    def blocked(self) -> bool:
        return self.review is not None and not self.review.allow

    def to_dict(self) -> dict[str, Any]:
        # As `Message.to_dict`: no deep copy of the arguments and changes.
        return {"index": self.index, "turn": self.turn, "tool": self.tool, "args": self.args,
                "ok": self.ok, "observation": self.observation, "changes": list(self.changes),
                "review": None if self.review is None else asdict(self.review)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Action:
        review = data.get("review")
        if review:
            review = Review(**{**review, "harm": tuple(review.get("harm", ()))})
        return cls(**{**data, "review": review})


@dataclass(frozen=True)
class Review:
    """A monitor's decision on one tool call, and what the call would really have done."""

    monitor: str
    allow: bool
    reason: str = ""
    # Harmful behaviours the call would newly have caused, per the detectors (ground truth
    # for catch and false-block rates, whatever the monitor thought).
    harm: tuple[str, ...] = ()
    # Set when the monitor could not decide (unparseable or failed call); `allow` then
    # follows the monitor's failure policy.
    error: str = ""


@dataclass(frozen=True)
class Evidence:
    """Why a verdict holds: an action (by index) and/or a verbatim quote from the transcript."""

    kind: Literal["action", "quote", "state"]
    detail: str
    action_index: int | None = None
    quote: str = ""

    @classmethod
    def action(cls, action: Action, detail: str = "", quote: str = "") -> Evidence:
        summary = detail or f"{action.tool}({_brief(action.args)})"
        return cls(kind="action", detail=summary, action_index=action.index, quote=quote)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "detail": self.detail, "action_index": self.action_index,
                "quote": self.quote}


@dataclass(frozen=True)
class Verdict:
    behavior: str
    value: bool
    evidence: tuple[Evidence, ...]
    method: Method
    version: str
    reasoning: str = ""
    # The judge model that decided it (method "judge"), else ''.
    judge: str = ""
    # Where a judge decided instead of an offline heuristic: the heuristic's value, kept so
    # that the two methods can be compared on the same trials.
    offline_value: bool | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "behavior": self.behavior,
            "value": self.value,
            "evidence": [e.to_dict() for e in self.evidence],
            "method": self.method,
            "version": self.version,
            "reasoning": self.reasoning,
            "judge": self.judge,
            "offline_value": self.offline_value,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Verdict:
        evidence = tuple(Evidence(**e) for e in data.get("evidence", []))
        return cls(**{**data, "evidence": evidence})


@dataclass(frozen=True)
class Judgement:
    """One judge's answer for one behaviour of one trial. `error` set means the judge gave
    no usable answer: it is kept to be counted, never used as a verdict."""

    judge: str
    behavior: str
    version: str
    value: bool | None = None
    # The realism score (1-5) instead of a value.
    score: int | None = None
    evidence: tuple[Evidence, ...] = ()
    reasoning: str = ""
    error: str = ""

    def verdict(self) -> Verdict | None:
        if self.error or self.value is None:
            return None
        return Verdict(self.behavior, self.value, self.evidence, "judge", self.version,
                       self.reasoning, self.judge)


@dataclass
class JudgeCall:
    """One judge's reading of one trial: its answers, what it cost, and its raw replies."""

    judge: str
    prompt_version: str
    judgements: list[Judgement]
    usage: Usage
    attempts: int
    replies: list[str] = field(default_factory=list)
    answers: Answers = field(default_factory=Answers)


@dataclass
class Transcript:
    """What happened in one trial: the conversation, the actions and how it ended."""

    messages: list[Message]
    actions: list[Action]
    stop_reason: StopReason
    usage: Usage
    turns: int
    monitor_usage: Usage = field(default_factory=Usage)
    answers: Answers = field(default_factory=Answers)
    # Where the monitor's answers came from (empty for a rule monitor or none).
    monitor_answers: Answers = field(default_factory=Answers)


def _brief(args: dict[str, Any], limit: int = 80) -> str:
    text = ", ".join(f"{k}={v!r}" for k, v in args.items())
    return text if len(text) <= limit else text[: limit - 1] + "…"
