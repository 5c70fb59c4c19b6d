"""Reading the YAML files users write (experiments, families, fixtures, facts files), with
one-sentence errors that name the file and, for a syntax error, the line.

A file a user passes is treated as hostile: it must be UTF-8, and it is bounded in size, in
the number of values it expands to (an alias repeats what it points to, so a few hundred
bytes of aliases can stand for billions of values) and in nesting depth, all checked on the
composed document before any Python object is built.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from amlab.errors import AmlabError


@dataclass(frozen=True)
class YamlBounds:
    max_bytes: int
    max_values: int  # scalars, sequences and mappings, aliases counted as what they repeat
    max_depth: int


# Far above any experiment, family or fixture written by hand, far below a memory problem.
USER_FILE_BOUNDS = YamlBounds(max_bytes=8 * 1024 * 1024, max_values=1_000_000, max_depth=64)


def read_yaml(path: Path, what: str, bounds: YamlBounds = USER_FILE_BOUNDS) -> Any:
    """The document of `path`, a `what` (e.g. "experiment file") the user pointed at."""
    if not path.is_file():
        raise AmlabError(f"{path}: no such {what}.")
    size = path.stat().st_size
    if size > bounds.max_bytes:
        raise AmlabError(f"{path}: the {what} is {size:,} bytes; the limit is "
                         f"{bounds.max_bytes:,}.")
    return read_yaml_text(read_utf8(path, what), path, what, bounds)


def read_utf8(path: Path, what: str) -> str:
    """The text of a file the user wrote, or one sentence if it is not UTF-8."""
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise AmlabError(f"{path}: is not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset "
                         f"{exc.start}); save the {what} as UTF-8.") from None


def read_yaml_text(text: str, source: Path | str, what: str,
                   bounds: YamlBounds = USER_FILE_BOUNDS) -> Any:
    """The document of YAML text a user wrote (e.g. an e-mail file's header), `source`
    naming where it came from in errors."""
    try:
        return _load_bounded(text, bounds)
    except yaml.YAMLError as exc:
        raise AmlabError(f"{source}: is not valid YAML ({_problem(exc)}).") from None
    except _BoundExceeded as exc:
        raise AmlabError(f"{source}: the {what} {exc}.") from None


class _BoundExceeded(Exception):
    """The composed document is larger or deeper than its bounds (the message says which)."""


# libyaml's loader when PyYAML was built with it (it also refuses nesting past 1,000 levels);
# the pure-Python one otherwise, whose recursion the interpreter bounds.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _load_bounded(text: str, bounds: YamlBounds) -> Any:
    """Compose the document (aliases stay references to one node), measure what it would
    expand to, and only then construct it."""
    loader = _LOADER(text)
    try:
        try:
            node = loader.get_single_node()
        except RecursionError:
            raise _BoundExceeded("nests deeper than YAML can be read") from None
        if node is None:
            return None
        _measure(node, bounds)
        return loader.construct_document(node)
    finally:
        loader.dispose()


def _measure(root: yaml.Node, bounds: YamlBounds) -> None:
    """Raise _BoundExceeded if the document expands to too many values or nests too deep.
    Each node is measured once (a shared node by reference), without recursion."""
    values: dict[int, int] = {}
    depth: dict[int, int] = {}
    open_nodes: set[int] = set()  # entered, children not yet measured
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        if id(node) in values:
            continue
        children = _children(node)
        if not children_done:
            if id(node) in open_nodes:
                raise _BoundExceeded("contains itself through an alias")
            open_nodes.add(id(node))
            stack.append((node, True))
            stack.extend((child, False) for child in children if id(child) not in values)
            continue
        open_nodes.discard(id(node))
        values[id(node)] = 1 + sum(values[id(child)] for child in children)
        depth[id(node)] = 1 + max((depth[id(child)] for child in children), default=0)
        if values[id(node)] > bounds.max_values:
            raise _BoundExceeded(f"expands to more than {bounds.max_values:,} values, each "
                                 f"alias counted as what it repeats; that is the limit")
        if depth[id(node)] > bounds.max_depth:
            raise _BoundExceeded(f"nests more than {bounds.max_depth} levels deep; that is "
                                 f"the limit")


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def _problem(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or "syntax error"
    return f"{problem} at line {mark.line + 1}" if mark else str(problem)


# What an agent writes into a configuration file of the simulated world: far above any real
# configuration, far below anything that costs memory or time to read.
AGENT_TEXT_BOUNDS = YamlBounds(max_bytes=65536, max_values=10_000, max_depth=64)


def parse_untrusted_yaml(text: str, bounds: YamlBounds = AGENT_TEXT_BOUNDS) -> Any:
    """The document of YAML an agent wrote (a configuration file in the simulated world),
    refusing anything that would cost more than its size suggests (a few hundred bytes of
    nested aliases expand to billions of values: the "billion laughs"). Raises `AmlabError`
    with one sentence saying which limit, or the syntax error."""
    size = len(text.encode("utf-8"))
    if size > bounds.max_bytes:
        raise AmlabError(f"the YAML is {size:,} bytes; at most {bounds.max_bytes:,} are read.")
    try:
        return _load_bounded(text, bounds)
    except yaml.YAMLError as exc:
        raise AmlabError(f"the YAML does not parse ({_problem(exc)}).") from None
    except _BoundExceeded as exc:
        raise AmlabError(f"the YAML {exc}.") from None
