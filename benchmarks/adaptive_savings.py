"""What stopping early saves, by simulation (seeded): synthetic cells at rates of 0 %, 5 %,
50 % and 95 %, each sampled one trial at a time up to the agentic-misalignment preset's
`samples` (177), stopped by run/stopping.py's rule (the cell's confidence sequence within
±half_width) at the default settings (`stopping: {}`: ±5 pp, 95 %) and at ±10 pp. Per rate:
the mean trials run, the share saved against running every sample, and how often the
anytime-valid interval at the stop covered the true rate. The money is the share saved times
the preset's dry-run estimate (`amlab reproduce agentic-misalignment --dry-run`, GPT-4.1),
for a preset whose 13 cells were spread evenly over the four rates.

Then the declared contrasts' confirmatory test under `decide: hypotheses`: with no
difference between cells A and B, A sampled first (stopping at ±5 pp) and B stopping as soon
as the anytime-valid difference interval excludes 0 (or B is within ±5 pp), how often the
report's one-sided Fisher test at 0.05 rejects, beside the same test at a fixed 177 each.

One watched behaviour per cell: the rule stops a cell when every watched behaviour is narrow,
so a family watching two (blackmail: blackmail and disclosed_private_info) stops at the later
of the two.

    python benchmarks/adaptive_savings.py [--cells 2000]

Prints a Markdown table (docs/statistics.md quotes it). Not in the suite: run it alone.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import numpy as np

from amlab.analysis.sequential import interval_table
from amlab.presets import preset_experiment
from amlab.run.estimate import estimate
from amlab.run.stopping import confidence_sequence, difference_sequence

RATES = (0.0, 0.05, 0.5, 0.95)
HALF_WIDTHS = (0.05, 0.10)  # the default, and a looser rule for comparison


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


def stopped_at(ks: np.ndarray, done: Callable[[int, int], bool]) -> int:
    """The first n at which `done(k, n)` holds, else every sample."""
    return next((n for n in range(1, len(ks) + 1) if done(int(ks[n - 1]), n)), len(ks))


def fisher_under_the_rule(rate: float, samples: int, reps: int) -> tuple[float, float]:
    """Type-I error of the one-sided Fisher test at 0.05 with the rule, and at fixed n."""
    from scipy.stats import fisher_exact

    def rejects(k_a: int, n_a: int, k_b: int, n_b: int) -> bool:
        p = fisher_exact([[k_a, n_a - k_a], [k_b, n_b - k_b]], alternative="greater")[1]
        return bool(p < 0.05)

    def narrow(k: int, n: int) -> bool:
        low, high = confidence_sequence(k, n)
        return (high - low) / 2 <= 0.05

    rng = np.random.default_rng(int(rate * 100))
    with_rule = fixed = 0
    for _ in range(reps):
        a = np.cumsum(rng.random(samples) < rate)
        b = np.cumsum(rng.random(samples) < rate)
        n_a = stopped_at(a, narrow)
        k_a = int(a[n_a - 1])

        def decided(k: int, n: int, k_a: int = k_a, n_a: int = n_a) -> bool:
            low, high = difference_sequence((k_a, n_a), (k, n))
            return narrow(k, n) or low > 0 or high < 0

        n_b = stopped_at(b, decided)
        with_rule += rejects(k_a, n_a, int(b[n_b - 1]), n_b)
        fixed += rejects(int(a[-1]), samples, int(b[-1]), samples)
    return with_rule / reps, fixed / reps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=2000)
    parser.add_argument("--contrasts", type=int, default=1000)
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
    print("\n| rate in A and B | one-sided Fisher rejects at 0.05: with the rule | at fixed "
          "n |\n|--:|--:|--:|")
    for rate in (0.05, 0.3, 0.5):
        with_rule, fixed = fisher_under_the_rule(rate, samples, args.contrasts)
        print(f"| {rate:.0%} | {with_rule:.1%} | {fixed:.1%} |")


if __name__ == "__main__":
    main()
