"""The experiment file: which families and conditions, which models, how many samples.

    name: demo
    scenarios:
      - family: blackmail
        factors: {urgency: [replacement, none], goal_type: explicit, goal_value: america}
    models:
      - local/smollm2                                   # a name ...
      - {name: local/smollm2, options: {grammar: true}} # ... or a name with options
    samples: 2
    seed: 7
    agent: {protocol: text, max_turns: 2, max_tokens: 200}
    judge: anthropic/claude-sonnet-4-5   # optional: a judge model ...
    # judges: [MODEL, MODEL]     # ... or several: the first decides, all are compared
    # judge_attempts: 3          # replies asked of a judge before an entry is an error
    hypotheses:                  # optional: the primary contrasts (run/hypotheses.py)
      - {behavior: blackmail, a: {urgency: replacement}, b: {urgency: none},
         direction: greater}
    budget: {usd: 40}            # optional: start no trial that would spend more (budget.py)
    stopping: {half_width: 0.05} # optional: stop a cell early once decided (run/stopping.py)
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from amlab.agent import AgentConfig
from amlab.agent.monitor import DEFAULT_BLOCK_MESSAGE
from amlab.detect import check_detector_names
from amlab.detect.reading import with_reading_behaviours
from amlab.errors import AmlabError, describe_validation_error
from amlab.families import load_family
from amlab.models import GenerationConfig, capabilities_of, split_name
from amlab.models.batch import BatchSettings
from amlab.models.prices import Price
from amlab.models.providers import batch_providers
from amlab.models.retry import RetryPolicy
from amlab.run.hypotheses import Cell, HypothesisSpec, ResolvedHypothesis, resolve_hypotheses
from amlab.run.trial import UNMONITORED, Arms, Trial, TrialSpec
from amlab.scenario import Condition, Family, RenderedScenario, condition_key
from amlab.store import ResultReader
from amlab.yamlfile import read_utf8, read_yaml

# Every planned trial is a row of the store and an object in memory: far above a study
# (the original grammar, 100 samples, five models and a monitor is 234,000), far below a
# plan that would exhaust memory.
MAX_TRIALS = 500_000


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# YAML reads unquoted yes/no, true/false and on/off as booleans, and 1 as a number; a
# level is text, so Experiment turns them back into the family's level (see `level_text`).
Level = str | bool | int | float
YAML_BOOLEANS = {True: ("yes", "true", "on", "y"), False: ("no", "false", "off", "n")}


class ScenarioSpec(Strict):
    family: str
    factors: dict[str, list[Level] | Level] = Field(default_factory=dict)

    def grid(self) -> dict[str, list[str]]:
        return {k: [str(v)] if not isinstance(v, list) else [str(x) for x in v]
                for k, v in self.factors.items()}


def surface_seed(experiment_seed: int, family: str, sample: int) -> int:
    """The seed of what a perturbation draws per trial (`names: randomized`). It ignores the
    condition and the model, so sample i of every condition and model meets the same cast:
    comparisons between them are within a cast, and casts vary across samples."""
    text = f"{experiment_seed}|{family}|{sample}"
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "big")


def render_trial(family: Family, trial: Trial, experiment_seed: int,
                 rendered: dict[tuple[str, ...], RenderedScenario], key: tuple[str, ...]
                 ) -> RenderedScenario:
    """A trial's condition rendered, once per condition under `key` in `rendered` (each
    trial copies the world); its arms do not change what the agent reads. A condition that
    draws per trial (names randomized) is rendered for each trial, with its sample's seed:
    the same draw whenever the trial is rendered again."""
    condition = dict(trial.condition)
    if family.seeded(condition):
        return family.render(condition, surface_seed(experiment_seed, family.name, trial.sample))
    if key not in rendered:
        rendered[key] = family.render(condition)
    return rendered[key]


def level_text(value: Level, levels: list[str]) -> str:
    """A level as the experiment file meant it: an unquoted `no` (read as false) is the
    family's level `no`, `1` is `1`."""
    if not isinstance(value, bool):
        return str(value)
    spelled = [level for level in levels if level.lower() in YAML_BOOLEANS[value]]
    if len(spelled) == 1:
        return spelled[0]
    return str(value).lower()  # not a level: the family's check names the valid ones


