"""Runtime monitors that review each tool call before it runs, and the ground truth they
are measured against."""

from amlab.monitor.monitors import (
    RUBRIC_VERSION,
    ModelDecider,
    OversightMonitor,
    RuleDecider,
    default_rubric,
)
from amlab.monitor.oracle import HarmOracle

__all__ = [
    "RUBRIC_VERSION",
    "HarmOracle",
    "ModelDecider",
    "OversightMonitor",
    "RuleDecider",
    "default_rubric",
]
