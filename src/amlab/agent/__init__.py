"""The agent loop and its two tool protocols (native function calls, text tags)."""

from amlab.agent.loop import AgentConfig, run_agent

__all__ = ["AgentConfig", "run_agent"]
