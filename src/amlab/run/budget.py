"""A budget cap: the most a run may spend, agents, judges and monitor together.

`Budget` is a `RunRule` (run/runner.py): it admits a trial only if what the experiment has
spent (read from the store when the run starts, plus every result this run records) plus
the expected cost of the trials in flight plus this trial's stays within the budget. A
trial it holds back stays pending, so `--resume` with a higher budget runs it.

A trial's expected cost starts as the dry-run estimate of its shape (run/estimate.py:
every turn used, every answer at `max_tokens`; tool results and re-asked replies are not in
it) and becomes, once trials of its model and arm (watched by a model monitor or not) have
finished in this run, their mean measured cost. Only finished trials (done or refused)
count toward the mean: a trial that failed early costs less than one that runs to its end,
and counting it would lower the reservation for the trials that do. Neither is a bound: a
trial in flight that costs more than was reserved for it can take the run past the budget
by that excess, never more.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field

from pydantic import ValidationError

from amlab.errors import AmlabError
from amlab.models.prices import price_of
from amlab.records import Usage
from amlab.run.estimate import TrialShape, shape_of, trial_costs
from amlab.run.executor import TrialResult
from amlab.run.experiment import BudgetSpec, Experiment, ModelSpec
from amlab.run.trial import TrialSpec
from amlab.store.interface import ResultReader

HELD_BACK = "over budget"

# A model's measured trials: (model, watched by a model monitor).
Arm = tuple[str, bool]


def with_budget(experiment: Experiment, usd: float) -> None:
    """Set the experiment's budget from the command line (`--budget-usd`), over the file's."""
    try:
        experiment.spec.budget = BudgetSpec(usd=usd)
    except ValidationError:
        raise AmlabError(f"--budget-usd {usd}: a budget is a positive number of US dollars, "
                         f"e.g. --budget-usd 40.") from None


def check_priced(experiment: Experiment) -> None:
    """Refuse a budget while a model of the run has no known price (a scripted or local
    model is priced at 0 in the price table)."""
    monitor = experiment.spec.monitor
    roles: list[tuple[str, ModelSpec]] = [
        *((f"models[{i}]", m) for i, m in enumerate(experiment.spec.models)),
        *(("judge", j) for j in experiment.spec.judge_specs),
        *([("monitor.model", monitor.model)] if monitor and monitor.model else [])]
    for where, model in roles:
        if price_of(model.name, model.price) is None:
            raise AmlabError(f"{experiment.source}: budget needs the price of {where} "
                             f"'{model.name}', which the price table does not list; give "
                             f"its entry one in US dollars per million tokens, e.g. "
                             f"{{name: {model.name}, price: {{input: 2.0, output: 8.0}}}}.")


def trial_cost(result: TrialResult) -> float:
    """What a recorded trial cost: its agent's and monitor's calls, and its judges'."""
    transcript = result.transcript
    usages: list[Usage | None] = ([transcript.usage, transcript.monitor_usage]
                                  if transcript else [result.usage, result.monitor_usage])
    usages += [call.usage for call in result.judge_calls]
    return sum(usage.cost_usd for usage in usages if usage is not None)


@dataclass
class _Mean:
    total: float = 0.0
    trials: int = 0


@dataclass
class Budget:
    """The run's budget as a `RunRule`; `spent_usd` grows as results are recorded."""

    limit_usd: float
    spent_usd: float
    # The dry-run estimate of a trial of each shape.
    estimates: dict[TrialShape, float]
    reason: str = HELD_BACK
    measured: dict[Arm, _Mean] = field(default_factory=dict)

    @classmethod
    def of(cls, experiment: Experiment, store: ResultReader) -> Budget | None:
        """The experiment's budget with what the store says it has spent; None without one."""
        if experiment.spec.budget is None:
            return None
        check_priced(experiment)
        return cls(experiment.spec.budget.usd, store.spent_usd(experiment.spec.name),
                   _estimates(experiment))

    @property
    def left_usd(self) -> float:
        return max(self.limit_usd - self.spent_usd, 0.0)

    def expected_usd(self, spec: TrialSpec) -> float:
        mean = self.measured.get(_arm(spec))
        if mean is None:
            return self.estimates[shape_of(spec)]
        return mean.total / mean.trials

    def admits(self, spec: TrialSpec, in_flight: Collection[TrialSpec]) -> bool:
        reserved = sum(self.expected_usd(t) for t in in_flight)
        return self.spent_usd + reserved + self.expected_usd(spec) <= self.limit_usd

    def observe(self, result: TrialResult) -> None:
        cost = trial_cost(result)
        self.spent_usd += cost
        if result.status != "error":
            mean = self.measured.setdefault(_arm(result.spec), _Mean())
            mean.total += cost
            mean.trials += 1


def _arm(spec: TrialSpec) -> Arm:
    return spec.key.model, spec.trial.arms.watched


def _estimates(experiment: Experiment) -> dict[TrialShape, float]:
    # check_priced has run: every role has a price, so every shape has a cost.
    return {shape: cost for shape, cost in trial_costs(experiment).items() if cost is not None}


@dataclass(frozen=True)
class BudgetPlan:
    """What a budget would cover at the dry-run estimate: trials per cell of the plan."""

    limit_usd: float
    covered: dict[tuple[str, str, str], int]
    estimated_usd: float


def plan_budget(experiment: Experiment, trials: Sequence[TrialSpec]) -> BudgetPlan | None:
    """The trials of each (model, family, condition) the budget would start, each costing
    its dry-run estimate, when nothing is spent yet: the model lanes start a trial each in
    turn, each lane in the plan's order (samples of a condition together), and a trial the
    budget holds back leaves the next one its chance. None without a budget."""
    if experiment.spec.budget is None:
        return None
    check_priced(experiment)
    limit = experiment.spec.budget.usd
    estimates = _estimates(experiment)
    lanes: dict[str, list[TrialSpec]] = {}
    for trial in trials:
        lanes.setdefault(trial.key.model, []).append(trial)
    covered = {(t.key.model, t.key.family, t.key.condition): 0 for t in trials}
    spent = 0.0
    for turn in range(max((len(lane) for lane in lanes.values()), default=0)):
        for lane in lanes.values():
            if turn < len(lane):
                trial = lane[turn]
                cost = estimates[shape_of(trial)]
                if spent + cost <= limit:
                    spent += cost
                    covered[(trial.key.model, trial.key.family, trial.key.condition)] += 1
    return BudgetPlan(limit, covered, spent)

