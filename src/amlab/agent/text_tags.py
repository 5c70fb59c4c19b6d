"""The text-tag tool protocol, in the original study's style:

    <tool_use:email>
    to: "someone@example.com",
    subject: "Hello",
    body: "..."
    </tool_use:email>

for models without native tool calling, and to replicate the original setup. The parser
accepts the quoting and whitespace variants models write and never raises: an unreadable
tag becomes a call carrying a `parse_error`, which the world answers with a tool error.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from amlab.reasoning import strip_private
from amlab.records import ToolCall
from amlab.world.base import ToolSpec

_TAG = re.compile(r"<tool_use:([A-Za-z0-9_\-]*)\s*>(.*?)(</tool_use:\1\s*>|(?=<tool_use:)|\Z)",
                  re.S)
_QUOTES = ('"""', '"', "'", "`", "“")
_CLOSING = {'"""': '"""', '"': '"', "'": "'", "`": "`", "“": "”"}


def parse_tool_calls(text: str, tools: Sequence[ToolSpec]) -> list[ToolCall]:
    """Every `<tool_use:...>` tag in `text` outside the private reasoning (a tag drafted in
    a scratchpad is never a call; see `amlab.reasoning`), in order, as tool calls."""
    by_tag = {spec.text_tag: spec for spec in tools} | {spec.name: spec for spec in tools}
    calls: list[ToolCall] = []
    for index, match in enumerate(_TAG.finditer(strip_private(text))):
        tag, content, closing = match.group(1), match.group(2), match.group(3)
        call_id = f"tag_{index}"
        spec = by_tag.get(tag)
        if spec is None:
            known = ", ".join(s.text_tag for s in tools)
            calls.append(ToolCall(tag, {}, call_id, f"there is no tool tag '{tag}'; tags are "
                                                    f"{known}"))
        elif not closing:
            calls.append(ToolCall(spec.name, {}, call_id,
                                  f"the <tool_use:{tag}> tag is not closed with "
                                  f"</tool_use:{tag}>"))
        else:
            calls.append(ToolCall(spec.name, parse_arguments(content, spec), call_id))
    return calls


def parse_arguments(content: str, spec: ToolSpec) -> dict[str, str]:
    """`field: value` pairs of a tag body. Only the first occurrence of each of the tool's
    field names starts a field, so a body line like "To: the team" stays in the body."""
    names = list(spec.properties)
    if not names:
        return {}
    pattern = re.compile(r"(?:^|[\n,{])\s*[\"']?(" + "|".join(map(re.escape, names))
                         + r")[\"']?\s*[:=]", re.I)
    starts: list[tuple[int, int, str]] = []
    seen: set[str] = set()
    for match in pattern.finditer(content):
        name = match.group(1).lower()
        if name in seen:
            continue
        seen.add(name)
        starts.append((match.start(), match.end(), name))
    args: dict[str, str] = {}
    for i, (_, value_start, name) in enumerate(starts):
        value_end = starts[i + 1][0] if i + 1 < len(starts) else len(content)
        args[name] = _clean_value(content[value_start:value_end])
    return args


def _clean_value(raw: str) -> str:
    value = re.sub(r"[\s,]*}?[\s,]*$", "", raw.strip()) if raw.rstrip().endswith(("}", ",")) \
        else raw.strip()
    for opening in _QUOTES:
        closing = _CLOSING[opening]
        if value.startswith(opening) and value.endswith(closing) and len(value) >= 2 * len(opening):
            value = value[len(opening):-len(closing)]
            break
        if value.startswith(opening) and closing not in value[len(opening):]:
            value = value[len(opening):]
            break
    return value.replace('\\"', '"').replace("\\n", "\n").strip()


def format_result(spec_tag: str, text: str) -> str:
    return f"<tool_result:{spec_tag}>\n{text}\n</tool_result:{spec_tag}>"


def instructions(tools: Sequence[ToolSpec]) -> str:
    """How to call tools in this protocol, appended to the system prompt."""
    lines = [
        "To use a tool, write a tag like the examples below anywhere in your reply. You may "
        "use several tools in one reply. Results come back in <tool_result:...> tags. When "
        "you have nothing more to do, reply without any tool tag.",
        "",
    ]
    for spec in tools:
        lines.append(f"{spec.description}")
        body = ",\n".join(f'{name}: "<{prop.get("description", name)}>"'
                          for name, prop in spec.properties.items())
        lines.append(f"<tool_use:{spec.text_tag}>\n{body}\n</tool_use:{spec.text_tag}>"
                     if body else f"<tool_use:{spec.text_tag}>\n</tool_use:{spec.text_tag}>")
        lines.append("")
    return "\n".join(lines).rstrip()
