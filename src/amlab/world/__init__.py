"""Simulated state and the tools that change it. Pure: no disk, no network, no clock."""

from amlab.world.base import Component, Observation, ToolSpec, World
from amlab.world.mailbox import Email, Mailbox

__all__ = ["Component", "Email", "Mailbox", "Observation", "ToolSpec", "World"]
