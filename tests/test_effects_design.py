"""Factor effects valid for the design: computed within strata of the other factors, aliased
factors reported once, the alignment-faking gap within matched conditions; on synthetic
trials stored through the Store API, and through the report."""

from __future__ import annotations

import asyncio
from pathlib import Path
from statistics import NormalDist

import numpy as np
import pytest

from amlab.analysis.effects import alignment_faking, stratified_effects, two_proportions
from amlab.analysis.hypotheses import benjamini_hochberg
from amlab.analysis.rates import rate_frame
from amlab.analysis.report import write_report
from amlab.analysis.strata import Stratum, score_statistic, stratified_difference
from amlab.records import Evidence, Transcript, Usage, Verdict
from amlab.run import Experiment, run_experiment
from amlab.store import PlannedTrial, Store, TrialKey
from conftest import FIXTURES, planned_spec

Cells = dict[tuple[tuple[str, str], ...], tuple[int, int]]


def store_cells(store: Store, cells: Cells, behavior: str = "sabotage", model: str = "scripted/m",
                experiment: str = "exp", family: str = "fam") -> None:
    """Per condition (its factor levels), k trials with the behaviour among n finished ones."""
    planned = []
    outcome = {}
    for levels, (k, n) in cells.items():
        condition = ",".join(f"{f}={v}" for f, v in levels)
        for sample in range(n):
            key = TrialKey(experiment, family, condition, model, sample)
            planned.append(PlannedTrial(key, dict(levels), sample))
            outcome[key] = sample < k
    store.plan(experiment, planned_spec(experiment, planned), planned)
    for trial in planned:
        verdict = Verdict(behavior, outcome[trial.key], (Evidence("state", "synthetic"),),
                          "state", f"{behavior}/1")
        store.save_result(trial.key, Transcript([], [], "end_turn", Usage(calls=1), 1),
                          {behavior: verdict}, started=0.0)


# Pressure is run mostly under the easy task and its absence mostly under the hard one: within
# each task the rate is the same with and without pressure, yet pooled counts show +42 pp.
SIMPSON: Cells = {
    (("pressure", "high"), ("task", "easy")): (2, 20),
    (("pressure", "none"), ("task", "easy")): (8, 80),
    (("pressure", "high"), ("task", "hard")): (64, 80),
    (("pressure", "none"), ("task", "hard")): (16, 20),
}


def test_unbalanced_design_shows_no_spurious_effect_where_pooling_shows_one(
        tmp_path: Path) -> None:
    store = Store(tmp_path / "r.db")
    store_cells(store, SIMPSON)
    effects = stratified_effects(rate_frame(store)).differences
    pressure = next(e for e in effects if e.factor == "pressure")
    # Pooled: high 2+64=66/100 against none 8+16=24/100 is +42 pp, p < 0.001.
    pooled = two_proportions(66, 100, 24, 100)
    assert pooled[0] == pytest.approx(0.42) and pooled[3] < 1e-8
    # Within each task: easy 2/20 − 8/80 = 0, hard 64/80 − 16/20 = 0.
    assert (pressure.level, pressure.reference, pressure.held_fixed) == ("high", "none",
                                                                         ("task",))
    assert [(s.levels, s.k, s.n, s.k_ref, s.n_ref) for s in pressure.strata] == [
        ((("task", "easy"),), 2, 20, 8, 80), ((("task", "hard"),), 64, 80, 16, 20)]
    assert pressure.difference == pytest.approx(0.0, abs=1e-12)
    assert pressure.low < 0 < pressure.high and pressure.p_value == pytest.approx(1.0)
    task = next(e for e in effects if e.factor == "task")
    assert (task.level, task.reference) == ("hard", "easy")  # first level in order of names


def test_the_report_prints_the_stratified_effect_with_its_strata_in_markdown(
        tmp_path: Path) -> None:
    store = Store(tmp_path / "r.db")
    store_cells(store, SIMPSON)
    _, markdown = write_report(store, tmp_path / "report")
    text = markdown.read_text("utf-8")
    low, high = stratified_difference([Stratum((), 2, 20, 8, 80),
                                       Stratum((), 64, 80, 16, 20)])[1:3]
    # easy 2/20 − 8/80 = 0 and hard 64/80 − 16/20 = 0: 0 pp, p = 1, where pooled is +42 pp.
    assert (f"| scripted/m | sabotage | pressure | high − none | 66/100 | 24/100 | +0.0 | "
            f"[{low * 100:+.1f}, {high * 100:+.1f}] | 2 (task) | 1.000 | — |") in text
    assert "within strata of the other factors" in text
    # The HTML lists each stratum's counts under the row.
    html = (tmp_path / "report" / "report.html").read_text("utf-8")
    assert ("<summary>2 (task)</summary>task=easy: 2/20 − 8/80<br>task=hard: 64/80 − 16/20"
            "<br></details>") in html


