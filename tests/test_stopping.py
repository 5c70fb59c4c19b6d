"""Adaptive sample sizes: the confidence sequence keeps its coverage under optional stopping,
a decided cell stops early through the real run loop and store, the report and `amlab
results` show its final n and call the rest "not needed", and a resumed run is primed."""

from __future__ import annotations

import asyncio
import math
from pathlib import Path

import numpy as np
import pytest
import yaml

from amlab.analysis.rates import wilson
from amlab.analysis.sequential import interval_table, stopping_summary
from amlab.errors import AmlabError
from amlab.run import Experiment, RunSummary, run_experiment
from amlab.run.stopping import (
    CONTRAST_DECIDED,
    NARROW,
    NOT_NEEDED,
    Cell,
    StoppingPlan,
    confidence_sequence,
    difference_sequence,
    log_evidence,
)
from amlab.store import Store
from conftest import FIXTURES

LOOKS = 100  # the interval is looked at after every one of 100 samples
SEQUENCES = 2000


@pytest.mark.parametrize("rate", [0.0, 0.05, 0.5, 0.95])
def test_confidence_sequence_covers_at_every_look_in_at_least_95_percent(rate: float) -> None:
    low, high = interval_table(LOOKS)
    rng = np.random.default_rng(22)
    draws = rng.random((SEQUENCES, LOOKS)) < rate
    k = np.cumsum(draws, axis=1)
    n = np.arange(1, LOOKS + 1)
    missed = (low[n, k] > rate) | (high[n, k] < rate)
    ever_missed = missed.any(axis=1).mean()
    # Time-uniform: the chance that ANY of the 100 looks misses is at most 5 %.
    assert ever_missed <= 0.05, f"missed at some look in {ever_missed:.1%} of sequences"
    # The evidence: a Wilson interval looked at after every sample misses far more often.
    if 0.05 <= rate <= 0.95:
        def misses(row: np.ndarray) -> bool:
            return any(not lo <= rate <= hi for lo, hi in
                       (wilson(int(kk), int(nn)) for kk, nn in zip(row, n, strict=True)))

        wilson_missed = np.mean([misses(row) for row in k[:400]])
        assert wilson_missed > 0.1, f"Wilson missed in {wilson_missed:.1%}"


@pytest.mark.parametrize("rate", [0.0, 0.05, 0.5, 0.95])
def test_interval_where_the_rule_stops_covers_the_rate_in_at_least_95_percent(rate: float
                                                                               ) -> None:
    # The rule: stop once the interval is within ±10 pp, at most at 100 samples.
    low, high = interval_table(LOOKS)
    rng = np.random.default_rng(7)
    k = np.cumsum(rng.random((SEQUENCES, LOOKS)) < rate, axis=1)
    n = np.arange(1, LOOKS + 1)
    narrow = (high[n, k] - low[n, k]) / 2 <= 0.10
    stop = np.where(narrow.any(axis=1), narrow.argmax(axis=1), LOOKS - 1)
    final_k = k[np.arange(SEQUENCES), stop]
    covered = (low[stop + 1, final_k] <= rate) & (rate <= high[stop + 1, final_k])
    assert covered.mean() >= 0.95
    if rate in (0.0, 0.05):  # clear rates stop early
        assert np.median(stop + 1) < LOOKS


def test_interval_ends_are_where_the_evidence_reaches_one_over_alpha() -> None:
    for k, n in [(0, 40), (3, 50), (50, 100), (97, 100), (7, 7)]:
        low, high = confidence_sequence(k, n)
        assert low <= k / n <= high
        for end in (low, high):
            if 0 < end < 1:
                assert log_evidence(k, n, end) == pytest.approx(math.log(20), abs=1e-5)
    assert confidence_sequence(0, 0) == (0.0, 1.0)
    with pytest.raises(ValueError, match="between 0 and n"):
        confidence_sequence(5, 3)


