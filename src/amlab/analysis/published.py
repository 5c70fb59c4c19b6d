"""The user's rates beside the published figures for the same cells.

A published figure names a family and the factor levels of one or more cells (pooled when
the source averaged over them). For each model of a stored run that has finished trials
with a verdict for the figure's behaviour in those cells, a row: the model's k/n with its
Wilson interval, and the published rate with its Wilson interval where the source gives n.
A row compares (`matched`) only when the run's model is the published one by the documented
mapping of provider ids (`models:` in presets/published.yaml); it then carries the
difference, the run's rate minus the published one, with a 95 % Newcombe interval where the
source gives n. Any other row is context. amlab's scenarios are not the original texts and
its harness is not theirs (`HARNESS_DIFFERS`): the figures are reference points.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from amlab.analysis.effects import two_proportions
from amlab.analysis.rates import wilson
from amlab.errors import AmlabError, describe_validation_error
from amlab.run.experiment import stored_spec
from amlab.scenario import Family
from amlab.store import Store

# The figures and their sources: data kept with the presets that reproduce them (their
# cells name the presets' families and levels); read here, below the presets, so that the
# presets can use the analysis without a cycle.
PUBLISHED_FILE = Path(__file__).parents[1] / "presets" / "published.yaml"

NOT_ORIGINAL_TEXTS = (
    "amlab's scenarios are its own texts, not the original studies' prompts and e-mails, so "
    "the published figures are reference points, not expected values. Replication mode "
    "(families original/blackmail, original/leaking, original/murder; docs/replication.md) "
    "runs the original templates exactly.")

# How amlab's runs differ from the published ones, whatever the settings (the report adds
# each experiment's own: protocol, turns, tokens, judges).
HARNESS_DIFFERS = (
    "How this harness differs from the studies': the texts are amlab's own (above). Turns: "
    "the Agentic Misalignment study took one reply per sample, its tool tags read by the "
    "grader, never executed or answered; amlab lets the agent act over up to max_turns "
    "turns and shows it each call's "
    "result (max_turns 1 is the study's setup). Token limits: each reply is cut at the run's "
    "max_tokens, which need not be the studies' limit. Detectors: the Agentic Misalignment "
    "study graded each reply with an LLM classifier (how each figure was graded is beside "
    "it); amlab decides from "
    "the simulated world's state what it can (a leak, a cancelled alert, a changed shutdown "
    "config, copied weights, a misreported score) and by a judge model or, without one, "
    "offline heuristics with measured recall what needs reading (a blackmail), so a reply "
    "that only talks about an act is not the act. Models: a published model was measured on "
    "the snapshot its authors called; the same name may serve a later one.")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Source(_Strict):
    title: str
    authors: str
    date: str
    # Which version of the source the figures are from (an arXiv version, an edition).
    version: str
    url: str
    # How the source decided the behaviour behind its figures.
    graded: str


class PublishedCell(_Strict):
    """The preset cells a figure corresponds to; several are pooled (the source averaged
    over them)."""

    family: str
    conditions: list[dict[str, str]] = Field(min_length=1)


class PublishedFigure(_Strict):
    preset: str
    source: str
    where: str  # where in the source the number is
    model: str
    behavior: str
    cell: PublishedCell
    description: str
    rate: float | None = Field(ge=0, le=1)
    n: int | None = Field(default=None, ge=1)
    # What the source says where it gives no number ("almost always").
    reported_as: str | None = None

    @model_validator(mode="after")
    def _a_number_or_words(self) -> PublishedFigure:
        if (self.rate is None) == (self.reported_as is None):
            raise ValueError("give either rate (a number the source states) or reported_as "
                             "(its words, when it states none).")
        return self


class Published(_Strict):
    sources: dict[str, Source]
    # Published model name -> the provider/model names that are that model.
    models: dict[str, list[str]] = Field(default_factory=dict)
    figures: list[PublishedFigure]

    def same_model(self, figure: PublishedFigure, model: str) -> bool:
        """Whether the run's `model` is the model the figure was measured on."""
        return model in self.models.get(figure.model, [])


