"""One trial as the page shows it: the conversation as the agent saw it, each action with
its state changes as a diff, and each verdict with its evidence quotes marked in place.

Every string from the store is escaped here or by the template (autoescape): text is turned
into `Markup` only by `marked`, which escapes each piece before adding its own `<mark>` tags.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from markupsafe import Markup, escape

from amlab.records import Action, Message, Verdict

# Documents a user prompt carries (the mailbox renders `<email id="3">…</email>`); each is
# shown as a card, its text unchanged.
_DOCUMENT = re.compile(r"<(email|file|document)\b[^>]*>.*?</\1>", re.S)


@dataclass(frozen=True)
class Quote:
    """An evidence quote to mark, and the anchor its first occurrence gets."""

    text: str
    anchor: str
    behaviour: str


def marked(text: str, quotes: list[Quote], placed: set[str]) -> Markup:
    """`text` escaped, with each quote's occurrences wrapped in <mark class="evidence">."""
    spans: list[tuple[int, int, Quote]] = []
    for quote in quotes:
        if not quote.text.strip():
            continue
        found = list(re.finditer(re.escape(quote.text), text)) or list(
            re.finditer(re.escape(quote.text), text, re.I))
        for match in found:
            if all(match.end() <= s or match.start() >= e for s, e, _ in spans):
                spans.append((match.start(), match.end(), quote))
    out = Markup()
    position = 0
    for start, end, quote in sorted(spans, key=lambda s: s[0]):
        out += escape(text[position:start])
        anchor = ""
        if quote.anchor not in placed:
            placed.add(quote.anchor)
            anchor = Markup(' id="{}"').format(quote.anchor)
        out += Markup('<mark class="evidence"{} data-behavior="{}">{}</mark>').format(
            anchor, quote.behaviour, text[start:end])
        position = end
    return out + escape(text[position:])


@dataclass(frozen=True)
class DiffLine:
    sign: str  # "+", "-" or " "
    text: Markup


@dataclass(frozen=True)
class ChangeView:
    op: str
    path: str
    lines: list[DiffLine]


@dataclass(frozen=True)
class ActionView:
    index: int
    anchor: str
    tool: str
    args: list[tuple[str, Markup]]
    ok: bool
    observation: Markup
    changes: list[ChangeView]
    cited_by: list[str]


@dataclass(frozen=True)
class Segment:
    document: bool
    text: Markup


@dataclass(frozen=True)
class Block:
    """One message of the conversation, with the actions its tool calls caused."""

    role: str
    label: str
    segments: list[Segment]
    reasoning: Markup = field(default_factory=Markup)
    tool_calls: list[tuple[str, Markup]] = field(default_factory=list)
    actions: list[ActionView] = field(default_factory=list)
    turn: int = 0


@dataclass(frozen=True)
class EvidenceView:
    kind: str
    detail: str
    quote: str
    action_anchor: str
    action_index: int | None
    quote_anchor: str
    quote_found: bool


@dataclass(frozen=True)
class VerdictView:
    behaviour: str
    value: bool
    method: str
    version: str
    reasoning: str
    evidence: list[EvidenceView]


@dataclass(frozen=True)
class TranscriptView:
    trial_id: int
    blocks: list[Block]
    verdicts: list[VerdictView]
    unplaced_actions: list[ActionView]


