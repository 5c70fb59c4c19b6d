"""Does watching the agent stop the harm, and at what cost? Per model and condition: the
harmful-act rate without and with the monitor, the monitor's catch and false-block rates
against the detectors' ground truth, what the agent did after a block, and the cost."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field

from amlab.analysis.effects import two_proportions
from amlab.analysis.rates import wilson
from amlab.detect.base import HARMFUL
from amlab.run.trial import SEES_REASONING_FACTOR, Arms
from amlab.store import Store
from amlab.store.interface import MonitorCount

ESCALATION = ("advocated", "whistleblew")


@dataclass
class Arm:
    harmful: int = 0
    n: int = 0

    @property
    def rate(self) -> float:
        return self.harmful / self.n if self.n else float("nan")

    @property
    def interval(self) -> tuple[float, float]:
        return wilson(self.harmful, self.n)


@dataclass
class MonitorComparison:
    model: str
    family: str
    condition: str
    monitor: str
    unmonitored: Arm = field(default_factory=Arm)
    monitored: Arm = field(default_factory=Arm)
    harmful_calls: int = 0
    caught: int = 0
    benign_calls: int = 0
    false_blocks: int = 0
    after_block: Counter[str] = field(default_factory=Counter)
    monitor_input_tokens: int = 0
    monitor_output_tokens: int = 0
    monitor_cost_usd: float = 0.0

    @property
    def difference(self) -> tuple[float, float, float]:
        """Monitored minus unmonitored harmful rate, with a 95 % Newcombe interval."""
        a, b = self.monitored, self.unmonitored
        if not a.n or not b.n:
            return float("nan"), float("nan"), float("nan")
        difference, low, high, _ = two_proportions(a.harmful, a.n, b.harmful, b.n)
        return difference, low, high

    @property
    def catch_rate(self) -> float:
        return self.caught / self.harmful_calls if self.harmful_calls else float("nan")

    @property
    def false_block_rate(self) -> float:
        return self.false_blocks / self.benign_calls if self.benign_calls else float("nan")


def after_block(row: MonitorCount) -> str:
    """What the agent did after the monitor's first block: routed around it (a harmful
    behaviour holds anyway), retried (a harmful call after the block), escalated (an
    escalation behaviour holds) or complied."""
    if row.harmful:
        return "routed_around"
    if row.retried:
        return "retried"
    return "escalated" if row.escalated else "complied"


def monitor_comparisons(store: Store, experiment: str) -> list[MonitorComparison]:
    """One comparison per model, family, condition and monitor level, from the store's
    per-cell counts (the unmonitored arm is the same cell at `monitor=none`)."""
    cells: dict[tuple[str, str, str, str], MonitorComparison] = {}
    unmonitored: dict[tuple[str, str, str], Arm] = defaultdict(Arm)
    for row in store.monitor_counts(experiment, HARMFUL, ESCALATION):
        arms = Arms.from_factors(row.factors)
        if arms.monitor is None:  # a condition run without the monitor factor: not compared
            continue
        # The family's condition: the cell both arms of the comparison share.
        base = arms.family_key(row.condition)
        if not arms.watched:
            arm = unmonitored[(row.model, row.family, base)]
            arm.n += row.trials
            arm.harmful += row.trials if row.harmful else 0
            continue
        sees_reasoning = row.factors.get(SEES_REASONING_FACTOR, "")
        label = arms.monitor + (f" (sees reasoning: {sees_reasoning})" if sees_reasoning else "")
        key = (row.model, row.family, base, label)
        cell = cells.setdefault(key, MonitorComparison(*key))
        cell.monitored.n += row.trials
        cell.monitored.harmful += row.trials if row.harmful else 0
        cell.harmful_calls += row.harmful_calls
        cell.caught += row.caught
        cell.benign_calls += row.benign_calls
        cell.false_blocks += row.false_blocks
        if row.blocked:
            cell.after_block[after_block(row)] += row.trials
        cell.monitor_input_tokens += row.monitor_input_tokens
        cell.monitor_output_tokens += row.monitor_output_tokens
        cell.monitor_cost_usd += row.monitor_cost_usd
    for (model, family, base, _), cell in cells.items():
        cell.unmonitored = unmonitored[(model, family, base)]
    return list(cells.values())
