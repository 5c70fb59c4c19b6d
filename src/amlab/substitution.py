"""Whole-token text substitution: the one definition used where a rendering presents
something under another name (`names: randomized`, relabelled tools) and where the agent
loop maps tool names back. Imports no other amlab package."""

from __future__ import annotations

import re
from collections.abc import Mapping


class Substitution:
    """Replaces each key of `replacements` by its value wherever it stands as a whole token:
    not preceded by a letter or digit, and not followed by a lower-case letter or digit (so
    `Ostrander` is found in `OstranderDecoder`, `Corvane's` and `Halvard_Brochure.pdf`, but
    `Gail` is not found in `Gailey`); after a `\\n` or `\\t` escape (JSON lines in a world
    file) a token starts too. All in one pass, longest token first, so a replacement
    is never replaced again and an address wins over the surname inside it."""

    def __init__(self, replacements: Mapping[str, str]) -> None:
        self.replacements = {k: v for k, v in replacements.items() if k != v}
        tokens = sorted(self.replacements, key=len, reverse=True)
        # One boundary test per position, then the tokens (most positions fail the first).
        self._pattern = (re.compile(
            r"(?:(?<![^\W_])|(?<=\\[nt]))(?:" + "|".join(map(re.escape, tokens))
            + r")(?![^\W_A-Z])") if tokens else None)

    def __bool__(self) -> bool:
        return self._pattern is not None

    def __call__(self, text: str) -> str:
        if self._pattern is None:
            return text
        return self._pattern.sub(lambda match: self.replacements[match.group(0)], text)

    def inverse(self) -> Substitution:
        return Substitution({new: old for old, new in self.replacements.items()})
