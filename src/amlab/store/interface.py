"""What a results store is, whatever database holds it: the protocols a store implements
(`OutcomeWriter` for a run's writes, `ResultReader` for everything read back) and the typed
records it returns. Nothing outside `amlab.store` sees SQL, a connection or a database row:
a reader gets these records, already decoded.

`tests/test_store_interface.py` runs one suite against every implementation; a second
store (docs/adding-a-store.md) adds itself to that suite's list.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple, Protocol

from amlab.errors import AmlabError
from amlab.records import Action, JudgeCall, Message, Transcript, Usage, Verdict

# The schema version a store of this amlab writes; an older database is upgraded
# additively (tables and columns only grow) when opened for writing. 3: the model ids that
# answered a model monitor (trials.monitor_model_ids).
SCHEMA_VERSION = 3


class Claim(enum.Enum):
    """What `OutcomeWriter.claim` found: the trial is now ours, another run already
    attempted it, or another live run holds it."""

    CLAIMED = "claimed"
    ATTEMPTED_ELSEWHERE = "attempted elsewhere"
    HELD_ELSEWHERE = "held elsewhere"


@dataclass(frozen=True)
class TrialKey:
    experiment: str
    family: str
    condition: str
    model: str
    sample: int


@dataclass(frozen=True)
class PlannedTrial:
    key: TrialKey
    factors: dict[str, str]
    seed: int


# -- what a reader gets back ---------------------------------------------------------


@dataclass(frozen=True)
class TrialRecord:
    """A stored trial without its transcript: where it sits, how it ended, what it used
    (None: not run yet, or a database from before that was kept)."""

    id: int
    experiment: str
    family: str
    condition: str
    factors: dict[str, str]
    model: str
    sample: int
    seed: int
    status: str
    attempts: int
    stop_reason: str | None
    error: str | None
    turns: int | None
    calls: int | None
    input_tokens: int | None
    cached_input_tokens: int | None
    output_tokens: int | None
    cost_usd: float | None
    # Each model id the provider said answered -> its calls; the answers from the cache.
    model_ids: dict[str, int] | None
    cached_calls: int | None

    @property
    def key(self) -> TrialKey:
        return TrialKey(self.experiment, self.family, self.condition, self.model, self.sample)


@dataclass(frozen=True)
class StoredTrial(TrialRecord):
    """A stored trial with its transcript (empty for a trial that has none)."""

    messages: tuple[Message, ...] = ()
    actions: tuple[Action, ...] = ()


@dataclass(frozen=True)
class VerdictValue:
    trial_id: int
    behavior: str
    value: bool


@dataclass(frozen=True)
class VerdictRow:
    """One verdict of a finished trial with the trial's cell."""

    experiment: str
    family: str
    condition: str
    model: str
    sample: int
    behavior: str
    value: bool


@dataclass(frozen=True)
class VerdictCount:
    """Per cell and behaviour of finished trials: k verdicts that hold of n given."""

    experiment: str
    family: str
    condition: str
    model: str
    behavior: str
    k: int
    n: int


@dataclass(frozen=True)
class CellUsage:
    """Per cell and status: its trials and what they used."""

    experiment: str
    family: str
    condition: str
    model: str
    status: str
    trials: int
    calls: int
    input_tokens: int
    cached_input_tokens: int
    output_tokens: int
    cost_usd: float


@dataclass(frozen=True)
class ConditionFactors:
    experiment: str
    family: str
    condition: str
    factors: dict[str, str]


@dataclass(frozen=True)
class ActionCount:
    """Per cell of finished trials: the agents' tool calls, those the world applied and
    those that changed its state."""

    experiment: str
    family: str
    condition: str
    model: str
    calls: int
    applied: int
    changed: int


class TidyRow(NamedTuple):
    """One (trial, behaviour) for export; behaviour and verdict None for a trial that has
    no verdict (error, refusal, pending). A named tuple: an export builds hundreds of
    thousands, and a frame takes them as they are."""

    experiment: str
    trial_id: int
    family: str
    condition: str
    model: str
    sample: int
    seed: int
    status: str
    stop_reason: str | None
    turns: int | None
    input_tokens: int | None
    output_tokens: int | None
    cost_usd: float | None
    behavior: str | None
    value: bool | None
    method: str | None
    version: str | None


@dataclass(frozen=True)
class MonitorCount:
    """Finished trials of one cell grouped by what their reviewed calls show: `blocked`
    (a review blocked a call), `harmful` (a `harmful` behaviour holds), `retried` (a
    harmful call after the first block), `escalated` (an `escalation` behaviour holds).
    The counts: the trials, their reviewed calls that were harmful / benign and how many of
    each were blocked, and the monitor's tokens and cost."""

    family: str
    condition: str
    factors: dict[str, str]
    model: str
    blocked: bool
    harmful: bool
    retried: bool
    escalated: bool
    trials: int
    harmful_calls: int
    caught: int
    benign_calls: int
    false_blocks: int
    monitor_input_tokens: int
    monitor_output_tokens: int
    monitor_cost_usd: float


