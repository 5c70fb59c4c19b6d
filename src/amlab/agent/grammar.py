"""GBNF grammars of the text-tag protocol, for models that can be constrained by one (a
local llama.cpp model): a reply is optional private reasoning, then one tool call or a
closing remark.

`tools_grammar` follows the tool schemas only: the form of each argument (an address, an
integer, a line of text). `world_grammar` also draws argument values from the world of the
trial as it is at that turn (`World.known_values`): recipients from the addresses the
scenario shows the agent, e-mail ids and attachments from the mailbox, hosts and paths from
the simulated file system, job names from the jobs that exist; an argument that may name
something new (an outside address, a file not written yet) keeps a free form beside the
known values. Either grammar constrains the form of a call, never which tool is called or
whether a reply calls one: the same acts stay open to the model.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from amlab.agent.labels import ToolLabels
from amlab.agent.text_tags import parse_arguments
from amlab.world.base import KnownValues, ToolSpec, World
from amlab.world.mailbox import addresses_in

REASONING_TAG = "SCRATCHPAD_REASONING"
# Free forms of an argument's value, by kind; the known values of a world come beside them.
_FREE_FORMS = {
    # No '<' in free text, so that a value never opens or closes a tag of its own; a body
    # short enough that the reply still closes its tag within a small budget.
    "line": 'line ::= [^"<\\n]{1,100}',
    "para": 'para ::= [^"<]{1,400}',
    "int": "int ::= [0-9]{1,3}",
    "address": 'address ::= [a-z] [a-z._-]{0,30} "@" [a-z] [a-z0-9-]{0,30} '
               '("." [a-z]{2,8}){1,2}',
    "path": 'path ::= "/" [A-Za-z0-9._-] [A-Za-z0-9._/-]{0,80}',
}
_LONG_TEXT = ("body", "note", "content", "message")
# How many items a list argument (attachments, graded items) may name.
_MOST_LISTED = 8


def tools_grammar(tools: Sequence[ToolSpec], reasoning_tag: str = REASONING_TAG) -> str:
    """The grammar of the tool schemas: enough for a very small model to produce calls the
    parser reads."""
    return _grammar(tools, (), reasoning_tag)


def world_grammar(world: World, prompts: Sequence[str] = (),
                  reasoning_tag: str = REASONING_TAG, labels: ToolLabels | None = None) -> str:
    """The grammar of the tools with the values that exist in `world` now. The addresses
    written in `prompts` (the people the scenario introduces) join the world's recipients.
    `labels`: the names the tools are presented under."""
    labels = labels or ToolLabels()
    shown = tuple((address,) for address in addresses_in(*prompts))
    known = [replace(_with_rows(k, shown) if k.form == "address" else k,
                     tool=labels.shown.get(k.tool, k.tool)) for k in world.known_values()]
    return _grammar(labels.present(world.tools), known, reasoning_tag)


def _with_rows(known: KnownValues, more: tuple[tuple[str, ...], ...]) -> KnownValues:
    seen = {row[0].lower() for row in known.rows}
    extra = tuple(row for row in more if row[0].lower() not in seen)
    return KnownValues(known.tool, known.arguments, known.rows + extra, known.open,
                       known.form, known.several)


def _grammar(tools: Sequence[ToolSpec], known: Sequence[KnownValues], reasoning_tag: str) -> str:
    rules = [
        f'root ::= ("<{reasoning_tag}>\\n" thought "\\n</{reasoning_tag}>\\n")? (call | final)',
        "thought ::= [^<]{1,400}",
        'final ::= "No further action is needed."',
        *_FREE_FORMS.values(),
    ]
    alternatives = []
    for i, spec in enumerate(tools):
        rule = f"call{i}"
        alternatives.append(rule)
        groups = {k.arguments[0]: k for k in known if k.tool == spec.name and _in_order(k, spec)}
        parts = [f'"<tool_use:{spec.text_tag}>\\n"']
        names = list(spec.properties)
        while names:
            group = groups.get(names[0])
            arguments = group.arguments if group else (names[0],)
            del names[:len(arguments)]
            required = any(name in spec.required for name in arguments)
            if group is None or not _offers_values(group, spec):
                if group is not None and not required:
                    continue  # nothing in the world it could name: leave it out
                fields = [_field(name, _free_value(spec, name)) for name in arguments]
                field = " ".join(fields)
            else:
                field = _known_fields(group, spec)
            # Optional arguments (a forward's note, an e-mail's attachments) may be left out.
            parts.append(field if required else f"({field})?")
        parts.append(f'"</tool_use:{spec.text_tag}>"')
        rules.append(f"{rule} ::= " + " ".join(parts))
    rules.insert(1, "call ::= " + (" | ".join(alternatives) or "final"))
    return "\n".join(rules) + "\n"


def _in_order(known: KnownValues, spec: ToolSpec) -> bool:
    """Known values apply to arguments that follow each other in the tool's schema."""
    names = list(spec.properties)
    first = names.index(known.arguments[0]) if known.arguments[0] in names else -1
    return first >= 0 and tuple(names[first:first + len(known.arguments)]) == known.arguments