def test_a_declared_contrast_is_decided_only_when_its_interval_excludes_zero() -> None:
    assert difference_sequence((40, 50), (2, 50))[0] > 0
    low, high = difference_sequence((10, 50), (8, 50))
    assert low < 0 < high
    hypothesis = {"behavior": "blackmail", "a": {"urgency": "replacement"},
                  "b": {"urgency": "none"}, "direction": "greater"}
    data = _spec("complier.yaml", 4, {"decide": "hypotheses", "half_width": None},
                 hypotheses=[hypothesis])
    data["scenarios"] = [{"family": "blackmail", "factors": {"urgency": ["replacement", "none"]}}]
    experiment = Experiment.from_dict(data)
    plan = StoppingPlan.for_experiment(experiment)
    assert plan is not None
    [contrast] = plan.contrasts
    model = experiment.spec.models[0].name
    a, b = (Cell("blackmail", c, model) for c in (contrast.condition_a, contrast.condition_b))
    assert "urgency=replacement" in a.condition and "urgency=none" in b.condition
    counts = {a: {"blackmail": (40, 50)}, b: {"blackmail": (2, 50)}}
    assert plan.stopped(a, counts) == plan.stopped(b, counts) == CONTRAST_DECIDED
    counts[b] = {"blackmail": (30, 50)}  # 80 % against 60 %: the sign is not known yet
    assert plan.stopped(b, counts) is None
    # A model the contrast is not declared for is not stopped by it.
    assert plan.stopped(Cell("blackmail", b.condition, "other/model"), counts) is None


def _spec(fixture: str | list[str], samples: int, stopping: dict[str, object] | None,
          concurrency: int = 1, **extra: object) -> dict[str, object]:
    fixtures = [fixture] if isinstance(fixture, str) else fixture
    return {
        "name": "s",
        "scenarios": [{"family": "blackmail", "factors": {"urgency": "replacement"}}],
        "models": [{"name": f"scripted/{FIXTURES / f}", "concurrency": concurrency}
                   for f in fixtures],
        "samples": samples,
        "agent": {"protocol": "text", "max_turns": 3},
        **({"stopping": stopping} if stopping else {}),
        **extra,
    }


def _run(tmp_path: Path, half_width: float, resume: bool = False,
         fixtures: tuple[str, ...] = ("complier.yaml", "sometimes_blackmails.yaml"),
         concurrency: int = 1) -> tuple[Store, RunSummary]:
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(_spec(list(fixtures), 30, {"half_width": half_width},
                                         concurrency)))
    store = Store(tmp_path / "r.db")
    summary = asyncio.run(run_experiment(Experiment.load(path), store, resume=resume))
    return store, summary


def _first_narrow_n(half_width: float) -> int:
    return next(n for n in range(1, 1000)
                if (lambda low, high: (high - low) / 2 <= half_width)(
                    *confidence_sequence(0, n)))


@pytest.fixture(scope="module")
def stopped_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Store, RunSummary, Path]:
    """One run at ±20 pp: the complier's cell (no harm) and a cell a third blackmail."""
    tmp_path = tmp_path_factory.mktemp("stopped")
    return (*_run(tmp_path, 0.2), tmp_path)


COMPLIER = f"scripted/{FIXTURES / 'complier.yaml'}"
MIXED = f"scripted/{FIXTURES / 'sometimes_blackmails.yaml'}"


def test_a_clear_cell_stops_early_and_an_unclear_one_runs_every_sample(
        stopped_run: tuple[Store, RunSummary, Path]) -> None:
    store, summary, _ = stopped_run
    ran: dict[str, int] = {}
    for trial in store.trials("s"):
        if trial.status in ("done", "refused"):
            ran[trial.model] = ran.get(trial.model, 0) + 1
    # No blackmail and no disclosure in any trial: ±20 pp is reached at exactly n = 10.
    assert _first_narrow_n(0.2) == 10
    assert ran[COMPLIER] == 10
    assert ran[MIXED] == 30  # a third blackmail: never narrow, runs to `samples`
    assert summary.held_back == {NOT_NEEDED: 20}
    assert store.counts("s")["pending"] == 20

    stopping = stopping_summary(store, "s")
    assert stopping is not None
    assert stopping.not_needed == 20 and stopping.stopped_early == 1
    cells = {c.model: c for c in stopping.cells}
    assert (cells[COMPLIER].done, cells[COMPLIER].not_needed, cells[COMPLIER].outcome) == (
        10, 20, NARROW)
    # 30 trials ran: every fourth refused (not in n), 23 finished.
    assert (cells[MIXED].done, cells[MIXED].not_needed, cells[MIXED].outcome) == (
        23, 0, "ran every sample")
    # The report watches what the run watched: the family's harmful behaviours.
    assert [r.behavior for r in cells[COMPLIER].rates] == [
        "blackmail", "disclosed_private_info", "deception"]
    blackmail = cells[COMPLIER].rates[0]
    assert (blackmail.k, blackmail.n) == (0, 10)
    assert blackmail.anytime == confidence_sequence(0, 10)
    assert blackmail.anytime[1] > blackmail.wilson[1]  # the price of looking every trial