@dataclass(frozen=True)
class RenderingCount:
    """Trials of a condition planned with one rendering (part -> SHA-256) by one amlab
    version (both None: a database from before they were kept)."""

    family: str
    condition: str
    rendering: dict[str, str] | None
    amlab_version: str | None
    trials: int


@dataclass(frozen=True)
class AnsweredCalls:
    """Calls of a model asked for (or of a judge, under one prompt version) that one model
    id answered (None: not recorded)."""

    asked: str
    prompt_version: str | None
    model_id: str | None
    calls: int


@dataclass(frozen=True)
class CachedCalls:
    """A model's (or a judge's) calls and those the response cache answered (None: not
    recorded)."""

    name: str
    calls: int
    cached: int | None


@dataclass(frozen=True)
class RubricCount:
    judge: str
    behavior: str
    version: str
    answers: int


# -- how verdicts were decided, what the judges said and cost ------------------------


@dataclass(frozen=True)
class MethodMix:
    """Per cell, behaviour, method and detector (or rubric) version of finished trials: the
    verdicts decided that way (`fallback`: the heuristic's, after the deciding judge's
    error)."""

    family: str
    condition: str
    model: str
    behavior: str
    method: str
    version: str
    trials: int


@dataclass(frozen=True)
class JudgeErrorCount:
    """Per cell, behaviour and judge of finished trials: the judge's latest answers that
    were errors."""

    family: str
    condition: str
    model: str
    behavior: str
    judge: str
    errors: int


@dataclass(frozen=True)
class MethodDecision:
    """One method's verdict on a (finished trial, behaviour) that two or more methods
    decided; `judge` names the method: `state`, `heuristic` or `judge <model>`."""

    trial_id: int
    family: str
    behavior: str
    judge: str
    value: bool


@dataclass(frozen=True)
class AwarenessCount:
    """Per cell, behaviour and belief (what the agent last said of its situation: `test`,
    `real` or `silent`) of finished trials with an eval_awareness verdict: k of n."""

    family: str
    condition: str
    model: str
    behavior: str
    belief: str
    k: int
    n: int


@dataclass(frozen=True)
class TruncationCount:
    """Per cell: finished trials cut short at max_turns and at the token budget."""

    family: str
    condition: str
    model: str
    max_turns: int
    max_tokens: int


@dataclass(frozen=True)
class RealismScore:
    """Per cell and judge of finished trials: the judge's latest realism readings (1 = says
    it is a test ... 5 = treats it as real): how many, their sum, how many scored 1 or 2,
    and the errors."""

    family: str
    condition: str
    model: str
    judge: str
    n: int
    total: int
    artificial: int
    errors: int


@dataclass(frozen=True)
class MethodCount:
    """Per behaviour, method, version and judge ('' unless a judge decided): the finished
    trials whose verdict was decided that way."""

    behavior: str
    method: str
    version: str
    judge: str
    trials: int


@dataclass(frozen=True)
class JudgementRecord:
    """A judge's latest answer on one behaviour of a finished trial: a value, a realism
    score, or an error (then value and score are None)."""

    trial_id: int
    family: str
    condition: str
    model: str
    sample: int
    judge: str
    behavior: str
    version: str
    value: bool | None
    score: int | None
    error: str


@dataclass(frozen=True)
class CallUsage:
    """The calls of the agent (or of one judge) and their tokens and cost."""

    calls: int
    input_tokens: int
    output_tokens: int
    cost_usd: float


@dataclass(frozen=True)
class JudgeUsage:
    """One judge's readings of an experiment's trials (`judged`) and what they used."""

    judge: str
    judged: int
    usage: CallUsage


@dataclass(frozen=True)
class JudgeMonitorUsage:
    """What one judge (its calls on the trial summed, re-judgings included) or the model
    monitor (`judge` None) used on one trial. Input tokens count the cached ones too; the
    monitor's cached tokens are not stored (0)."""

    trial_id: int
    judge: str | None
    input_tokens: int
    cached_input_tokens: int
    output_tokens: int
    cost_usd: float


# -- the protocols -------------------------------------------------------------------


class OutcomeWriter(Protocol):
    """A run's writes. Every outcome is one transaction and lands exactly once: a run
    claims a trial (a lease, renewed while `leases()` is open) before running it, and an
    outcome from a run whose lease another run took over is refused."""

    owner: str

    def plan(self, name: str, spec: dict[str, Any], trials: list[PlannedTrial]) -> bool: ...

    def record_renderings(self, experiment: str,
                          renderings: dict[tuple[str, str], dict[str, str]],
                          version: str) -> None: ...

    def stored_renderings(self, experiment: str
                          ) -> dict[tuple[str, str], dict[str, str]]: ...

    def unfinished(self, experiment: str) -> dict[TrialKey, int]: ...

    def claim(self, key: TrialKey, attempts: int) -> Claim: ...

    def leases(self) -> AbstractContextManager[None]: ...

    def save_result(self, key: TrialKey, transcript: Transcript,
                    verdicts: dict[str, Verdict], started: float,
                    judge_calls: Sequence[JudgeCall] = ()) -> None: ...

    def save_error(self, key: TrialKey, error: str, started: float,
                   usage: Usage | None = None, monitor_usage: Usage | None = None) -> None: ...

    def replace_verdicts(self, trial_id: int, verdicts: dict[str, Verdict],
                         judge_calls: Sequence[JudgeCall] = ()) -> None: ...

    def response_cache(self) -> Path:
        """The file where runs and re-judgings on this store keep their response cache (a
        local SQLite file: beside an SQLite store, shared by the stores of its folder; for a
        server database, one per database in this user's cache folder)."""
        ...

    def close(self) -> None: ...


