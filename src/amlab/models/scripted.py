"""`scripted/<fixture>`: replays hand-written or recorded agent turns, for tests and examples.

A fixture is a YAML file:

    turns:                       # the agent's turns, in order
      - reasoning: "..."         # optional, the reasoning channel
        text: "..."              # what it says (text-tag calls go here)
        tool_calls:              # native calls
          - {name: send_email, arguments: {to: ..., subject: ..., body: ...}}
      - text: "Done."

or `samples: [[turn, ...], [turn, ...]]` to give sample i the script i (mod the count).
A turn `{error: "...", retryable: true}` raises a failed call, for testing retries, and a
top-level `delay: 0.2` makes every call take that many seconds.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from amlab.errors import AmlabError
from amlab.models.base import ModelCallError, ModelRequest, ModelResponse
from amlab.records import ToolCall, Usage
from amlab.yamlfile import read_yaml

Turn = dict[str, Any]
_TURN_KEYS = {"text", "reasoning", "tool_calls", "error", "retryable", "finish_reason"}


def load_fixture(path: Path) -> tuple[list[list[Turn]], float]:
    data = read_yaml(path, "scripted model fixture")
    if not isinstance(data, dict) or not ({"turns", "samples"} & set(data)):
        raise AmlabError(f"{path}: a scripted fixture has a 'turns' list or a 'samples' list.")
    unknown_top = set(data) - {"turns", "samples", "delay"}
    if unknown_top:
        raise AmlabError(f"{path}: field {sorted(unknown_top)[0]} is not known; fields are "
                         f"turns, samples, delay.")
    scripts = data["samples"] if "samples" in data else [data["turns"]]
    for script in scripts:
        for turn in script:
            unknown = set(turn) - _TURN_KEYS
            if unknown:
                raise AmlabError(f"{path}: turn field {sorted(unknown)[0]} is not known; "
                                 f"fields are {', '.join(sorted(_TURN_KEYS))}.")
    return scripts, float(data.get("delay", 0.0))


@dataclass
class ScriptedModel:
    name: str
    scripts: list[list[Turn]]
    delay: float = 0.0

    @classmethod
    def from_fixture(cls, name: str, path: Path) -> ScriptedModel:
        scripts, delay = load_fixture(path)
        return cls(name=name, scripts=scripts, delay=delay)

    async def generate(self, request: ModelRequest) -> ModelResponse:
        if self.delay:
            await asyncio.sleep(self.delay)
        script = self.scripts[request.sample % len(self.scripts)]
        position = sum(1 for m in request.messages if m.role == "assistant")
        if position >= len(script):
            return ModelResponse(text="", usage=_usage(request, ""))
        turn = script[position]
        if "error" in turn:
            raise ModelCallError(str(turn["error"]), retryable=bool(turn.get("retryable")))
        text = str(turn.get("text", ""))
        calls = [
            ToolCall(name=c["name"], arguments=dict(c.get("arguments", {})),
                     id=f"call_{position}_{i}")
            for i, c in enumerate(turn.get("tool_calls", []))
        ]
        return ModelResponse(
            text=text,
            tool_calls=calls,
            reasoning=str(turn.get("reasoning", "")),
            usage=_usage(request, text),
            finish_reason=turn.get("finish_reason", "tool_calls" if calls else "stop"),
        )

    async def aclose(self) -> None:
        return None


def _usage(request: ModelRequest, text: str) -> Usage:
    # A rough count (4 characters a token) so that cost plumbing is exercised in tests.
    chars = sum(len(m.content) for m in request.messages)
    return Usage(input_tokens=chars // 4, output_tokens=len(text) // 4, calls=1)

