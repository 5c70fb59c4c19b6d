"""How many trials per cell a comparison of two rates needs.

Two independent proportions, a test at level alpha, effect size Cohen's h
(arcsine-transformed difference) with statsmodels' normal power calculation. Fisher's exact
test, which the report uses, is slightly more conservative than this approximation: treat
the answer as a lower bound.

An experiment that declares m hypotheses tests each at alpha/m (Bonferroni: the level of
the first step of Holm's procedure, which the report applies within the declared family), so
its cells are sized at alpha/m; one-sided when every declared contrast has a direction.
"""

from __future__ import annotations

import math

from amlab.errors import AmlabError


def check_plan(baseline: float, effect: float, power: float, alpha: float = 0.05,
               where: str = "plan") -> None:
    if not 0 <= baseline <= 1:
        raise AmlabError(f"{where}: baseline {baseline} is not a rate; give a number "
                         f"between 0 and 1 (0.05 for 5 %).")
    if effect == 0 or not 0 <= baseline + effect <= 1:
        raise AmlabError(f"{where}: effect {effect} must be a non-zero change that keeps "
                         f"baseline + effect between 0 and 1 (baseline is {baseline}).")
    if not 0 < power < 1:
        raise AmlabError(f"{where}: power {power} must be between 0 and 1, e.g. 0.8.")
    if not 0 < alpha < 1:
        raise AmlabError(f"{where}: alpha {alpha} must be between 0 and 1, e.g. 0.05.")


def samples_per_cell(baseline: float, effect: float, power: float = 0.8,
                     alpha: float = 0.05, where: str = "plan", contrasts: int = 1,
                     one_sided: bool = False) -> int:
    """Trials needed in each of two cells to detect a change from `baseline` to
    `baseline + effect` with the given power, each of `contrasts` tests at alpha/contrasts."""
    check_plan(baseline, effect, power, alpha, where)
    if contrasts < 1:
        raise AmlabError(f"{where}: contrasts {contrasts} must be at least 1 (the number of "
                         f"declared hypotheses).")
    from statsmodels.stats.power import NormalIndPower  # slow import: see analysis.rates.wilson
    from statsmodels.stats.proportion import proportion_effectsize

    h = abs(float(proportion_effectsize(baseline + effect, baseline)))
    n = NormalIndPower().solve_power(effect_size=h, power=power, alpha=alpha / contrasts,
                                     ratio=1.0, alternative=_alternative(one_sided))
    return math.ceil(float(n))


def power_at(baseline: float, effect: float, samples: int, alpha: float = 0.05,
             contrasts: int = 1, one_sided: bool = False) -> float:
    """The power of cells of `samples` trials to detect the change (each of `contrasts`
    tests at alpha/contrasts)."""
    from statsmodels.stats.power import NormalIndPower  # slow import: see analysis.rates.wilson
    from statsmodels.stats.proportion import proportion_effectsize

    h = abs(float(proportion_effectsize(baseline + effect, baseline)))
    return float(NormalIndPower().power(effect_size=h, nobs1=samples, alpha=alpha / contrasts,
                                        ratio=1.0, alternative=_alternative(one_sided)))


def _alternative(one_sided: bool) -> str:
    # Cohen's h is taken as positive, so a one-sided test looks in that direction.
    return "larger" if one_sided else "two-sided"