class ResultReader(Protocol):
    """Everything read back, as typed records; aggregates are computed by the database
    (counts and sums only: the statistics live in `amlab.analysis`)."""

    @property
    def location(self) -> str:
        """Where the store is, for messages (a file path, a database URL without its
        password)."""
        ...

    def schema_version(self) -> int: ...

    def revision(self) -> tuple[float, ...]:
        """A value that changes whenever anything is written to the store (so a reader may
        keep what it built from it until then)."""
        ...

    def experiments(self) -> list[str]: ...

    def experiment_spec(self, name: str) -> dict[str, Any] | None: ...

    def counts(self, experiment: str) -> dict[str, int]: ...

    def trials(self, experiment: str | None = None, status: str | None = None
               ) -> Iterator[StoredTrial]: ...

    def trial(self, trial_id: int) -> StoredTrial | None: ...

    def trial_index(self, experiment: str) -> list[TrialRecord]: ...

    def verdicts_of(self, trial_id: int) -> dict[str, Verdict]: ...

    def verdict_values(self, experiment: str) -> list[VerdictValue]: ...

    def verdict_rows(self, experiment: str | None = None) -> list[VerdictRow]: ...

    def verdict_counts(self, experiment: str | None = None) -> list[VerdictCount]: ...

    def cell_usage(self, experiment: str | None = None) -> list[CellUsage]: ...

    def spent_usd(self, experiment: str) -> float:
        """What the experiment's calls cost so far, agents, monitor and judges together
        (calls of unknown price count 0)."""
        ...

    def condition_factors(self, experiment: str | None = None) -> list[ConditionFactors]: ...

    def action_counts(self, experiment: str | None = None) -> list[ActionCount]: ...

    def tidy_rows(self, experiment: str | None = None) -> Iterator[TidyRow]: ...

    def monitor_counts(self, experiment: str, harmful: Sequence[str],
                       escalation: Sequence[str]) -> list[MonitorCount]: ...

    def rendering_counts(self, experiment: str) -> list[RenderingCount]: ...

    def model_provenance(self, experiment: str) -> list[AnsweredCalls]: ...

    def cached_calls(self, experiment: str) -> list[CachedCalls]: ...

    def judge_provenance(self, experiment: str) -> list[AnsweredCalls]: ...

    def judge_cached_calls(self, experiment: str) -> list[CachedCalls]: ...

    def rubric_versions(self, experiment: str) -> list[RubricCount]: ...

    def monitor_model_ids(self, experiment: str) -> dict[str, int]:
        """Each model id that answered the monitor's calls -> its calls, over the finished
        and refused trials (empty: a rule monitor, no monitor, or not recorded)."""
        ...

    def method_mix(self, experiment: str) -> list[MethodMix]: ...

    def judge_errors(self, experiment: str) -> list[JudgeErrorCount]: ...

    def decisions_by_method(self, experiment: str) -> list[MethodDecision]: ...

    def awareness_counts(self, experiment: str) -> list[AwarenessCount]: ...

    def truncation_counts(self, experiment: str) -> list[TruncationCount]: ...

    def realism_scores(self, experiment: str) -> list[RealismScore]: ...

    def method_counts(self, experiment: str) -> list[MethodCount]: ...

    def judgement_rows(self, experiment: str) -> list[JudgementRecord]: ...

    def judge_usage(self, experiment: str) -> list[JudgeUsage]: ...

    def agent_usage(self, experiment: str) -> CallUsage: ...

    def judge_monitor_usage(self, experiment: str) -> list[JudgeMonitorUsage]:
        """Per trial of the experiment, each judge's usage and the monitor's (a trial whose
        monitor used nothing has no monitor record), ordered by trial, the judges first."""
        ...

    def close(self) -> None: ...


class ResultStore(OutcomeWriter, ResultReader, Protocol):
    """A store a run writes and a report reads."""


def require_experiment(store: ResultReader, name: str | None) -> None:
    """Refuse, in one sentence naming the store and what it holds, an experiment `name`
    that is not stored (None: every experiment, nothing to check)."""
    if name is None:
        return
    names = store.experiments()
    if name not in names:
        raise AmlabError(f"{store.location}: has no experiment '{name}'; it has "
                         f"{', '.join(names) or 'none'}.")
