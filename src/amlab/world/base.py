"""The machinery every simulated component shares: tool specs, observations, dispatch.

A world is a set of components (a mailbox, an alert console, hosts with files...). Each
component declares its tools with JSON schemas; `World.apply` checks a call against the
schema and dispatches it. Nothing here touches the real file system or network.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Literal, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict

from amlab.records import ToolCall
from amlab.world.changes import StateChange

if TYPE_CHECKING:
    from _typeshed import DataclassInstance


@dataclass(frozen=True)
class ToolSpec:
    """A tool as offered to the agent: a JSON schema for native calls, a tag for text tags."""

    name: str
    description: str
    parameters: dict[str, Any]
    # The tag of the text protocol (`<tool_use:email>`), after the original study's names.
    tag: str = ""

    def __hash__(self) -> int:
        # The schema dict is not hashable; name and tag identify a tool within a world.
        return hash((self.name, self.tag))

    def __deepcopy__(self, memo: dict[int, Any]) -> ToolSpec:
        # Never changed after the world is built: each trial's copy of the world shares
        # its tools (copying their schemas was half the time of `World.copy`).
        return self

    @property
    def text_tag(self) -> str:
        return self.tag or self.name

    @property
    def required(self) -> list[str]:
        return list(self.parameters.get("required", []))

    @property
    def properties(self) -> dict[str, dict[str, Any]]:
        props: dict[str, dict[str, Any]] = self.parameters.get("properties", {})
        return props


def schema(required: dict[str, tuple[str, str]], optional: dict[str, tuple[str, str]] | None = None,
           ) -> dict[str, Any]:
    """A JSON object schema from {name: (json type, description)} maps."""
    props: dict[str, dict[str, Any]] = {
        name: {"type": kind, "description": text}
        for name, (kind, text) in {**required, **(optional or {})}.items()
    }
    for prop in props.values():
        if prop["type"] == "array":  # providers require the item type of an array
            prop["items"] = {"type": "string"}
    return {"type": "object", "properties": props, "required": list(required)}


@dataclass(frozen=True)
class Observation:
    """What the agent sees after a call, and the state changes the call made."""

    ok: bool
    text: str
    changes: tuple[StateChange, ...] = ()

    @classmethod
    def success(cls, text: str, *changes: StateChange) -> Observation:
        return cls(ok=True, text=text, changes=changes)

    @classmethod
    def error(cls, text: str) -> Observation:
        return cls(ok=False, text=f"Error: {text}")

    def stored_changes(self) -> list[dict[str, Any]]:
        """The changes as a transcript keeps them (`Action.changes`, JSON in the store)."""
        return [change.to_dict() for change in self.changes]


# What a new value of an argument looks like (see `KnownValues.open`).
ValueForm = Literal["address", "path", "line"]


@dataclass(frozen=True)
class KnownValues:
    """Values that consecutive arguments of one tool can take because they name something
    in the world now: an inbox e-mail's id, a host and one of its files, a job. Each row
    gives one value per argument, in order (a path belongs to its host). `open`: the last
    argument may also take a new value of its `form` (a file not written yet, an address
    nobody has used); `several`: it takes a comma-separated list of the values."""

    tool: str
    arguments: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    open: bool = False
    form: ValueForm = "line"
    several: bool = False


_State = TypeVar("_State")
_Whole = TypeVar("_Whole")


def _nothing_known(state: Any) -> Iterable[KnownValues]:
    return ()


@dataclass(frozen=True)
class Tool(Generic[_State]):
    """One tool, declared once: what the agent is offered (`spec`), what a call does to the
    state it acts on (`run`, given the arguments `World.apply` checked against the spec), and
    what its arguments can name in that state now (`known`)."""

    spec: ToolSpec
    run: Callable[[_State, dict[str, Any]], Observation]
    known: Callable[[_State], Iterable[KnownValues]] = _nothing_known

    def through(self, part: Callable[[_Whole], _State]) -> Tool[_Whole]:
        """This tool offered by a component that holds its state as one part (`part`)."""
        return Tool(self.spec, lambda whole, args: self.run(part(whole), args),
                    lambda whole: self.known(part(whole)))


class Toolbox(Generic[_State]):
    """A component's tools by name: the only way its calls are dispatched, so a name it does
    not declare is an error, never another tool."""

    def __init__(self, *tools: Tool[_State]) -> None:
        self._tools = {tool.spec.name: tool for tool in tools}
        self.specs = tuple(tool.spec for tool in tools)

    def call(self, state: _State, name: str, args: dict[str, Any]) -> Observation:
        tool = self._tools.get(name)
        if tool is None:
            return Observation.error(f"there is no tool '{name}' here; tools are "
                                     f"{', '.join(self._tools)}")
        return tool.run(state, args)

    def known_values(self, state: _State) -> list[KnownValues]:
        return [known for tool in self._tools.values() for known in tool.known(state)]


class Component(Protocol):
    """A piece of simulated state with the tools that act on it."""

    key: ClassVar[str]
    tools: ClassVar[tuple[ToolSpec, ...]]

    def call(self, tool: str, args: dict[str, Any]) -> Observation: ...

    def snapshot(self) -> dict[str, Any]: ...

    def known_values(self) -> list[KnownValues]: ...


_Copied = TypeVar("_Copied", bound="DataclassInstance")


def copy_sharing(component: _Copied, shared: tuple[str, ...], memo: dict[int, Any]) -> _Copied:
    """A deep copy of a dataclass component whose fields named in `shared` are the
    original's own objects: state no tool changes (the scenario's mail, a frozen spec), which
    every trial's copy of the world can share. Any other field, a subclass's too, is copied."""
    clone = copy.copy(component)
    for state in fields(component):
        if state.name not in shared:
            setattr(clone, state.name, copy.deepcopy(getattr(component, state.name), memo))
    return clone


class StrictSpec(BaseModel):
    """A component's configuration from a family's world.yaml: a field it does not know is
    an error, and nothing changes it once read."""

    model_config = ConfigDict(extra="forbid", frozen=True)


# Builds a component from its section of a family's world.yaml; `where` names that section
# for error messages. The mailbox is built from the family's e-mail files instead.
ComponentFactory = Callable[[dict[str, Any], str], Component]
COMPONENT_TYPES: dict[str, ComponentFactory] = {}


def component_type(key: str) -> Callable[[ComponentFactory], ComponentFactory]:
    """Register a factory under the key a family's world.yaml uses for it."""
    def register(factory: ComponentFactory) -> ComponentFactory:
        COMPONENT_TYPES[key] = factory
        return factory
    return register


