"""The budget cap: a scripted model priced in the experiment file (its tokens counted from
its replies) through run_experiment, the store and the CLI: the cap holds at any
concurrency, trials held back stay pending, and `--resume` with a higher budget finishes."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Collection
from pathlib import Path
from typing import Any

import pytest
import yaml

from amlab.errors import AmlabError
from amlab.records import Transcript, Usage
from amlab.run import Experiment, TrialResult, TrialSpec, run_experiment
from amlab.run.budget import HELD_BACK, Budget, plan_budget, with_budget
from amlab.run.estimate import estimate, trial_costs
from amlab.run.experiment import stored_spec
from amlab.run.runner import experiment_rules
from amlab.store import Store
from conftest import FIXTURES, subprocess_env

SLOW = f"scripted/{FIXTURES / 'slow_complier.yaml'}"
FAST = f"scripted/{FIXTURES / 'complier.yaml'}"
BLACKMAILER = f"scripted/{FIXTURES / 'blackmailer'}"
STRICT_JUDGE = f"scripted/{FIXTURES / 'judges' / 'strict'}"
# Dear enough that a trial of a few thousand tokens costs cents to dollars.
PRICE = {"input": 100, "output": 100}


def spec(model: str = FAST, samples: int = 5, concurrency: int = 1,
         budget: float | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "name": "b",
        "scenarios": [{"family": "blackmail", "factors": {"urgency": ["replacement", "none"]}}],
        "models": [{"name": model, "concurrency": concurrency, "price": PRICE}],
        "samples": samples,
        "agent": {"protocol": "text", "max_turns": 2, "max_tokens": 100},
        "retry": {"attempts": 1, "initial_wait": 0, "max_wait": 0},
        **({"budget": {"usd": budget}} if budget is not None else {}),
        **extra,
    }


def run(data: dict[str, Any], db: Path, resume: bool = False, *rules: Any
        ) -> tuple[Store, Any]:
    store = Store(db)
    experiment = Experiment.from_dict(data)
    # Rules given here watch the run beside the file's own (its budget).
    summary = asyncio.run(run_experiment(experiment, store, resume=resume,
                                         rules=[*experiment_rules(experiment, store), *rules]))
    return store, summary


def costs(store: Store) -> dict[str, list[float]]:
    by_status: dict[str, list[float]] = {}
    for trial in store.trial_index("b"):
        by_status.setdefault(trial.status, []).append(trial.cost_usd or 0.0)
    return by_status


class InFlight:
    """A rule that admits every trial and notes the most trials in flight it saw."""

    reason = "never"

    def __init__(self) -> None:
        self.most = 0

    def admits(self, spec: TrialSpec, in_flight: Collection[TrialSpec]) -> bool:
        self.most = max(self.most, len(in_flight))
        return True

    def observe(self, result: TrialResult) -> None:
        return None


def test_the_cap_holds_at_concurrency_three_and_held_back_trials_stay_pending(
        tmp_path: Path) -> None:
    seen = InFlight()
    store, summary = run(spec(SLOW, concurrency=3, budget=2.0), tmp_path / "r.db", False, seen)
    by_status = costs(store)
    assert seen.most == 2  # three trials ran at once
    spent = store.spent_usd("b")
    assert spent == pytest.approx(sum(by_status["done"])) and spent <= 2.0
    # Used to within one trial: the next would have passed the cap.
    assert spent + max(by_status["done"]) > 2.0
    assert summary.held_back == {HELD_BACK: len(by_status["pending"])}
    assert len(by_status["done"]) + len(by_status["pending"]) == 10
    assert summary.statuses == {"done": len(by_status["done"])}


def test_resume_with_the_same_budget_starts_nothing_and_a_higher_budget_finishes(
        tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    store, first = run(spec(budget=1.5), db)
    spent = store.spent_usd("b")
    pending = len(costs(store)["pending"])
    assert first.statuses["done"] >= 1 and pending >= 1
    store, again = run(spec(budget=1.5), db, True)
    assert again.statuses == {} and again.held_back == {HELD_BACK: pending}
    assert store.spent_usd("b") == spent
    # A changed budget is the same experiment: the resumed run is accepted and finishes.
    store, last = run(spec(budget=50.0), db, True)
    assert last.statuses == {"done": pending} and last.held_back == {}
    assert set(costs(store)) == {"done"} and store.spent_usd("b") <= 50.0
    assert store.experiment_spec("b")["budget"] == {"usd": 1.5}  # as first stored


def test_judges_and_the_monitor_count_against_the_budget(tmp_path: Path) -> None:
    monitor = tmp_path / "allowing.yaml"
    monitor.write_text(yaml.safe_dump({"turns": [
        {"text": '{"decision": "allow", "reason": "routine mail"}'}]}))
    # Only input is priced for judge and monitor: their estimate stays near what they spend.
    extra = {"judge": {"name": STRICT_JUDGE, "price": {"input": 100, "output": 0}},
             "monitor": {"kind": "model", "compare_unmonitored": False,
                         "model": {"name": f"scripted/{monitor}",
                                   "price": {"input": 100, "output": 0}}},
             "scenarios": [{"family": "blackmail", "factors": {"urgency": "replacement"}}]}
    reference, _ = run(spec(BLACKMAILER, samples=1, **extra), tmp_path / "ref.db")
    # The dry run reserves each role's calls: the monitor reviews one call of each turn.
    agent_row, judge_row, monitor_row = estimate(Experiment.from_dict(spec(BLACKMAILER,
                                                                           **extra)))
    assert (agent_row.model, judge_row.model) == (BLACKMAILER, f"{STRICT_JUDGE} (judge)")
    assert monitor_row.model == f"scripted/{monitor} (monitor)" and monitor_row.trials == 5
    assert monitor_row.output_tokens == 5 * 2 * 300
    [agent] = costs(reference)["done"]
    monitor_cost, judge_cost = reference.db.execute(
        "SELECT (SELECT SUM(monitor_cost_usd) FROM trials), "
        "(SELECT SUM(cost_usd) FROM judge_calls)").fetchone()
    assert monitor_cost > 0 and judge_cost > 0
    per_trial = reference.spent_usd("b")
    assert per_trial == pytest.approx(agent + monitor_cost + judge_cost)
    store, summary = run(spec(BLACKMAILER, samples=5, budget=2.5 * per_trial, **extra),
                         tmp_path / "r.db")
    # Every trial costs the same: two fit in 2.5 trials' worth, not the 2.5 / agent share.
    assert summary.statuses == {"done": 2} and summary.held_back == {HELD_BACK: 3}
    assert store.spent_usd("b") == pytest.approx(2 * per_trial)


def test_a_failed_trial_adds_its_spending_but_not_to_the_mean_a_trial_is_reserved(
        tmp_path: Path) -> None:
    experiment = Experiment.from_dict(spec(budget=10.0))
    first, second = experiment.trials()[:2]
    budget = Budget.of(experiment, Store(tmp_path / "r.db"))
    assert budget is not None
    estimate_usd = budget.expected_usd(second)
    budget.observe(TrialResult(first, 0.0, error="model call failed: timeout",
                               usage=Usage(cost_usd=0.25)))
    assert budget.spent_usd == 0.25 and budget.expected_usd(second) == estimate_usd
    transcript = Transcript(messages=[], actions=[], stop_reason="end_turn", turns=1,
                            usage=Usage(cost_usd=1.0), monitor_usage=Usage(cost_usd=0.5))
    budget.observe(TrialResult(first, 0.0, transcript))
    assert budget.spent_usd == 1.75 and budget.expected_usd(second) == 1.5
    # 1.75 spent + 1.5 in flight + 1.5 for it: within 10; five in flight are not.
    assert budget.admits(second, [first])
    assert not budget.admits(second, [first] * 5)


def test_a_changed_budget_is_no_difference_and_the_stored_spec_round_trips(
        tmp_path: Path) -> None:
    store, _ = run(spec(samples=1, budget=3.0), tmp_path / "r.db")
    stored = store.experiment_spec("b")
    assert stored is not None and stored["budget"] == {"usd": 3.0}
    read_back = stored_spec(store, "b")
    assert read_back is not None
    assert Experiment.from_dict(spec(samples=1, budget=9.0)).same_as_stored(read_back)
    assert Experiment.from_dict(spec(samples=1)).same_as_stored(read_back)
    assert not Experiment.from_dict(spec(samples=2, budget=3.0)).same_as_stored(read_back)
    assert Experiment.from_dict(stored).as_dict() == stored


@pytest.mark.parametrize("budget", [0, -5, {"dollars": 4}, "lots"])
def test_a_bad_budget_in_the_file_is_refused_in_one_sentence_naming_the_field(
        budget: object) -> None:
    data = spec()
    data["budget"] = budget if isinstance(budget, dict) else {"usd": budget}
    with pytest.raises(AmlabError, match=r"^experiment: budget\.") as error:
        Experiment.from_dict(data)
    assert str(error.value).count(". ") == 0 and "\n" not in str(error.value)


@pytest.mark.parametrize("usd", [0.0, -1.0, float("nan"), float("inf")])
def test_a_bad_budget_on_the_command_line_is_refused_naming_the_value(usd: float) -> None:
    with pytest.raises(AmlabError, match=r"^--budget-usd .*: a budget is a positive number"):
        with_budget(Experiment.from_dict(spec()), usd)


def test_a_budget_with_an_unpriced_model_is_refused_before_the_store_is_touched(
        tmp_path: Path) -> None:
    data = spec(budget=5.0, judge="openai-compatible/mystery@http://127.0.0.1:9/v1")
    store = Store(tmp_path / "r.db")
    with pytest.raises(AmlabError, match=r"budget needs the price of judge 'openai-compatible/"
                                         r"mystery@http://127\.0\.0\.1:9/v1'.*per million "
                                         r"tokens, e\.g\. \{name: openai-compatible/mystery"
                                         r".*, price: \{input"):
        asyncio.run(run_experiment(Experiment.from_dict(data), store))
    assert store.experiments() == []
    # A scripted model is free without a price: a budget runs it to the end.
    free = spec(budget=0.01)
    free["models"][0].pop("price")
    store, summary = run(free, tmp_path / "free.db")
    assert summary.statuses == {"done": 10} and store.spent_usd("b") == 0


def test_the_plan_fills_the_budget_lane_by_lane_in_turn_and_names_the_short_cells() -> None:
    data = spec(samples=3)
    data["models"].append({"name": SLOW, "price": PRICE})
    experiment = Experiment.from_dict(data)
    trials = experiment.trials()
    replacement, none = (trials[0].trial.family_key, trials[3].trial.family_key)
    costs = {scenario[1]: cost for (_, scenario, _), cost in trial_costs(experiment).items()}
    assert costs[replacement] and costs[none]
    # Room for four trials of the first condition and less than a fifth of either.
    data["budget"] = {"usd": 4 * costs[replacement] + costs[none] / 2}
    experiment = Experiment.from_dict(data)
    plan = plan_budget(experiment, trials)
    assert plan is not None
    # The two lanes take turns: two trials of each model's first cell, not three and one.
    stored = {t.key.condition for t in trials}
    assert plan.covered == {(model, "blackmail", condition): 2 if condition.endswith(
        "urgency=replacement") else 0 for model in (FAST, SLOW) for condition in stored}
    assert plan.estimated_usd == pytest.approx(4 * costs[replacement])
    assert plan_budget(Experiment.from_dict(spec()), trials) is None


def test_the_cli_shows_the_plan_spent_and_left_and_resume_with_a_higher_budget_finishes(
        tmp_path: Path) -> None:
    path, db = tmp_path / "b.yaml", tmp_path / "r.db"
    path.write_text(yaml.safe_dump(spec(budget=1.5)))
    command = [sys.executable, "-m", "amlab", "run", str(path), "--db", str(db)]
    plan = subprocess.run([*command, "--dry-run"], capture_output=True, text=True,
                          timeout=120, env=subprocess_env())
    assert plan.returncode == 0, plan.stderr
    assert "within budget" in plan.stdout and "cells short" in plan.stdout
    first = subprocess.run(command, capture_output=True, text=True, timeout=120,
                           env=subprocess_env())
    assert first.returncode == 0, first.stderr
    store = Store(db, read_only=True)
    spent, pending = store.spent_usd("b"), store.counts("b")["pending"]
    assert f"Spent ${spent:,.2f} of the $1.50 budget" in first.stdout
    assert f"${1.5 - spent:,.2f} left" in first.stdout
    assert f"{pending} trials were held back by the budget" in first.stdout
    assert "--resume and a higher --budget-usd" in first.stdout
    last = subprocess.run([*command, "--resume", "--budget-usd", "40"], capture_output=True,
                          text=True, timeout=120, env=subprocess_env())
    assert last.returncode == 0, last.stderr
    assert "of the $40.00 budget" in last.stdout and "held back" not in last.stdout
    assert Store(db, read_only=True).counts("b") == {"done": 10}
    bad = subprocess.run([*command, "--resume", "--budget-usd", "-1"], capture_output=True,
                         text=True, timeout=120, env=subprocess_env())
    assert bad.returncode != 0
    assert "--budget-usd -1.0: a budget is a positive number of US dollars" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_budget_reads_what_a_stored_experiment_spent(tmp_path: Path) -> None:
    store, _ = run(spec(samples=1), tmp_path / "r.db")
    budget = Budget.of(Experiment.from_dict(spec(samples=1, budget=7.0)), store)
    assert budget is not None and budget.spent_usd == store.spent_usd("b") > 0
    assert budget.left_usd == pytest.approx(7.0 - budget.spent_usd)