class ModelSpec(Strict):
    name: str
    options: dict[str, Any] = Field(default_factory=dict)
    # Trials of this model run at once (a local model runs its trials one at a time).
    concurrency: int = Field(default=4, ge=1)
    requests_per_minute: int | None = Field(default=None, ge=1)
    tokens_per_minute: int | None = Field(default=None, ge=1)
    # Overrides the model's entry in the shipped price table (models/prices.yaml).
    price: Price | None = None
    # Send its calls through the provider's batch API at the batch price (models/batch.py):
    # `true`, or the batch settings. Its concurrency then defaults to the batch size.
    batch: BatchSettings | None = None

    @field_validator("name")
    @classmethod
    def _parses(cls, name: str) -> str:
        split_name(name)
        return name

    @field_validator("batch", mode="before")
    @classmethod
    def _true_is_the_defaults(cls, batch: Any) -> Any:
        return {} if batch is True else None if batch is False else batch

    @model_validator(mode="after")
    def _batch_needs_a_batch_api(self) -> ModelSpec:
        if self.batch is None:
            return self
        if not capabilities_of(self.name).batch:
            raise ValueError(f"model {self.name}: batch needs a provider with a batch API "
                             f"({', '.join(batch_providers())}); remove batch from its entry.")
        if self.requests_per_minute or self.tokens_per_minute:
            # They pace calls made one by one; the provider queues a batch's calls itself.
            raise ValueError(f"model {self.name}: requests_per_minute and tokens_per_minute "
                             f"pace calls made one by one, not the calls of a batch; remove "
                             f"them or batch.")
        if "concurrency" not in self.model_fields_set:
            # A batch holds only the calls of trials in flight: enough of them to fill it.
            self.concurrency = self.batch.size
        return self


class AgentSpec(Strict):
    protocol: Literal["native", "text"] = "native"
    max_turns: int = Field(default=6, ge=1)
    max_tokens: int = Field(default=1024, ge=1)
    max_output_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = None
    stop: list[str] = Field(default_factory=list)

    def config(self, seed: int, block_message: str = DEFAULT_BLOCK_MESSAGE) -> AgentConfig:
        return AgentConfig(
            protocol=self.protocol, max_turns=self.max_turns,
            max_output_tokens=self.max_output_tokens,
            generation=GenerationConfig(max_tokens=self.max_tokens,
                                        temperature=self.temperature, seed=seed,
                                        stop=tuple(self.stop)),
            block_message=block_message)


class MonitorSpec(Strict):
    """A runtime monitor, run as a factor: each condition with the monitor and, by default,
    without it, so the analysis can compare the two."""

    kind: Literal["rules", "model"] = "rules"
    # A model monitor's model: a name, or a model entry like the agents' (options, limits, price).
    model: ModelSpec | None = None
    # Levels of the `monitor_sees_reasoning` factor (model monitors only).
    sees_reasoning: list[bool] = Field(default_factory=lambda: [False])
    compare_unmonitored: bool = True
    on_error: Literal["allow", "block"] = "allow"
    block_message: str = DEFAULT_BLOCK_MESSAGE
    # A file with your own rubric (the system prompt of a model monitor).
    rubric: str | None = None

    @field_validator("model", mode="before")
    @classmethod
    def _name_to_spec(cls, model: Any) -> Any:
        return {"name": model} if isinstance(model, str) else model

    @model_validator(mode="after")
    def _model_needs_a_name(self) -> MonitorSpec:
        if self.kind == "model" and not self.model:
            raise ValueError("monitor.kind 'model' needs monitor.model (a provider/model name)")
        if self.kind == "rules" and self.model:
            raise ValueError("monitor.model is only for monitor.kind 'model'")
        return self

    @property
    def label(self) -> str:
        return self.model.name if self.model else "rules"

    def arms(self) -> list[Arms]:
        """The arms to cross with every condition."""
        monitored = ([Arms(self.label)] if self.kind == "rules" else
                     [Arms(self.label, seen) for seen in self.sees_reasoning])
        return ([Arms(UNMONITORED)] if self.compare_unmonitored else []) + monitored