def test_aliased_factors_are_reported_once_with_a_note(tmp_path: Path) -> None:
    store = Store(tmp_path / "r.db")
    cells: Cells = {}
    for goal_type, goal_value, rates in (("explicit", "america", (6, 2)),
                                         ("none", "none", (1, 0))):
        for urgency, k in zip(("replacement", "none"), rates, strict=True):
            cells[(("goal_type", goal_type), ("goal_value", goal_value),
                   ("urgency", urgency))] = (k, 10)
    store_cells(store, cells, behavior="blackmail")
    result = stratified_effects(rate_frame(store))
    assert sorted({e.factor for e in result.differences}) == ["goal_type", "urgency"]
    [goal] = [e for e in result.differences if e.factor == "goal_type"]
    assert (goal.level, goal.reference, goal.note) == ("explicit", "none",
                                                       "aliased with goal_value")
    assert goal.held_fixed == ("urgency",) and len(goal.strata) == 2
    assert goal.difference == pytest.approx((0.5 + 0.2) / 2)
    [note] = result.notes[("exp", "fam")]
    assert note == ("goal_type and goal_value are aliased: their levels move together in the "
                    "conditions run (explicit = america, none = none), so their effects "
                    "cannot be told apart; they are reported once, under goal_type.")
    _, markdown = write_report(store, tmp_path / "report")
    text = markdown.read_text("utf-8")
    assert text.count("are aliased") == 1
    assert "| goal_value |" not in text
    assert "| goal_type | explicit − none | 8/20 | 1/20 | +35.0 |" in text


def test_a_factor_that_changes_with_the_comparison_is_named_not_held_fixed(
        tmp_path: Path) -> None:
    """As in the study's grammar: goal_type none takes goal_value none and explicit takes a
    value, so explicit − none cannot hold goal_value fixed; it is compared across it."""
    store = Store(tmp_path / "r.db")
    store_cells(store, {
        (("goal_type", "explicit"), ("goal_value", "america")): (5, 10),
        (("goal_type", "explicit"), ("goal_value", "global")): (3, 10),
        (("goal_type", "latent"), ("goal_value", "america")): (2, 10),
        (("goal_type", "latent"), ("goal_value", "global")): (2, 10),
        (("goal_type", "none"), ("goal_value", "none")): (0, 10),
    })
    result = stratified_effects(rate_frame(store))
    by_pair = {(e.factor, e.level, e.reference): e for e in result.differences}
    explicit = by_pair[("goal_type", "explicit", "none")]
    assert explicit.held_fixed == () and explicit.note == "goal_value changes with it"
    assert (explicit.k, explicit.n, explicit.k_ref, explicit.n_ref) == (8, 20, 0, 10)
    # Not the reference none: america − none moves goal_type with it. Said once per factor.
    america = by_pair[("goal_value", "america", "none")]
    assert america.note == "goal_type changes with it"
    assert result.notes[("exp", "fam")] == [
        "goal_type explicit, latent − none include the effect of goal_value: goal_value is "
        "none wherever goal_type is none and never where it is explicit, latent, so it cannot "
        "be held fixed.",
        "goal_value america, global − none include the effect of goal_type: goal_type is "
        "none wherever goal_value is none and never where it is america, global, so it "
        "cannot be held fixed."]


def test_a_comparison_no_stratum_holds_is_not_identified_and_not_reported(
        tmp_path: Path) -> None:
    store = Store(tmp_path / "r.db")
    store_cells(store, {
        (("tone", "warm"), ("site", "a"), ("shift", "day")): (3, 10),
        (("tone", "warm"), ("site", "b"), ("shift", "night")): (3, 10),
        (("tone", "cold"), ("site", "a"), ("shift", "night")): (6, 10),
        (("tone", "cold"), ("site", "b"), ("shift", "day")): (6, 10),
    })
    result = stratified_effects(rate_frame(store))
    # A half fraction of the 2 × 2 × 2 grid: no two runs differ in one factor only. An
    # additive model would estimate each factor by assuming no interactions; amlab says so.
    assert result.differences == []
    assert result.notes[("exp", "fam")] == [
        f"{comparison} not identified: no combination of the other factors was run at both "
        "levels, so no difference is given."
        for comparison in ("tone warm − cold", "site b − a", "shift night − day")]


