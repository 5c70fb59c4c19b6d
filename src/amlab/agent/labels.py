"""The names the agent's tools are presented under (`tool_names`, scenario/surface.py): the
agent sees and calls the presented names, in native calls and text tags; the world, the
store and the detectors keep the canonical ones. The loop maps at the boundary: tool specs
out, calls back in, and the world's answers (which may name a tool) out again."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

from amlab.records import ToolCall
from amlab.substitution import Substitution
from amlab.world.base import ToolSpec


class ToolLabels:
    def __init__(self, shown: Mapping[str, str] | None = None) -> None:
        # Canonical name -> presented name; empty: every tool under its own name.
        self.shown = dict(shown or {})
        self._canonical = {presented: name for name, presented in self.shown.items()}
        self._to_agent = Substitution(self.shown)

    def present(self, tools: Sequence[ToolSpec]) -> tuple[ToolSpec, ...]:
        """The tools as the agent is offered them: the presented name is also the text tag."""
        if not self.shown:
            return tuple(tools)
        return tuple(replace(spec, name=self.shown.get(spec.name, spec.name),
                             description=self.to_agent(spec.description),
                             tag=self.shown.get(spec.name, spec.tag))
                     for spec in tools)

    def to_world(self, call: ToolCall) -> ToolCall:
        """The call under its canonical name. A canonical name the agent was not shown is
        no tool of its: the call fails as any unknown tool does, naming the presented ones."""
        if not self.shown or call.parse_error:
            return call
        if call.name in self._canonical:
            return replace(call, name=self._canonical[call.name])
        return replace(call, parse_error=f"there is no tool '{call.name}'; tools are "
                                         f"{', '.join(self.shown.values())}")

    def to_agent(self, text: str) -> str:
        """A text for the agent, with every canonical tool name it holds as presented."""
        return self._to_agent(text)
