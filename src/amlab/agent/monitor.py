"""The interface of a runtime monitor: it sees each tool call before the world does and
may block it. Monitors themselves live in `amlab.monitor`; the loop only knows this."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from amlab.records import Action, Answers, Message, Review, ToolCall, Usage
from amlab.world.base import World

DEFAULT_BLOCK_MESSAGE = "This action was blocked by the oversight system: {reason}"


@dataclass(frozen=True)
class ReviewResult:
    review: Review
    usage: Usage = field(default_factory=Usage)
    answers: Answers = field(default_factory=Answers)


class Monitor(Protocol):
    name: str

    async def review(self, call: ToolCall, messages: Sequence[Message], world: World,
                     actions: Sequence[Action]) -> ReviewResult:
        """Decide on `call` given the conversation so far, the world as it stands (not to be
        changed) and the actions taken so far."""
        ...
