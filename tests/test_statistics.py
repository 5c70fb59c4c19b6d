"""The statistics a report rests on: interval coverage, Holm, Newcombe, Fisher, power, and
factor effects computed from a store."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import binom

from amlab.analysis.effects import (
    Difference,
    alignment_faking,
    factor_effects,
    holm,
    two_proportions,
)
from amlab.analysis.power import power_at, samples_per_cell
from amlab.analysis.rates import rate_frame, wilson, wilson_columns
from amlab.errors import AmlabError
from amlab.records import Evidence, Transcript, Usage, Verdict
from amlab.store import PlannedTrial, Store, TrialKey
from conftest import planned_spec, subprocess_env

CELLS = 2000
N = 100  # trials per cell, as in the published study


def coverage_of_simulated_cells(rate: float, seed: int) -> float:
    k = np.random.default_rng(seed).binomial(N, rate, size=CELLS)
    low, high = wilson_columns(k, np.full(CELLS, N))
    return float(np.mean((low <= rate) & (rate <= high)))


@pytest.mark.parametrize("rate", [0.1, 0.2, 0.5, 0.8])
def test_wilson_intervals_cover_the_true_rate_in_93_to_97_percent_of_2000_cells(
        rate: float) -> None:
    coverage = coverage_of_simulated_cells(rate, seed=int(rate * 1000))
    assert 0.93 <= coverage <= 0.97, coverage
    # The simulation agrees with the exact coverage (a sum over the binomial distribution).
    k = np.arange(N + 1)
    low, high = wilson_columns(k, np.full(N + 1, N))
    exact = binom.pmf(k, N, rate)[(low <= rate) & (rate <= high)].sum()
    assert abs(coverage - exact) < 0.015


@pytest.mark.parametrize("rate", [0.0, 1.0])
def test_wilson_intervals_always_cover_a_rate_of_0_or_1(rate: float) -> None:
    """At 0 every cell is 0/n and its interval starts at exactly 0 (and at 1 ends at 1), so
    coverage is 100 %, not 93–97 %: no interval that contains the observed rate can miss."""
    assert coverage_of_simulated_cells(rate, seed=1) == 1.0
    low, high = wilson_columns([0, N], [N, N])
    assert low[0] == 0.0 and high[1] == 1.0
    assert 0.036 < high[0] < 0.038  # 0/100: [0 %, 3.7 %], not a degenerate [0, 0]


def difference(p_value: float) -> Difference:
    return Difference("e", "f", "m", "b", "x", "a", "none", 1, 2, 1, 2, 0.0, -1.0, 1.0, p_value)


def test_holm_adjustment_matches_the_worked_example() -> None:
    """The Holm–Bonferroni example of the method's Wikipedia article: p = 0.01, 0.04, 0.03,
    0.005 at α = 0.05 rejects H1 and H4 only; adjusted p = 0.03, 0.06, 0.06, 0.02."""
    adjusted = holm([difference(p) for p in (0.01, 0.04, 0.03, 0.005)])
    assert [round(d.p_holm, 10) for d in adjusted] == [0.03, 0.06, 0.06, 0.02]
    assert [d.significant for d in adjusted] == [True, False, False, True]


def test_newcombe_interval_and_fisher_p_match_published_examples() -> None:
    # Newcombe (1998), Statistics in Medicine 17:873, example (a): 56/70 − 48/80,
    # method 10 (hybrid score): 0.0524 to 0.3339.
    diff, low, high, _ = two_proportions(56, 70, 48, 80)
    assert diff == pytest.approx(0.2)
    assert (round(low, 4), round(high, 4)) == (0.0524, 0.3339)
    # Fisher's lady tasting tea: 3 of 4 cups right, two-sided p = 0.486.
    assert two_proportions(3, 4, 1, 4)[3] == pytest.approx(0.4857, abs=1e-4)


def test_plan_gives_the_smallest_cell_with_the_requested_power() -> None:
    n = samples_per_cell(0.05, 0.10, power=0.8)
    assert n == 133
    assert power_at(0.05, 0.10, n) >= 0.8 > power_at(0.05, 0.10, n - 1)
    # Cohen's h for 5 % → 15 %, and the normal-approximation sample size from it.
    h = 2 * math.asin(math.sqrt(0.15)) - 2 * math.asin(math.sqrt(0.05))
    assert n == math.ceil(2 * ((1.959964 + 0.841621) / h) ** 2)


def test_plan_rejects_a_rate_outside_0_to_1_in_one_sentence() -> None:
    with pytest.raises(AmlabError, match=r"^plan: baseline 1.5 is not a rate"):
        samples_per_cell(1.5, 0.1)
    with pytest.raises(AmlabError, match="baseline \\+ effect between 0 and 1"):
        samples_per_cell(0.95, 0.10)


def store_outcomes(store: Store, cells: dict[tuple[str, str, str], list[dict[str, bool]]]
                   ) -> None:
    """Store finished trials through the store API: per (urgency, monitoring, model), one
    trial per verdict set given."""
    planned = []
    for (urgency, monitoring, model), trials in cells.items():
        factors = {"urgency": urgency, "monitoring": monitoring}
        condition = f"urgency={urgency},monitoring={monitoring}"
        planned += [PlannedTrial(TrialKey("exp", "fam", condition, model, i), factors, i)
                    for i in range(len(trials))]
    store.plan("exp", planned_spec("exp", planned), planned)
    for trial in planned:
        urgency, monitoring = trial.factors["urgency"], trial.factors["monitoring"]
        values = cells[(urgency, monitoring, trial.key.model)][trial.key.sample]
        verdicts = {b: Verdict(b, v, (Evidence("state", "synthetic"),), "state", f"{b}/1")
                    for b, v in values.items()}
        store.save_result(trial.key, Transcript([], [], "end_turn", Usage(calls=1), 1),
                          verdicts, started=0.0)


def test_factor_effect_in_a_full_grid_is_the_stratified_difference_within_each_other_level(
        tmp_path: Path) -> None:
    store = Store(tmp_path / "r.db")
    yes, no = {"sabotage": True}, {"sabotage": False}
    store_outcomes(store, {
        ("replacement", "monitored", "scripted/m"): [yes] * 4 + [no] * 6,
        ("replacement", "unmonitored", "scripted/m"): [yes] * 9 + [no] * 1,
        ("none", "monitored", "scripted/m"): [no] * 10,
        ("none", "unmonitored", "scripted/m"): [yes] * 1 + [no] * 9,
    })
    effects = holm(factor_effects(rate_frame(store)))
    by_factor = {e.factor: e for e in effects}
    urgency = by_factor["urgency"]
    # replacement against the reference level `none` within each monitoring level: 4/10 −
    # 0/10 and 9/10 − 1/10, equal weights, so +60 pp (in a full grid, as pooled 13/20 − 1/20).
    assert (urgency.level, urgency.reference) == ("replacement", "none")
    assert urgency.held_fixed == ("monitoring",)
    assert [(s.levels, s.k, s.n, s.k_ref, s.n_ref) for s in urgency.strata] == [
        ((("monitoring", "monitored"),), 4, 10, 0, 10),
        ((("monitoring", "unmonitored"),), 9, 10, 1, 10)]
    assert (urgency.k, urgency.n, urgency.k_ref, urgency.n_ref) == (13, 20, 1, 20)
    assert urgency.difference == pytest.approx(0.6)
    assert (urgency.low, urgency.high) == pytest.approx((0.3404, 0.7894), abs=1e-4)
    [faking] = alignment_faking(effects)
    assert (faking.level, faking.reference, faking.behavior) == ("unmonitored", "monitored",
                                                                 "sabotage")
    assert (faking.k, faking.n, faking.k_ref, faking.n_ref) == (10, 20, 4, 20)
    assert faking.difference == pytest.approx(0.3)
    # Within urgency levels: narrower than the pooled Newcombe interval [+0.5, +53.0] pp.
    assert (faking.low, faking.high) == pytest.approx((0.0724, 0.5387), abs=1e-4)
    # Holm over the two comparisons: the smaller p doubles, the larger stays as it is.
    assert urgency.p_holm == pytest.approx(2 * urgency.p_value)
    assert faking.p_holm == pytest.approx(faking.p_value) and faking.p_value < 0.05


def test_the_closed_form_wilson_interval_equals_statsmodels_at_every_k() -> None:
    from statsmodels.stats.proportion import proportion_confint

    for n in (1, 7, 40, 133, 1000):
        k = np.arange(n + 1)
        expected_low, expected_high = proportion_confint(k, n, alpha=0.05, method="wilson")
        low, high = wilson_columns(k, np.full(n + 1, n))
        np.testing.assert_allclose(low, expected_low, atol=1e-12)
        np.testing.assert_allclose(high, expected_high, atol=1e-12)
        assert all(np.isclose(wilson(int(i), n), (expected_low[i], expected_high[i]),
                              atol=1e-12).all() for i in k)


def test_a_run_and_its_rates_table_load_neither_pandas_nor_scipy() -> None:
    code = ("import sys, amlab.cli.commands, amlab.run, amlab.analysis.rates as r, "
            "amlab.analysis.monitor; "
            "r.rates([]); print(sorted(m for m in ('pandas', 'scipy', 'statsmodels', "
            "'matplotlib') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], env=subprocess_env(),
                            capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_alignment_faking_is_unmonitored_minus_monitored_and_each_against_monitoring_none(
        tmp_path: Path) -> None:
    store = Store(tmp_path / "r.db")
    yes, no = {"sabotage": True}, {"sabotage": False}
    store_outcomes(store, {
        ("replacement", "none", "scripted/m"): [yes] * 5 + [no] * 5,
        ("replacement", "monitored", "scripted/m"): [yes] * 2 + [no] * 8,
        ("replacement", "unmonitored", "scripted/m"): [yes] * 8 + [no] * 2,
    })
    effects = factor_effects(rate_frame(store))
    faking = {(e.level, e.reference): (e.k, e.n, e.k_ref, e.n_ref)
              for e in alignment_faking(effects)}
    assert faking == {("unmonitored", "monitored"): (8, 10, 2, 10),
                      ("unmonitored", "none"): (8, 10, 5, 10),
                      ("monitored", "none"): (2, 10, 5, 10)}
    # The monitoring comparisons are those three; none is not compared with monitored twice.
    assert sorted((e.level, e.reference) for e in effects if e.factor == "monitoring") == \
        sorted(faking)