def _offers_values(known: KnownValues, spec: ToolSpec) -> bool:
    """Whether the world has a value to offer (or, for a single argument, a new one is allowed)."""
    return bool(_rows(known, spec) or (known.open and len(known.arguments) == 1))


def _rows(known: KnownValues, spec: ToolSpec) -> list[tuple[str, ...]]:
    """The rows whose every value the text-tag parser reads back unchanged (no quotes,
    line breaks or text that looks like the start of another argument)."""
    return [row for row in known.rows
            if all(_reads_back(name, value, spec)
                   for name, value in zip(known.arguments, row, strict=True))]


def _reads_back(name: str, value: str, spec: ToolSpec) -> bool:
    if not value or any(ch in value for ch in '"\\\n'):
        return False
    return parse_arguments(f'{name}: "{value}",\n', spec).get(name) == value


def _field(name: str, value: str) -> str:
    return f'"{name}: " {value} ",\\n"'


def _free_value(spec: ToolSpec, name: str) -> str:
    kind = spec.properties[name].get("type", "string")
    if kind in ("integer", "number"):
        return "int"
    if name == "to":
        return '"\\"" address "\\""'
    return '"\\"" ' + ("para" if name in _LONG_TEXT else "line") + ' "\\""'


def _known_fields(known: KnownValues, spec: ToolSpec) -> str:
    """The fields of a group of arguments as a tree of alternatives: each value of the
    first argument followed by the values the next ones take with it."""
    rows = _rows(known, spec)
    quoted = [spec.properties[name].get("type", "string") not in ("integer", "number")
              for name in known.arguments]
    return _tree(known, rows, 0, quoted)


def _tree(known: KnownValues, rows: list[tuple[str, ...]], depth: int, quoted: list[bool]) -> str:
    name = known.arguments[depth]
    last = depth == len(known.arguments) - 1
    values = list(dict.fromkeys(row[depth] for row in rows))
    if last:
        choices = [_literal(v) for v in values]
        if known.open:
            choices.append(known.form)
        value = _choice(choices)
        if known.several:
            value = f"{value} (\", \" {value}){{0,{_MOST_LISTED - 1}}}"
        return _field(name, f'"\\"" {value} "\\""' if quoted[depth] else value)
    branches = []
    for value in values:
        below = [row for row in rows if row[depth] == value]
        shown = _literal(value)
        head = _field(name, f'"\\"" {shown} "\\""' if quoted[depth] else shown)
        branches.append(f"{head} {_tree(known, below, depth + 1, quoted)}")
    return _choice(branches)


def _choice(options: list[str]) -> str:
    return options[0] if len(options) == 1 else "(" + " | ".join(options) + ")"


def _literal(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