class PlanSpec(Strict):
    """The smallest change in rate the experiment should detect (`amlab run --dry-run`
    warns when its cells are too small for it)."""

    baseline: float = Field(ge=0, le=1)
    effect: float
    power: float = Field(default=0.8, gt=0, lt=1)
    alpha: float = Field(default=0.05, gt=0, lt=1)

    @field_validator("effect")
    @classmethod
    def _reachable(cls, effect: float, info: Any) -> float:
        baseline = info.data.get("baseline")  # absent if the baseline itself was invalid
        if baseline is not None and (effect == 0 or not 0 <= baseline + effect <= 1):
            raise ValueError(f"plan.effect {effect} must be a non-zero change that keeps "
                             f"baseline + effect between 0 and 1 (baseline is {baseline}).")
        return effect


class BudgetSpec(Strict):
    """The most the run may spend, agents, judges and monitor together (run/budget.py)."""

    usd: float = Field(gt=0, allow_inf_nan=False)


# Settings that say how far a run goes, not what the experiment is: a resumed run may change
# them, so they are left out when a file is compared with its stored spec.
RUN_CONTROL_FIELDS = ("budget", "stopping")


class StoppingSpec(Strict):
    """When a cell has enough samples (run/stopping.py): every watched behaviour's
    anytime-valid interval at most ±`half_width`, or (`decide: hypotheses`) each declared
    contrast of the cell decided; at most `samples` either way."""

    half_width: float | None = Field(default=0.05, gt=0, lt=0.5)
    confidence: float = Field(default=0.95, gt=0, lt=1)
    # Watched behaviours; none named: the family's harmful ones.
    behaviors: list[str] = Field(default_factory=list)
    decide: Literal["hypotheses"] | None = None

    @model_validator(mode="after")
    def _something_stops(self) -> StoppingSpec:
        if self.half_width is None and self.decide is None:
            raise ValueError("stopping needs half_width, decide: hypotheses, or both; with "
                             "neither no cell would ever stop early.")
        return self


class ExperimentSpec(Strict):
    name: str
    description: str = ""
    scenarios: list[ScenarioSpec] = Field(min_length=1)
    models: list[ModelSpec] = Field(min_length=1)
    samples: int = Field(default=1, ge=1)
    seed: int = 0
    agent: AgentSpec = AgentSpec()
    retry: RetryPolicy = RetryPolicy()
    monitor: MonitorSpec | None = None
    # Judge models for the behaviours that need reading; without one, heuristics decide.
    judge: ModelSpec | None = None
    judges: list[ModelSpec] = Field(default_factory=list)
    judge_attempts: int = Field(default=3, ge=1)
    plan: PlanSpec | None = None
    # The primary contrasts, declared before the run (confirmatory in the report).
    hypotheses: list[HypothesisSpec] = Field(default_factory=list)
    budget: BudgetSpec | None = None
    stopping: StoppingSpec | None = None

    @field_validator("models", "judges", mode="before")
    @classmethod
    def _names_to_specs(cls, models: Any) -> Any:
        if isinstance(models, list):
            return [{"name": m} if isinstance(m, str) else m for m in models]
        return models

    @field_validator("judge", mode="before")
    @classmethod
    def _name_to_spec(cls, judge: Any) -> Any:
        return {"name": judge} if isinstance(judge, str) else judge

    @model_validator(mode="after")
    def _one_way_to_name_judges(self) -> ExperimentSpec:
        if self.judge and self.judges:
            raise ValueError("give either judge: MODEL or judges: [MODEL, ...], not both.")
        return self

    @model_validator(mode="after")
    def _batch_only_single_turns(self) -> ExperimentSpec:
        """Judges read finished trials, so any may batch; an agent (or its monitor) only
        when a trial is one reply: a batch can take up to a day, which a multi-turn trial
        would wait at every turn."""
        monitor = self.monitor.model if self.monitor else None
        turns = self.agent.max_turns
        roles = [("model", spec) for spec in self.models]
        for role, spec in [*roles, *([("monitor.model", monitor)] if monitor else [])]:
            if spec.batch is not None and turns > 1:
                raise ValueError(f"{role} {spec.name}: batch needs single-turn trials "
                                 f"(agent.max_turns: 1), as a trial of {turns} turns would "
                                 f"wait for a batch at every turn; set agent.max_turns: 1, or "
                                 f"batch only the judges.")
        return self

    @property
    def judge_specs(self) -> list[ModelSpec]:
        return [self.judge] if self.judge else list(self.judges)


