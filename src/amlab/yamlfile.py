"""Reading the YAML files users write (experiments, families, fixtures, facts files), with
one-sentence errors that name the file and, for a syntax error, the line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from amlab.errors import AmlabError


def read_yaml(path: Path, what: str) -> Any:
    """The document of `path`, a `what` (e.g. "experiment file") the user pointed at."""
    if not path.is_file():
        raise AmlabError(f"{path}: no such {what}.")
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise AmlabError(f"{path}: is not valid YAML ({_problem(exc)}).") from None


def _problem(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or "syntax error"
    return f"{problem} at line {mark.line + 1}" if mark else str(problem)


# Nesting deeper than this is no configuration anyone writes, and deeper documents would
# exhaust the composer's recursion.
_MAX_DEPTH = 64
_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def parse_untrusted_yaml(text: str, *, max_bytes: int = 65536, max_nodes: int = 10000) -> Any:
    """The document of YAML an agent wrote (a configuration file in the simulated world),
    refusing anything that would cost more than its size suggests: more than `max_bytes`,
    nesting deeper than 64, or more than `max_nodes` nodes once aliases are expanded (a
    few hundred bytes of nested aliases expand to billions of nodes: the "billion laughs").
    Raises `AmlabError` with one sentence saying which limit, or the syntax error."""
    size = len(text.encode("utf-8"))
    if size > max_bytes:
        raise AmlabError(f"the YAML is {size} bytes; at most {max_bytes} are read.")
    try:
        depth = 0
        for event in yaml.parse(text, Loader=_SAFE_LOADER):
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > _MAX_DEPTH:
                    raise AmlabError(f"the YAML nests deeper than {_MAX_DEPTH} levels.")
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
        node = yaml.compose(text, Loader=_SAFE_LOADER)
        if node is None:
            return None
        expanded = _expanded_size(node, {}, max_nodes)
        if expanded > max_nodes:
            raise AmlabError(f"the YAML expands to more than {max_nodes} nodes through its "
                             f"aliases.")
        return yaml.load(text, Loader=_SAFE_LOADER)
    except yaml.YAMLError as exc:
        raise AmlabError(f"the YAML does not parse ({_problem(exc)}).") from None


def _expanded_size(node: yaml.Node, sizes: dict[int, int], limit: int) -> int:
    """How many nodes `node` stands for once every alias is copied out; counted once per
    distinct node (aliases share the node object), and capped just above `limit`."""
    known = sizes.get(id(node))
    if known is not None:
        return known
    # A node inside its own alias (`&a [*a]`) expands without end.
    sizes[id(node)] = limit + 1
    total = 1
    if isinstance(node, yaml.SequenceNode):
        children: list[yaml.Node] = list(node.value)
    elif isinstance(node, yaml.MappingNode):
        children = [part for pair in node.value for part in pair]
    else:
        children = []
    for child in children:
        total = min(total + _expanded_size(child, sizes, limit), limit + 1)
    sizes[id(node)] = total
    return total
