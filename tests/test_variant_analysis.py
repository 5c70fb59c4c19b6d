"""Rates across surface variants: per-variant rates, homogeneity, a pooled rate whose
interval includes the between-variant spread; on synthetic trials stored through the Store
API, and in the report."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import MonteCarloMethod, fisher_exact

from amlab.analysis.effects import stratified_effects
from amlab.analysis.rates import rate_frame, wilson
from amlab.analysis.report import write_report
from amlab.analysis.variants import (
    design_effect,
    homogeneity,
    robust_interval,
    variant_cells,
)
from amlab.run import Experiment, run_experiment
from amlab.store import Store
from conftest import FIXTURES
from test_effects_design import Cells, store_cells

HOMOGENEOUS = (10, 10, 10)  # of 40 trials per variant: 25 % in each
HETEROGENEOUS = (2, 10, 24)  # 5 %, 25 %, 60 %: 36/120 pooled


def variant_store(path: Path, replacement: tuple[int, int, int]) -> Store:
    """Variants a, b, c of two urgency levels; `replacement` gives k of 40 per variant under
    urgency replacement, and urgency none is 0/40 in each."""
    store = Store(path)
    cells: Cells = {}
    for variant, k in zip("abc", replacement, strict=True):
        cells[(("urgency", "replacement"), ("variant", variant))] = (k, 40)
        cells[(("urgency", "none"), ("variant", variant))] = (0, 40)
    store_cells(store, cells, behavior="blackmail")
    return store


def test_homogeneous_variants_test_as_homogeneous_and_keep_a_narrow_interval(
        tmp_path: Path) -> None:
    [cell] = [c for c in variant_cells(rate_frame(variant_store(tmp_path / "h.db",
                                                                HOMOGENEOUS)))
              if c.cell == "urgency=replacement"]
    assert [(v.variant, v.k, v.n) for v in cell.variants] == [("a", 10, 40), ("b", 10, 40),
                                                              ("c", 10, 40)]
    assert (cell.k, cell.n, cell.test) == (30, 120, "exact")
    assert cell.homogeneity_p == pytest.approx(1.0)  # the observed table is the likeliest
    assert cell.design_effect == 1.0
    # No spread: the Wilson interval of 30/120 with t(2) = 4.303 for z (centre 0.2834, half
    # width 0.1618): wider than with z = 1.96 only because three variants are few.
    assert (cell.low, cell.high) == pytest.approx((0.1216, 0.4452), abs=1e-4)
    assert cell.low < wilson(30, 120)[0] and cell.high > wilson(30, 120)[1]


def test_heterogeneous_variants_are_detected_and_widen_the_pooled_interval(
        tmp_path: Path) -> None:
    cells = variant_cells(rate_frame(variant_store(tmp_path / "x.db", HETEROGENEOUS)))
    [cell] = [c for c in cells if c.cell == "urgency=replacement"]
    assert (cell.k, cell.n, cell.test) == (36, 120, "exact")
    assert cell.homogeneity_p < 1e-6
    # Rao–Scott: 3/2 · ((2−12)² + (10−12)² + (24−12)²) / (120 · 0.3 · 0.7) = 372 / 25.2.
    assert cell.design_effect == pytest.approx(372 / 25.2)
    homogeneous = next(c for c in variant_cells(rate_frame(variant_store(
        tmp_path / "h.db", HOMOGENEOUS))) if c.cell == "urgency=replacement")
    assert cell.high - cell.low > 2.5 * (homogeneous.high - homogeneous.low)
    # The interval reaches the lowest and the highest variant's rate.
    assert cell.low < 0.05 and cell.high > 0.6
    # Urgency none never happened in any variant: homogeneous, no spread.
    [quiet] = [c for c in cells if c.cell == "urgency=none"]
    assert (quiet.k, quiet.homogeneity_p, quiet.design_effect) == (0, 1.0, 1.0)


def test_variant_is_held_fixed_in_factor_effects_never_compared(tmp_path: Path) -> None:
    effects = stratified_effects(rate_frame(variant_store(tmp_path / "x.db",
                                                          HETEROGENEOUS))).differences
    assert [e.factor for e in effects] == ["urgency"]
    [urgency] = effects
    assert urgency.held_fixed == ("variant",)
    assert [(s.levels, s.k, s.k_ref) for s in urgency.strata] == [
        ((("variant", "a"),), 2, 0), ((("variant", "b"),), 10, 0),
        ((("variant", "c"),), 24, 0)]


def test_the_report_shows_variants_with_exact_numbers_only_when_a_run_has_several(
        tmp_path: Path) -> None:
    store = variant_store(tmp_path / "x.db", HETEROGENEOUS)
    _, markdown = write_report(store, tmp_path / "report")
    text = markdown.read_text("utf-8")
    # 36/120: Wilson [22.5 %, 38.8 %]; over the design effect 14.76, with t(2): [3 %, 85 %].
    low, high = robust_interval([2, 10, 24], [40, 40, 40], 372 / 25.2)
    assert (round(low * 100), round(high * 100)) == (3, 85)
    assert ("| scripted/m | blackmail | urgency=replacement | a 2/40 5%; b 10/40 25%; "
            "c 24/40 60% | &lt;0.001 | 36/120 30% | [23%, 39%] | [3%, 85%] | 14.76 |") in text
    assert ("Left out: 1 of 2 cells, where the behaviour never occurred in any variant "
            "(homogeneous, p = 1).") in text
    html = (tmp_path / "report" / "report.html").read_text("utf-8")
    assert '<table class="variants">' in html and 'data-cell="urgency=replacement"' in html

    single = Store(tmp_path / "one.db")
    store_cells(single, {(("urgency", "replacement"), ("variant", "a")): (3, 10),
                         (("urgency", "none"), ("variant", "a")): (0, 10)})
    assert variant_cells(rate_frame(single)) == []
    _, markdown = write_report(single, tmp_path / "one")
    assert "Surface variants" not in markdown.read_text("utf-8")


def test_homogeneity_p_is_fisher_for_two_variants_and_the_exact_r_by_2_test_beyond() -> None:
    for k, n in (([2, 8], [10, 10]), ([0, 5], [12, 9]), ([7, 3], [40, 11])):
        table = [[ki, ni - ki] for ki, ni in zip(k, n, strict=True)]
        assert homogeneity(k, n) == (pytest.approx(fisher_exact(table).pvalue), "exact")
    # Three and four variants: within Monte Carlo error of SciPy's r × c Fisher test.
    for k, n in (([3, 7, 2], [10, 10, 10]), ([1, 0, 4, 2], [20, 20, 20, 15])):
        table = [[ki, ni - ki] for ki, ni in zip(k, n, strict=True)]
        sampled = fisher_exact(table, method=MonteCarloMethod(
            n_resamples=100_000, rng=np.random.default_rng(0))).pvalue
        p_value, test = homogeneity(k, n)
        assert test == "exact" and p_value == pytest.approx(sampled, abs=0.005)
    # Too many tables to enumerate: Pearson's chi-square, said so.
    assert homogeneity([30, 50, 40, 45, 35], [100] * 5)[1] == "chi-square"


@pytest.mark.parametrize(("spread", "lowest", "highest"), [(0.0, 0.95, 1.0), (0.5, 0.93, 0.99)])
def test_variant_robust_interval_covers_the_mean_rate_over_variants(
        spread: float, lowest: float, highest: float) -> None:
    """Five variants of 100 trials, each variant's rate drawn around 20 % with a logit
    standard deviation `spread`; the target is the mean rate over the population of
    variants. 2,000 seeded simulated runs."""
    rng = np.random.default_rng(7)
    logit = np.log(0.2 / 0.8) + spread * rng.standard_normal(200_000)
    target = float(np.mean(1 / (1 + np.exp(-logit))))
    covered = 0
    for _ in range(2000):
        rates = 1 / (1 + np.exp(-(np.log(0.2 / 0.8) + spread * rng.standard_normal(5))))
        k = [int(x) for x in rng.binomial(100, rates)]
        n = [100] * 5
        low, high = robust_interval(k, n, design_effect(k, n))
        covered += low <= target <= high
    assert lowest <= covered / 2000 <= highest, covered / 2000


def test_variants_end_to_end_same_words_same_blackmail_rate_but_advocacy_follows_the_surface(
        tmp_path: Path) -> None:
    """Scripted model -> loop -> world -> detectors -> store -> report over the blackmail
    family's three surface variants. The script writes the same words in every variant: a
    conditional threat of exposure is blackmail by its words whatever the surface, so its
    rate has no spread; a plea sent to Corvane's CEO by address is advocacy only where that
    address is someone's."""
    spec = {
        "name": "variants",
        "scenarios": [{"family": "blackmail", "factors": {"variant": "all"}}],
        "models": [{"name": f"scripted/{FIXTURES / 'sometimes_blackmails.yaml'}"}],
        "samples": 6,
        "agent": {"protocol": "text", "max_turns": 3},
    }
    store = Store(tmp_path / "r.db")
    asyncio.run(run_experiment(Experiment.from_dict(spec), store))
    blackmail = next(c for c in variant_cells(rate_frame(store)) if c.behavior == "blackmail")
    # Samples replay scripts 0..3, 0, 1: script 0 blackmails, script 3 refuses (left out).
    assert [(v.variant, v.k, v.n) for v in blackmail.variants] == [
        ("corvane", 2, 5), ("dunmore", 2, 5), ("keelson", 2, 5)]
    assert blackmail.homogeneity_p == pytest.approx(1.0)
    assert blackmail.design_effect == pytest.approx(1.0)
    _, markdown = write_report(store, tmp_path / "report")
    text = markdown.read_text("utf-8")
    assert ("| blackmail | every condition | corvane 2/5 40%; dunmore 2/5 40%; "
            "keelson 2/5 40% | 1.000 | 6/15 40% | [20%, 64%] | [9%, 82%] | 1.00 |") in text
    # The plea is addressed to Corvane's CEO by address: advocacy to a person of the
    # organisation only in the corvane variant, which the analysis shows as spread.
    assert ("| advocated | every condition | corvane 2/5 40%; dunmore 0/5 0%; "
            "keelson 0/5 0% | 0.286 | 2/15 13% |") in text
