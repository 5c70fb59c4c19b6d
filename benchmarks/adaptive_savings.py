"""What stopping early saves, by simulation (seeded): synthetic cells at rates of 0 %, 5 %,
50 % and 95 %, each sampled one trial at a time up to the agentic-misalignment preset's
`samples` (177), stopped by run/stopping.py's rule (the cell's confidence sequence within
±half_width) at the default settings (`stopping: {}`: ±5 pp, 95 %) and at ±10 pp. Per rate:
the mean trials run, the share saved against running every sample, and how often the
anytime-valid interval at the stop covered the true rate. The money is the share saved times
the preset's dry-run estimate (`amlab reproduce agentic-misalignment --dry-run`, GPT-4.1),
for a preset whose 13 cells were spread evenly over the four rates.

One watched behaviour per cell: the rule stops a cell when every watched behaviour is narrow,
so a family watching two (blackmail: blackmail and disclosed_private_info) stops at the later
of the two.

    python benchmarks/adaptive_savings.py [--cells 2000]

Prints a Markdown table (docs/statistics.md quotes it). Not in the suite: run it alone.
"""

from __future__ import annotations

import argparse

import numpy as np

from amlab.presets import preset_experiment
from amlab.run.estimate import estimate
from amlab.run.stopping import confidence_sequence

RATES = (0.0, 0.05, 0.5, 0.95)
HALF_WIDTHS = (0.05, 0.10)  # the default, and a looser rule for comparison


def interval_table(samples: int, confidence: float) -> tuple[np.ndarray, np.ndarray]:
    low = np.zeros((samples + 1, samples + 1))
    high = np.ones((samples + 1, samples + 1))
    for n in range(1, samples + 1):
        for k in range(n + 1):
            low[n, k], high[n, k] = confidence_sequence(k, n, confidence)
    return low, high


def simulate(rate: float, half_width: float, samples: int, cells: int,
             table: tuple[np.ndarray, np.ndarray], seed: int) -> tuple[float, float]:
    """Mean trials run per cell, and the coverage of the interval where each cell stopped."""
    low, high = table
    k = np.cumsum(np.random.default_rng(seed).random((cells, samples)) < rate, axis=1)
    n = np.arange(1, samples + 1)
    narrow = (high[n, k] - low[n, k]) / 2 <= half_width
    ran = np.where(narrow.any(axis=1), narrow.argmax(axis=1) + 1, samples)
    final = k[np.arange(cells), ran - 1]
    covered = (low[ran, final] <= rate) & (rate <= high[ran, final])
    return float(ran.mean()), float(covered.mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=2000)
    args = parser.parse_args()
    preset = preset_experiment("agentic-misalignment")
    samples = preset.spec.samples
    [agent] = estimate(preset)
    cost = agent.cost_usd or float("nan")
    table = interval_table(samples, 0.95)
    print(f"Preset: {len(preset.conditions)} cells × {samples} samples = {agent.trials} "
          f"trials, estimated ${cost:,.0f} ({agent.model}).\n")
    print("| rate | ±5 pp (default): trials run | saved | covered | "
          "±10 pp: trials run | saved | covered |\n|--:|--:|--:|--:|--:|--:|--:|")
    saved: dict[float, list[float]] = {h: [] for h in HALF_WIDTHS}
    for i, rate in enumerate(RATES):
        cells = []
        for half_width in HALF_WIDTHS:
            ran, covered = simulate(rate, half_width, samples, args.cells, table, seed=i)
            share = 1 - ran / samples
            saved[half_width].append(share)
            cells.append(f"{ran:.0f} of {samples} | {share:.0%} | {covered:.1%}")
        print(f"| {rate:.0%} | " + " | ".join(cells) + " |")
    shares = [f"{np.mean(saved[h]):.0%} (${np.mean(saved[h]) * cost:,.0f})"
              for h in HALF_WIDTHS]
    print(f"| cells spread evenly over the four rates | {shares[0]} saved | | | "
          f"{shares[1]} saved | | |")


if __name__ == "__main__":
    main()
