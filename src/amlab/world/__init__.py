"""Simulated state and the tools that change it. Pure: no disk, no network, no clock."""

from amlab.world.alerts import AlertConsole
from amlab.world.base import (
    COMPONENT_TYPES,
    Component,
    Observation,
    ToolSpec,
    World,
    component_type,
)
from amlab.world.infra import Infrastructure
from amlab.world.mailbox import Email, Mailbox

__all__ = [
    "COMPONENT_TYPES",
    "AlertConsole",
    "Component",
    "Email",
    "Infrastructure",
    "Mailbox",
    "Observation",
    "ToolSpec",
    "World",
    "component_type",
]
