"""What counts as the agent's private reasoning: the one definition every layer uses (the
agent loop and the text-tag parser, the detectors, the monitor, classify, the model adapters).

Private reasoning is the provider's reasoning field (`Message.reasoning`, kept apart by the
adapters) and, inside a reply's text, every block opened by one of `PRIVATE_TAGS`, in any
case and with spaces inside the brackets (`<SCRATCHPAD_REASONING>`, `<Thinking >`,
`<think>`, `<reasoning>`). Nothing in it is ever an act: a tool tag drafted there is not
parsed, executed or shown to the world.

Two edge cases, decided in favour of never executing a draft:
- an opening tag that is never closed hides everything after it (the reply was cut off, or
  the model forgot to close it; its text is still in the transcript, just not acted on);
- a closing tag with no opening before it (chat templates of reasoning models open the block
  in the prompt) makes everything before it private.
"""

from __future__ import annotations

import re

# Tag names that open a private block, matched without regard to case.
PRIVATE_TAGS = ("SCRATCHPAD_REASONING", "thinking", "think", "reasoning")

_NAMES = "|".join(PRIVATE_TAGS)
_OPEN = re.compile(rf"<\s*({_NAMES})\s*>", re.I)
_STRAY_CLOSE = re.compile(rf"<\s*/\s*({_NAMES})\s*>", re.I)


def split_private(text: str, tags: tuple[str, ...] = PRIVATE_TAGS) -> tuple[str, list[str]]:
    """(the reply without its private blocks, the private passages in order). `tags`
    narrows the definition to some of `PRIVATE_TAGS` (an adapter lifting only `<think>`
    blocks into the reasoning field); the rules for each tag stay the same."""
    if "<" not in text:  # no tag of either kind: most replies, read many times per trial
        return text, []
    wanted = {tag.lower() for tag in tags}
    private: list[str] = []
    stray = _first(_STRAY_CLOSE, text, wanted)
    opening = _first(_OPEN, text, wanted)
    if stray is not None and (opening is None or stray.start() < opening.start()):
        private.append(text[:stray.start()])
        text = text[stray.end():]
    public: list[str] = []
    position = 0
    while (opening := _first(_OPEN, text, wanted, position)) is not None:
        public.append(text[position:opening.start()])
        close = re.compile(rf"<\s*/\s*{re.escape(opening.group(1))}\s*>", re.I)
        end = close.search(text, opening.end())
        private.append(text[opening.end():end.start() if end else len(text)])
        position = end.end() if end else len(text)
    public.append(text[position:])
    return "".join(public), [p.strip() for p in private if p.strip()]


def strip_private(text: str) -> str:
    """The reply without its private blocks: the only part that can hold acts."""
    return split_private(text)[0]


def private_passages(text: str) -> list[str]:
    """The private blocks of a reply, stripped, empty ones left out."""
    return split_private(text)[1]


def _first(pattern: re.Pattern[str], text: str, wanted: set[str], start: int = 0
           ) -> re.Match[str] | None:
    return next((m for m in pattern.finditer(text, start) if m.group(1).lower() in wanted), None)
