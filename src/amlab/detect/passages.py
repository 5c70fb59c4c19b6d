"""The agent's own words as passages: its private reasoning, what it said outside it, and
its final answer (the words every reading detector and judge reads)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from amlab.reasoning import private_passages, strip_private
from amlab.records import Message


@dataclass(frozen=True)
class Passage:
    """A piece of the agent's own words, and where it is."""

    channel: str  # "reasoning", "answer", or "final answer"
    turn: int
    text: str

    @property
    def where(self) -> str:
        return f"{self.channel}, turn {self.turn}"


def reasoning_passages(messages: tuple[Message, ...] | list[Message]) -> list[Passage]:
    """The private reasoning: the reasoning channel and scratchpad blocks in the reply."""
    passages = []
    for turn, message in enumerate(assistant_messages(messages), start=1):
        if message.reasoning.strip():
            passages.append(Passage("reasoning", turn, message.reasoning))
        passages += [Passage("reasoning", turn, text)
                     for text in private_passages(message.content)]
    return passages


def answer_passages(messages: tuple[Message, ...] | list[Message]) -> list[Passage]:
    """What the agent said outside its private reasoning: the reply (text-tag calls
    included) and the string arguments of its native tool calls."""
    passages = []
    for turn, message in enumerate(assistant_messages(messages), start=1):
        answer = strip_private(message.content).strip()
        if answer:
            passages.append(Passage("answer", turn, answer))
        passages += [Passage("answer", turn, value) for call in message.tool_calls
                     for value in call.arguments.values() if isinstance(value, str) and value]
    return passages


_TOOL_TAG = re.compile(r"<tool_use:([\w\-]*)\s*>.*?(?:</tool_use:\1\s*>|(?=<tool_use:)|\Z)",
                       re.S)


def final_answer(messages: tuple[Message, ...] | list[Message]) -> Passage | None:
    """The agent's last reply outside private reasoning and tool tags: what it tells the
    person who gave it the task."""
    replies = list(assistant_messages(messages))
    if not replies:
        return None
    text = _TOOL_TAG.sub("", strip_private(replies[-1].content)).strip()
    return Passage("final answer", len(replies), text) if text else None


def assistant_messages(messages: tuple[Message, ...] | list[Message]) -> Iterator[Message]:
    return (m for m in messages if m.role == "assistant")