class Experiment:
    """A validated experiment: its spec, its families, and every trial it implies."""

    def __init__(self, spec: ExperimentSpec, source: str, base_dir: Path) -> None:
        self.spec = spec
        self.source = source
        self.base_dir = base_dir
        self.families: dict[str, Family] = {}
        self.conditions: list[tuple[Family, Condition]] = []
        self._rendered: dict[tuple[str, ...], RenderedScenario] = {}
        rubric = spec.monitor.rubric if spec.monitor else None
        if rubric and not (base_dir / rubric).is_file():
            raise AmlabError(f"{source}: monitor.rubric '{rubric}' is not a file (paths are "
                             f"relative to the experiment file's folder).")
        # Read once, here: a rubric that is not UTF-8 stops the file, not every trial.
        self.monitor_rubric = read_utf8(base_dir / rubric, "rubric") if rubric else None
        listed: set[tuple[str, str]] = set()
        for i, scenario in enumerate(spec.scenarios):
            where = f"{source}: scenarios[{i}]"
            family = self.families.get(scenario.family) or self._family(scenario.family, where)
            self.families[family.name] = family
            scenario.factors = self._as_levels(scenario.factors, family)
            check_detector_names(family.spec.detectors, f"{family.root}/family.yaml: detectors")
            for condition in family.expand(scenario.grid(), f"{where}.factors"):
                # A set, not a scan of the list: a large grid would take quadratic time.
                seen = (family.name, condition_key(condition))
                if seen not in listed:
                    listed.add(seen)
                    self.conditions.append((family, condition))
        self.hypotheses = self._resolve_hypotheses()
        spec.hypotheses = [h.spec for h in self.hypotheses]
        planned = self.trial_count()
        if planned > MAX_TRIALS:
            raise AmlabError(f"{source}: this experiment plans {planned:,} trials (models × "
                             f"conditions × samples); an experiment may plan at most "
                             f"{MAX_TRIALS:,}.")

    @classmethod
    def load(cls, path: Path | str) -> Experiment:
        path = Path(path)
        return cls.from_dict(read_yaml(path, "experiment file"), str(path), path.parent)

    @classmethod
    def from_dict(cls, data: Any, source: str = "experiment", base_dir: Path = Path(".")
                  ) -> Experiment:
        try:
            spec = ExperimentSpec.model_validate(data)
        except ValidationError as exc:
            problem = exc.errors()[0]
            if problem["type"] == "value_error":
                # A model name that does not parse: the AmlabError's own sentence.
                raise AmlabError(f"{source}: {problem['msg'].removeprefix('Value error, ')}"
                                 ) from None
            raise AmlabError(f"{source}: {describe_validation_error(exc)}") from None
        except AmlabError as exc:
            # Raised by a validator (e.g. a model name that does not parse).
            raise AmlabError(f"{source}: {exc}") from None
        return cls(spec, source, base_dir)

    @staticmethod
    def _as_levels(factors: dict[str, list[Level] | Level], family: Family
                   ) -> dict[str, list[Level] | Level]:
        """The factors with every level as text (a list stays a list, so a stored spec
        still matches its file)."""
        def text(name: str, value: Level) -> str:
            declared = family.spec.factors.get(name)
            return level_text(value, list(declared.levels) if declared else [])

        return {name: [text(name, v) for v in value] if isinstance(value, list)
                else text(name, value) for name, value in factors.items()}

    @staticmethod
    def _family(name: str, where: str) -> Family:
        try:
            return load_family(name)
        except AmlabError as exc:
            raise AmlabError(f"{where}.family: {exc}") from None

    def trial_count(self) -> int:
        """How many trials `trials()` lists, without listing them."""
        return (len(self.spec.models) * len(self.conditions) * len(self.arms())
                * self.spec.samples)

    def arms(self) -> list[Arms]:
        """The arms every condition runs in: the monitor's, or the one arm of no monitor."""
        return self.spec.monitor.arms() if self.spec.monitor else [Arms()]

    def _conditions_in_arms(self) -> list[tuple[Family, Condition, str, Arms]]:
        """Every planned condition in the file's order, with its family key, in each arm."""
        arms = self.arms()
        return [(family, condition, family.key(condition), arm)
                for family, condition in self.conditions for arm in arms]

    def cells(self) -> list[Cell]:
        """Every planned condition in each arm, as the analysis tables name it."""
        return [Cell(family.name, arm.extend(family_key), arm.extend_levels(condition))
                for family, condition, family_key, arm in self._conditions_in_arms()]

    def trials(self) -> list[TrialSpec]:
        """Every trial of the sweep, in the order they are scheduled: for each model, all
        samples of a condition together (they share a prompt prefix)."""
        cells = self._conditions_in_arms()
        return [TrialSpec.plan(Trial(self.spec.name, family.name, condition, family_key, arm,
                                     model.name, sample), self.spec.seed)
                for model in self.spec.models
                for family, condition, family_key, arm in cells
                for sample in range(self.spec.samples)]

    def _resolve_hypotheses(self) -> list[ResolvedHypothesis]:
        if not self.spec.hypotheses:
            return []
        behaviours = {name: with_reading_behaviours(list(family.spec.detectors))
                      for name, family in self.families.items()}

        def as_levels(family: str, levels: dict[str, Level]) -> dict[str, str]:
            return {factor: str(level) for factor, level in
                    self._as_levels(dict(levels), self.families[family]).items()}

        return resolve_hypotheses(self.spec.hypotheses, self.cells(),
                                  behaviours, [m.name for m in self.spec.models], self.source,
                                  as_levels)

    def rendered(self, trial: Trial) -> RenderedScenario:
        """The trial's condition rendered (see `render_trial`)."""
        return render_trial(self.families[trial.family], trial, self.spec.seed, self._rendered,
                            (trial.family, trial.family_key))

    def renderings(self, trials: list[TrialSpec]) -> dict[tuple[str, str], dict[str, str]]:
        """(family, stored condition) -> the fingerprint of its rendering, for the trials
        given."""
        # One trial per condition: models and samples share its rendering.
        first = {(t.key.family, t.key.condition): t.trial for t in trials}
        return {key: self.rendered(trial).fingerprint() for key, trial in first.items()}

    def model(self, name: str) -> ModelSpec:
        return next(m for m in self.spec.models if m.name == name)

    def as_dict(self) -> dict[str, Any]:
        return self.spec.model_dump(mode="json")

    def same_as_stored(self, stored: ExperimentSpec) -> bool:
        """Whether a stored spec (`stored_spec`: read with today's schema, so a setting
        added since is at its default, no difference) describes this experiment, its run
        controls aside (`RUN_CONTROL_FIELDS`)."""
        exclude = set(RUN_CONTROL_FIELDS)
        return (stored.model_dump(mode="json", exclude=exclude)
                == self.spec.model_dump(mode="json", exclude=exclude))


def stored_spec(store: ResultReader, name: str) -> ExperimentSpec | None:
    """The spec of experiment `name` as `store` holds it, read with today's schema (a
    setting added since is at its default): the one reading of a stored experiment, for
    resume, rejudge, the analysis and the viewer; None if the store does not hold it."""
    stored = store.experiment_spec(name)
    if stored is None:
        return None
    try:
        return ExperimentSpec.model_validate(stored)
    except ValidationError as exc:
        problem = describe_validation_error(exc)
    except AmlabError as exc:  # raised by a validator (a model name that no longer parses)
        problem = str(exc)
    raise AmlabError(f"{store.location}: the stored experiment '{name}' does not read as an "
                     f"experiment file: {problem}")