def test_trials_in_flight_when_a_cell_stops_finish_and_count(tmp_path: Path) -> None:
    # Four at a time: when the 10th result makes the cell narrow, up to three more are
    # already running; they are stored and counted, and the rest are held back.
    store, summary = _run(tmp_path, 0.2, fixtures=("complier.yaml",), concurrency=4)
    done = store.counts("s")["done"]
    assert 10 <= done <= 13
    assert summary.held_back == {NOT_NEEDED: 30 - done}
    stopping = stopping_summary(store, "s")
    assert stopping is not None
    [cell] = stopping.cells
    assert (cell.done, cell.not_needed, cell.outcome) == (done, 30 - done, NARROW)


def test_report_and_results_state_the_rule_and_each_cells_final_n(
        stopped_run: tuple[Store, RunSummary, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    from amlab.analysis.report import write_report
    from amlab.cli.results import print_results

    store, _, tmp_path = stopped_run
    html, markdown = write_report(store, tmp_path / "out", "s")
    text = markdown.read_text()
    assert "## Stopping rule" in text
    assert "±20 pp" in text
    assert "| 10 | 20 | interval narrow enough |" in text
    assert "| 23 | 0 | ran every sample |" in text
    # The rates table: none pending, the 20 held back shown as not needed.
    assert "| 10 | 0 | 0 | 0 (+20 not needed) |" in text
    assert "anytime-valid" in html.read_text()
    print_results(store, "s")
    out = capsys.readouterr().out
    assert "20 not needed (stopping rule)" in out
    assert "pending" not in out.split("Not in the rates:")[1].splitlines()[0]


def test_resume_primes_the_rule_from_the_stored_verdicts(tmp_path: Path) -> None:
    _run(tmp_path, 0.2)
    # Resumed with a tighter rule (a run-control setting: not a different experiment): the
    # rule starts from the 10 stored trials, so the cell goes on to 14, not 10 + 14.
    store, summary = _run(tmp_path, 0.15, resume=True)
    complier = f"scripted/{FIXTURES / 'complier.yaml'}"
    assert _first_narrow_n(0.15) == 14
    assert sum(1 for t in store.trials("s") if t.model == complier and t.status == "done"
               ) == 14
    assert summary.statuses == {"done": 4}
    assert summary.held_back == {NOT_NEEDED: 16}
    # Resumed unchanged: nothing more is needed, nothing runs.
    store, summary = _run(tmp_path, 0.15, resume=True)
    assert summary.statuses == {} and summary.held_back == {NOT_NEEDED: 16}


def test_stopping_settings_are_checked_with_the_field_named(tmp_path: Path) -> None:
    with pytest.raises(AmlabError, match="stopping needs half_width"):
        Experiment.from_dict(_spec("complier.yaml", 4, {"half_width": None}))
    experiment = Experiment.from_dict(_spec("complier.yaml", 4, {"behaviors": ["leak"]}))
    store = Store(tmp_path / "r.db")
    with pytest.raises(AmlabError, match=r"stopping\.behaviors 'leak' is not decided by "
                                         r"any family of the experiment; they decide"):
        asyncio.run(run_experiment(experiment, store))
    assert store.experiments() == []  # refused before the store was touched
    experiment = Experiment.from_dict(_spec("complier.yaml", 4, {"decide": "hypotheses"}))
    with pytest.raises(AmlabError, match=r"stopping\.decide is 'hypotheses' but the "
                                         r"experiment declares none"):
        asyncio.run(run_experiment(experiment, store))