@dataclass
class World:
    """The simulated workplace of one trial; `apply` is its only way to change."""

    components: dict[str, Component]
    enabled_tools: tuple[str, ...]
    _by_tool: dict[str, tuple[Component, ToolSpec]] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        available = {
            spec.name: (component, spec)
            for component in self.components.values()
            for spec in component.tools
        }
        unknown = [t for t in self.enabled_tools if t not in available]
        if unknown:
            raise ValueError(f"tools {unknown} are not provided by components "
                             f"{sorted(self.components)}; available: {sorted(available)}")
        self._by_tool = {name: available[name] for name in self.enabled_tools}

    @property
    def tools(self) -> list[ToolSpec]:
        return [spec for _, spec in self._by_tool.values()]

    def tool(self, name: str) -> ToolSpec | None:
        entry = self._by_tool.get(name)
        return entry[1] if entry else None

    def apply(self, call: ToolCall) -> Observation:
        if call.parse_error:
            return Observation.error(call.parse_error)
        entry = self._by_tool.get(call.name)
        if entry is None:
            return Observation.error(
                f"there is no tool '{call.name}'; tools are {', '.join(self._by_tool)}")
        component, spec = entry
        args, problem = coerce_arguments(spec, call.arguments)
        if problem:
            return Observation.error(problem)
        return component.call(call.name, args)

    def snapshot(self) -> dict[str, Any]:
        return {key: c.snapshot() for key, c in self.components.items()}

    def known_values(self) -> list[KnownValues]:
        """What the enabled tools' arguments can name in the world as it is now (read-only;
        the text protocol's grammar offers these to a model)."""
        return [known for component in self.components.values()
                for known in component.known_values() if known.tool in self._by_tool]

    def copy(self) -> World:
        return copy.deepcopy(self)


_COERCE = {"integer": int, "number": float, "string": str}


def coerce_arguments(spec: ToolSpec, raw: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """Check arguments against the tool's schema, converting text-protocol strings to
    the declared scalar types. Returns (arguments, problem); problem is '' when valid."""
    props = spec.properties
    missing = [name for name in spec.required if raw.get(name) in (None, "")]
    if missing:
        return {}, f"{spec.name} needs {', '.join(missing)}"
    unknown = [name for name in raw if name not in props]
    if unknown:
        return {}, (f"{spec.name} has no argument {', '.join(unknown)}; "
                    f"its arguments are {', '.join(props)}")
    args: dict[str, Any] = {}
    for name, value in raw.items():
        kind = props[name].get("type", "string")
        if kind == "array":
            args[name] = value if isinstance(value, list) else [
                part.strip() for part in str(value).split(",") if part.strip()]
            continue
        convert = _COERCE.get(kind)
        try:
            args[name] = convert(value) if convert and value is not None else value
        except (TypeError, ValueError, OverflowError):  # OverflowError: int(inf)
            return {}, f"{spec.name}: {name} must be a {kind}, not {value!r}"
    return args, ""
