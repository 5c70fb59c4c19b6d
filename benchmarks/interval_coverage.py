"""Coverage of the report's effect and variant intervals, by simulation (seeded).

Factor effects: three unbalanced strata (20/30, 40/10, 25/25 trials at the level / the
reference), reference rates spread ±4 pp around a base rate, a common difference; the
stratified Miettinen–Nurminen interval covers the difference when the score statistic at it
is within ±1.96. Surface variants: r variants of n trials, each variant's rate drawn on the
logit scale around the base rate with standard deviation tau; the target is the mean rate
over the population of variants; the variant-robust interval (Wilson over the Rao–Scott
design effect, t on r − 1 df) against the plain Wilson interval of the pooled counts.

    python benchmarks/interval_coverage.py [--reps 4000]

Prints two Markdown tables (docs/statistics.md quotes them). Not in the suite: run it alone.
"""

from __future__ import annotations

import argparse

import numpy as np

from amlab.analysis.rates import wilson
from amlab.analysis.strata import score_statistic
from amlab.analysis.variants import design_effect, robust_interval

Z = 1.959964


def effect_coverage(reps: int) -> None:
    n, n_ref = np.array([20, 40, 25]), np.array([30, 10, 25])
    print("| base rate | difference | coverage |\n|--:|--:|--:|")
    for base in (0.05, 0.1, 0.2, 0.35, 0.5, 0.75):
        for delta in (0.0, 0.1, 0.2):
            spread = np.array([-0.04, 0.0, 0.04]) if base > 0.05 else np.zeros(3)
            rng = np.random.default_rng(int(base * 1000 + delta * 100))
            k = rng.binomial(n, base + spread + delta, size=(reps, 3))
            k_ref = rng.binomial(n_ref, base + spread, size=(reps, 3))
            z = score_statistic(k, n, k_ref, n_ref, np.full(reps, delta))
            print(f"| {base:.2f} | {delta:+.1f} | {np.mean(np.abs(z) <= Z):.3f} |")


def variant_coverage(reps: int) -> None:
    print("\n| variants | trials each | base rate | tau (logit) | robust: coverage, mean width "
          "| pooled Wilson: coverage, mean width |\n|--:|--:|--:|--:|--:|--:|")
    rng = np.random.default_rng(11)
    for r in (3, 5):
        for trials in (30, 100):
            for base in (0.05, 0.2, 0.5):
                for tau in (0.0, 0.5, 1.0):
                    centre = np.log(base / (1 - base))
                    target = float(np.mean(1 / (1 + np.exp(
                        -(centre + tau * rng.standard_normal(400_000))))))
                    robust, plain = [], []
                    for _ in range(reps):
                        rates = 1 / (1 + np.exp(-(centre + tau * rng.standard_normal(r))))
                        k = [int(x) for x in rng.binomial(trials, rates)]
                        n = [trials] * r
                        robust.append(robust_interval(k, n, design_effect(k, n)))
                        plain.append(wilson(sum(k), sum(n)))
                    cells = []
                    for intervals in (robust, plain):
                        low, high = np.array(intervals).T
                        cells.append(f"{np.mean((low <= target) & (target <= high)):.3f}, "
                                     f"{np.mean(high - low) * 100:.1f} pp")
                    print(f"| {r} | {trials} | {base:.2f} | {tau:.1f} | {cells[0]} | "
                          f"{cells[1]} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=4000)
    reps = parser.parse_args().reps
    effect_coverage(reps)
    variant_coverage(reps)


if __name__ == "__main__":
    main()