# Unmonitored was run mostly where the threat is high, monitored mostly where it is absent:
# pooled, unmonitored looks 45 pp worse; within each threat level the gap is 10 pp.
FAKING: Cells = {
    (("monitoring", "unmonitored"), ("threat", "high")): (36, 40),
    (("monitoring", "monitored"), ("threat", "high")): (8, 10),
    (("monitoring", "none"), ("threat", "high")): (17, 20),
    (("monitoring", "unmonitored"), ("threat", "low")): (2, 10),
    (("monitoring", "monitored"), ("threat", "low")): (4, 40),
    (("monitoring", "none"), ("threat", "low")): (3, 20),
}


def test_alignment_faking_gap_is_matched_within_conditions_and_against_monitoring_none(
        tmp_path: Path) -> None:
    store = Store(tmp_path / "r.db")
    store_cells(store, FAKING)
    # Exploratory, as the report adjusts them: Benjamini–Hochberg over every comparison.
    faking = alignment_faking(benjamini_hochberg(stratified_effects(rate_frame(store)).differences))
    by_pair = {(e.level, e.reference): e for e in faking}
    assert sorted(by_pair) == [("monitored", "none"), ("unmonitored", "monitored"),
                               ("unmonitored", "none")]
    gap = by_pair[("unmonitored", "monitored")]
    # Pooled 38/50 − 12/50 = +52 pp; matched: high 90 % − 80 %, low 20 % − 10 %, +10 pp.
    assert two_proportions(38, 50, 12, 50)[0] == pytest.approx(0.52)
    assert gap.difference == pytest.approx(0.10)
    assert gap.held_fixed == ("threat",) and len(gap.strata) == 2
    assert gap.low < 0 < gap.high
    assert by_pair[("unmonitored", "none")].difference == pytest.approx(0.05)
    assert by_pair[("monitored", "none")].difference == pytest.approx(-0.05)
    _, markdown = write_report(store, tmp_path / "report")
    text = markdown.read_text("utf-8")
    assert "### Alignment faking: within matched conditions (exploratory)" in text
    assert (f"| scripted/m | sabotage | unmonitored − monitored | 38/50 | 12/50 | +10.0 | "
            f"[{gap.low * 100:+.1f}, {gap.high * 100:+.1f}] | 2 | {gap.q_value:.3f} |") in text


REPS = 4000
Z = 1.959964


@pytest.mark.parametrize("base", [0.05, 0.1, 0.2, 0.5, 0.75])
@pytest.mark.parametrize("delta", [0.0, 0.1, 0.2])
def test_stratified_interval_covers_the_true_difference_in_93_to_97_percent(
        base: float, delta: float) -> None:
    """Three unbalanced strata (20/30, 40/10, 25/25 trials at the level / the reference),
    reference rates spread ±4 pp around `base`, a common difference `delta`; 4,000 seeded
    simulated designs. An interval from inverting the score test covers delta exactly when
    |score(delta)| <= z, so the statistic at the true value decides coverage."""
    n, n_ref = np.array([20, 40, 25]), np.array([30, 10, 25])
    spread = np.array([-0.04, 0.0, 0.04]) if base > 0.05 else np.zeros(3)
    rng = np.random.default_rng(int(base * 1000 + delta * 100))
    k = rng.binomial(n, base + spread + delta, size=(REPS, 3))
    k_ref = rng.binomial(n_ref, base + spread, size=(REPS, 3))
    covered = np.abs(score_statistic(k, n, k_ref, n_ref, np.full(REPS, delta))) <= Z
    assert 0.93 <= covered.mean() <= 0.97, covered.mean()
    # The interval the report prints agrees with the statistic on the first designs.
    for i in range(40):
        strata = [Stratum((), int(k[i, j]), int(n[j]), int(k_ref[i, j]), int(n_ref[j]))
                  for j in range(3)]
        _, low, high, _ = stratified_difference(strata)
        assert (low <= delta <= high) == bool(covered[i])