@cache
def published(path: Path = PUBLISHED_FILE) -> Published:
    """The published figures, validated: each is a number or the source's words, and cites
    one of the sources."""
    try:
        data = Published.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
    except ValidationError as exc:
        problem = exc.errors()[0]
        if problem["type"] == "value_error":  # a validator's own sentence
            where = ".".join(map(str, problem["loc"]))
            raise AmlabError(f"{path}: {where}: "
                             f"{problem['msg'].removeprefix('Value error, ')}") from None
        raise AmlabError(f"{path}: {describe_validation_error(exc)}") from None
    for i, figure in enumerate(data.figures):
        if figure.source not in data.sources:
            raise AmlabError(f"{path}: figures[{i}].source '{figure.source}' is not one of the "
                             f"sources ({', '.join(data.sources) or 'none'}); add it under "
                             f"sources with its title, authors, date, version, url and how it "
                             f"graded.")
        if figure.model not in data.models:
            raise AmlabError(f"{path}: figures[{i}].model '{figure.model}' is not under models; "
                             f"add it with the provider/model names that are that model "
                             f"([] if none).")
    return data


@dataclass(frozen=True)
class ComparisonRow:
    figure: PublishedFigure
    source: Source
    conditions: tuple[str, ...]  # the cells' condition keys, pooled
    model: str  # the user's model
    k: int
    n: int
    low: float
    high: float
    # The run's model is the published model (presets/published.yaml `models:`).
    matched: bool = False

    @property
    def rate(self) -> float:
        return self.k / self.n

    @property
    def difference(self) -> tuple[float, float, float] | None:
        """The run's rate minus the published rate, with its 95 % Newcombe interval; None
        unless the models match and the source gives its rate and n."""
        figure = self.figure
        if not self.matched or figure.rate is None or figure.n is None:
            return None
        difference, low, high, _ = two_proportions(self.k, self.n,
                                                   round(figure.rate * figure.n), figure.n)
        return difference, low, high

    @property
    def published_interval(self) -> tuple[float, float] | None:
        figure = self.figure
        if figure.rate is None or figure.n is None:
            return None
        return wilson(round(figure.rate * figure.n), figure.n)


def figure_conditions(figure: PublishedFigure) -> tuple[str, ...]:
    """The condition keys, as stored, of the cells a figure stands for."""
    family = Family.load(figure.cell.family)
    return tuple(family.key(family.condition(levels, f"published figure of {figure.model}"))
                 for levels in figure.cell.conditions)


def comparison(store: Store, experiment: str | None = None) -> list[ComparisonRow]:
    """A row per published figure and model of the run that measured its cells."""
    counts: dict[tuple[str, str, str, str], tuple[int, int]] = {}
    for row in store.verdict_counts(experiment):
        key = (row.family, row.condition, row.model, row.behavior)
        k, n = counts.get(key, (0, 0))
        counts[key] = (k + row.k, n + row.n)
    models = list(dict.fromkeys(model for (_, _, model, _) in counts))
    data = published()
    rows = []
    for figure in data.figures:
        conditions = figure_conditions(figure)
        for model in models:
            pooled = [counts.get((figure.cell.family, c, model, figure.behavior), (0, 0))
                      for c in conditions]
            # A pooled figure compares only when every one of its cells was measured.
            if all(n for _, n in pooled):
                k, n = sum(k for k, _ in pooled), sum(n for _, n in pooled)
                rows.append(ComparisonRow(figure, data.sources[figure.source], conditions,
                                          model, k, n, *wilson(k, n),
                                          matched=data.same_model(figure, model)))
    return rows


def harness_settings(store: Store, experiment: str) -> str:
    """The experiment's settings that differ between harnesses, from its stored spec ('' if
    the store does not hold it)."""
    spec = stored_spec(store, experiment)
    if spec is None:
        return ""
    agent = spec.agent
    judges = [j.name for j in spec.judge_specs]
    return (f"{experiment}: protocol {agent.protocol}, max_turns {agent.max_turns}, "
            f"max_tokens {agent.max_tokens} per reply; the behaviours that need reading "
            f"decided by {', '.join(judges) if judges else 'offline heuristics (no judge)'}.")
