"""`scripted/<fixture>`: replays hand-written or recorded agent turns, for tests and examples.

A fixture is a YAML file:

    turns:                       # the agent's turns, in order
      - reasoning: "..."         # optional, the reasoning channel
        text: "..."              # what it says (text-tag calls go here)
        tool_calls:              # native calls
          - {name: send_email, arguments: {to: ..., subject: ..., body: ...}}
      - text: "Done."

or `samples: [[turn, ...], [turn, ...]]` to give sample i the script i (mod the count).
A turn `{error: "...", retryable: true}` raises a failed call, for testing retries, a
top-level `delay: 0.2` makes every call take that many seconds, and a top-level
`model_id: some-model-2026-01-01` is the model id every answer says it came from (as a
provider names the snapshot behind an alias; by default the fixture's own model name).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from amlab.errors import AmlabError
from amlab.models.base import ModelCallError, ModelRequest, ModelResponse
from amlab.models.providers import Capabilities, register_provider, resolve_file
from amlab.records import ToolCall, Usage
from amlab.yamlfile import read_yaml

Turn = dict[str, Any]
_TURN_KEYS = {"text", "reasoning", "tool_calls", "error", "retryable", "finish_reason"}


@dataclass(frozen=True)
class Fixture:
    scripts: list[list[Turn]]
    delay: float = 0.0
    model_id: str = ""


def load_fixture(path: Path) -> Fixture:
    data = read_yaml(path, "scripted model fixture")
    if not isinstance(data, dict) or not ({"turns", "samples"} & set(data)):
        raise AmlabError(f"{path}: a scripted fixture has a 'turns' list or a 'samples' list.")
    unknown_top = set(data) - {"turns", "samples", "delay", "model_id"}
    if unknown_top:
        raise AmlabError(f"{path}: field {sorted(unknown_top)[0]} is not known; fields are "
                         f"turns, samples, delay, model_id.")
    scripts = data["samples"] if "samples" in data else [data["turns"]]
    for script in scripts:
        for turn in script:
            unknown = set(turn) - _TURN_KEYS
            if unknown:
                raise AmlabError(f"{path}: turn field {sorted(unknown)[0]} is not known; "
                                 f"fields are {', '.join(sorted(_TURN_KEYS))}.")
    return Fixture(scripts, float(data.get("delay", 0.0)), str(data.get("model_id", "")))


@dataclass
class ScriptedModel:
    name: str
    scripts: list[list[Turn]]
    delay: float = 0.0
    # The model id its answers name; its own name when empty.
    model_id: str = ""

    @classmethod
    def from_fixture(cls, name: str, path: Path) -> ScriptedModel:
        fixture = load_fixture(path)
        return cls(name=name, scripts=fixture.scripts, delay=fixture.delay,
                   model_id=fixture.model_id)

    async def generate(self, request: ModelRequest) -> ModelResponse:
        if self.delay:
            await asyncio.sleep(self.delay)
        script = self.scripts[request.sample % len(self.scripts)]
        position = sum(1 for m in request.messages if m.role == "assistant")
        if position >= len(script):
            return ModelResponse(text="", usage=_usage(request, ""),
                                 model_id=self.model_id or self.name)
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
            model_id=self.model_id or self.name,
        )

    async def aclose(self) -> None:
        return None


@register_provider("scripted", Capabilities(remote=False, cacheable=False, serial=False,
                                            native_tools=True, grammar=False,
                                            file_target=True))
def make_scripted(name: str, target: str, options: dict[str, Any], base_dir: Path | None
                  ) -> ScriptedModel:
    """A fixture file's model (`scripted/path/to/fixture[.yaml]`)."""
    if options:
        raise AmlabError(f"model {name}: scripted models take no options "
                         f"(got {', '.join(options)}).")
    return ScriptedModel.from_fixture(name, resolve_file(target, base_dir, ".yaml"))


def _usage(request: ModelRequest, text: str) -> Usage:
    # A rough count (4 characters a token) so that cost plumbing is exercised in tests.
    chars = sum(len(m.content) for m in request.messages)
    return Usage(input_tokens=chars // 4, output_tokens=len(text) // 4, calls=1)