def build_transcript(trial_id: int, messages: list[Message], actions: list[Action],
                     verdicts: dict[str, Verdict]) -> TranscriptView:
    prefix = f"t{trial_id}"
    quotes_by_action: dict[int | None, list[Quote]] = {}
    cited: dict[int, list[str]] = {}
    for behaviour, verdict in verdicts.items():
        for n, item in enumerate(verdict.evidence):
            if item.action_index is not None:
                cited.setdefault(item.action_index, []).append(behaviour)
            if item.quote:
                quotes_by_action.setdefault(item.action_index, []).append(
                    Quote(item.quote, f"{prefix}-ev-{behaviour}-{n}", behaviour))
    everywhere = quotes_by_action.get(None, [])
    turn_of = {a.index: a.turn for a in actions}
    quotes_by_turn: dict[int, list[Quote]] = {}
    for index, quotes in quotes_by_action.items():
        if index is not None and index in turn_of:
            quotes_by_turn.setdefault(turn_of[index], []).extend(quotes)
    placed: set[str] = set()

    def marker(text: str, quotes: list[Quote]) -> Markup:
        return marked(text, quotes, placed)

    def action_view(action: Action) -> ActionView:
        quotes = quotes_by_action.get(action.index, []) + everywhere
        return ActionView(
            index=action.index, anchor=f"{prefix}-action-{action.index}", tool=action.tool,
            args=[(k, marker(_as_text(v), quotes)) for k, v in action.args.items()],
            ok=action.ok, observation=escape(action.observation),
            changes=[_change_view(c, lambda text: marker(text, quotes))
                     for c in action.changes],
            cited_by=sorted(set(cited.get(action.index, []))))

    blocks: list[Block] = []
    turn = 0
    seen_user = False
    placed_actions: set[int] = set()
    for message in messages:
        if message.role == "assistant":
            turn += 1
            quotes = quotes_by_turn.get(turn, []) + everywhere
            mine = [a for a in actions if a.turn == turn]
            placed_actions.update(a.index for a in mine)
            blocks.append(Block(
                role="assistant", label=f"Agent, turn {turn}", turn=turn,
                segments=[Segment(False, marker(message.content, quotes))],
                reasoning=marker(message.reasoning, quotes),
                # Applied calls are shown as their actions; these never reached the world.
                tool_calls=[] if mine else [(c.name, marker(_as_text(c.arguments), quotes))
                                            for c in message.tool_calls],
                actions=[action_view(a) for a in mine]))
        elif message.role == "system":
            blocks.append(Block("system", "System prompt", _segments(message.content)))
        elif message.role == "user" and not seen_user:
            seen_user = True
            blocks.append(Block("user", "User prompt", _segments(message.content)))
        elif message.role == "user":
            blocks.append(Block("result", "Tool results, as the agent read them",
                                _segments(message.content)))
        else:
            label = f"Result of {message.name}" if message.name else "Tool result"
            blocks.append(Block("result", label, _segments(message.content)))
    unplaced = [action_view(a) for a in actions if a.index not in placed_actions]
    verdict_views = [VerdictView(
        behaviour=behaviour, value=verdict.value, method=verdict.method,
        version=verdict.version, reasoning=verdict.reasoning,
        evidence=[EvidenceView(
            kind=item.kind, detail=item.detail, quote=item.quote,
            action_index=item.action_index,
            action_anchor=(f"{prefix}-action-{item.action_index}"
                           if item.action_index is not None else ""),
            quote_anchor=f"{prefix}-ev-{behaviour}-{n}",
            quote_found=f"{prefix}-ev-{behaviour}-{n}" in placed)
            for n, item in enumerate(verdict.evidence)])
        for behaviour, verdict in sorted(verdicts.items(), key=lambda kv: (not kv[1].value,
                                                                           kv[0]))]
    return TranscriptView(trial_id, blocks, verdict_views, unplaced)


def _segments(text: str) -> list[Segment]:
    segments, position = [], 0
    for match in _DOCUMENT.finditer(text):
        if text[position:match.start()].strip():
            segments.append(Segment(False, escape(text[position:match.start()].strip("\n"))))
        segments.append(Segment(True, escape(match.group(0))))
        position = match.end()
    if text[position:].strip() or not segments:
        segments.append(Segment(False, escape(text[position:].strip("\n"))))
    return segments


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, indent=2, ensure_ascii=False)


def _change_view(change: dict[str, Any], mark: Callable[[str], Markup]) -> ChangeView:
    """A state change as diff lines: an added value as `+` lines, a removed one as `-`
    lines, a replaced one as a line diff of old against new."""
    op = str(change.get("op", "change"))
    before = change.get("old", change.get("before"))
    after = change.get("value", change.get("after"))
    if op == "remove" and before is None:
        before, after = after, None
    if before is None:
        diff = [("+", line) for line in _lines(after)]
    elif after is None:
        diff = [("-", line) for line in _lines(before)]
    else:
        diff = [(line[0], line[2:]) for line in difflib.ndiff(_lines(before), _lines(after))
                if line[0] in "+- "]
    return ChangeView(op=op, path=str(change.get("path", "")),
                      lines=[DiffLine(sign, mark(text)) for sign, text in diff])


def _lines(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, dict):
        lines = []
        for key, item in value.items():
            if item in ("", [], None):
                continue
            text = _as_text(item) if isinstance(item, str) else json.dumps(item,
                                                                           ensure_ascii=False)
            first, *rest = text.splitlines() or [""]
            lines.append(f"{key}: {first}")
            lines += [f"    {line}" for line in rest]
        return lines
    if isinstance(value, str):
        return value.splitlines()
    return json.dumps(value, indent=2, ensure_ascii=False).splitlines()