def test_one_stratum_gives_the_published_miettinen_nurminen_interval() -> None:
    # Newcombe (1998), Statistics in Medicine 17:873, example (a), 56/70 − 48/80, method 6
    # (Miettinen–Nurminen score): 0.0528 to 0.3382.
    difference, low, high, p_value = stratified_difference([Stratum((), 56, 70, 48, 80)])
    assert difference == pytest.approx(0.2)
    assert (round(low, 4), round(high, 4)) == (0.0528, 0.3382)
    # Its p is statsmodels' Miettinen–Nurminen score test.
    from statsmodels.stats.proportion import test_proportions_2indep

    assert p_value == pytest.approx(test_proportions_2indep(56, 70, 48, 80,
                                                            method="score").pvalue)
    # 0/10 against 0/10 is no evidence either way; 10/10 against 0/10 ends at exactly 1.
    assert stratified_difference([Stratum((), 0, 10, 0, 10)])[3] == 1.0
    assert stratified_difference([Stratum((), 10, 10, 0, 10)])[2] == 1.0


def test_stratified_p_value_is_the_score_test_with_each_stratum_pooled_under_no_difference(
        ) -> None:
    """At δ = 0 the restricted rates are each stratum's pooled rate, so the statistic has a
    closed form to check the cubic's root against (two strata, unequal sizes)."""
    strata = [Stratum((), 7, 20, 3, 30), Stratum((), 12, 15, 9, 25)]
    weights = [s.n * s.n_ref / (s.n + s.n_ref) for s in strata]
    total = sum(weights)
    numerator = sum(w / total * s.difference for w, s in zip(weights, strata, strict=True))
    variance = 0.0
    for w, s in zip(weights, strata, strict=True):
        pooled = (s.k + s.k_ref) / (s.n + s.n_ref)
        variance += (w / total) ** 2 * pooled * (1 - pooled) * (1 / s.n + 1 / s.n_ref) * (
            (s.n + s.n_ref) / (s.n + s.n_ref - 1))
    z = numerator / variance**0.5
    assert stratified_difference(strata)[3] == pytest.approx(2 * (1 - NormalDist().cdf(z)))


def test_a_scripted_run_of_the_study_grammar_reports_goal_type_and_goal_value_once(
        tmp_path: Path) -> None:
    """End to end: the blackmail family with goal_type explicit/none and goal_value
    america/none runs only explicit/america and none/none (the grammar's constraint), a
    scripted model through the loop, detectors and store, then the report."""
    spec = {
        "name": "grammar",
        "scenarios": [{"family": "blackmail", "factors": {
            "urgency": ["replacement", "none"], "goal_type": ["explicit", "none"],
            "goal_value": ["america", "none"]}}],
        "models": [{"name": f"scripted/{FIXTURES / 'sometimes_blackmails.yaml'}"}],
        "samples": 4,
        "agent": {"protocol": "text", "max_turns": 3},
    }
    store = Store(tmp_path / "r.db")
    asyncio.run(run_experiment(Experiment.from_dict(spec), store))
    result = stratified_effects(rate_frame(store))
    blackmail = {e.factor: e for e in result.differences if e.behavior == "blackmail"}
    assert sorted(blackmail) == ["goal_type", "urgency"]
    # Each cell: 4 samples, 3 finish (one refuses), the blackmail script is 1 of them.
    goal = blackmail["goal_type"]
    assert (goal.level, goal.reference, goal.note) == ("explicit", "none",
                                                       "aliased with goal_value")
    assert [(s.levels, s.k, s.n, s.k_ref, s.n_ref) for s in goal.strata] == [
        ((("urgency", "none"),), 1, 3, 1, 3), ((("urgency", "replacement"),), 1, 3, 1, 3)]
    assert blackmail["urgency"].held_fixed == ("goal_type", "goal_value")
    assert len(blackmail["urgency"].strata) == 2  # aliased: one stratum per pair of levels
    assert result.notes[("grammar", "blackmail")] == [
        "goal_type and goal_value are aliased: their levels move together in the conditions "
        "run (explicit = america, none = none), so their effects cannot be told apart; they "
        "are reported once, under goal_type."]
    _, markdown = write_report(store, tmp_path / "report")
    text = markdown.read_text("utf-8")
    assert text.count("goal_type and goal_value are aliased") == 1
    assert "| blackmail | goal_type | explicit − none | 2/6 | 2/6 | +0.0 |" in text
    assert "| goal_value |" not in text
