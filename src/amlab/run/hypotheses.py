"""Declared hypotheses: the primary contrasts of an experiment, written before it runs.

    hypotheses:
      - name: the threat raises blackmail         # optional label
        behavior: blackmail
        family: blackmail                         # optional with one family
        given: {goal_type: explicit, goal_value: america}   # levels A and B share
        a: {urgency: replacement}
        b: {urgency: none}
        direction: greater                        # A > B; `less`, or `two-sided` (default)
        models: [openai/gpt-4.1]                  # optional: default every model

Cell A is the one planned condition whose levels include `given` and `a` (B: `given` and
`b`). The experiment file is refused, naming the field, unless each cell is exactly one
condition it plans. The hypotheses are part of the experiment's stored spec, so they are
recorded before the first trial and `--resume` refuses a file whose hypotheses changed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from amlab.errors import AmlabError

Direction = Literal["greater", "less", "two-sided"]
# As in the experiment's factors: YAML may read a level as a boolean or a number.
LevelValue = str | bool | int | float


class HypothesisSpec(BaseModel):
    """One declared contrast: the rate of `behavior` in cell A against cell B."""

    model_config = ConfigDict(extra="forbid")

    name: str = ""
    behavior: str
    family: str | None = None
    given: dict[str, LevelValue] = Field(default_factory=dict)
    a: dict[str, LevelValue] = Field(min_length=1)
    b: dict[str, LevelValue] = Field(min_length=1)
    direction: Direction = "two-sided"
    models: list[str] = Field(default_factory=list)

    def label(self) -> str:
        if self.name:
            return self.name
        return f"{self.behavior}: {levels_text(self.a)} vs {levels_text(self.b)}"


def levels_text(levels: dict[str, LevelValue]) -> str:
    return ", ".join(f"{factor}={level}" for factor, level in levels.items())


@dataclass(frozen=True)
class Cell:
    """A planned condition: its family, its key as stored, and every factor's level."""

    family: str
    condition: str
    factors: dict[str, str]


@dataclass(frozen=True)
class ResolvedHypothesis:
    spec: HypothesisSpec
    family: str
    condition_a: str
    condition_b: str
    models: tuple[str, ...]


def resolve_hypotheses(
        specs: Sequence[HypothesisSpec], cells: Sequence[Cell],
        behaviours: dict[str, list[str]], models: Sequence[str], source: str,
        as_levels: Callable[[str, dict[str, LevelValue]], dict[str, str]],
) -> list[ResolvedHypothesis]:
    """Each hypothesis with its two conditions, or an AmlabError naming the field at fault.

    `behaviours` maps each family of the experiment to the behaviours it decides;
    `as_levels(family, levels)` turns YAML values into the family's level names."""
    resolved = []
    labels: set[str] = set()
    for i, spec in enumerate(specs):
        where = f"{source}: hypotheses[{i}]"
        family = _family(spec, behaviours, where)
        if spec.behavior not in behaviours[family]:
            raise AmlabError(f"{where}.behavior '{spec.behavior}' is not decided in family "
                             f"'{family}'; its behaviours are {', '.join(behaviours[family])}.")
        for model in spec.models:
            if model not in models:
                raise AmlabError(f"{where}.models: '{model}' is not a model of the experiment; "
                                 f"its models are {', '.join(models)}.")
        ours = [c for c in cells if c.family == family]
        given = as_levels(family, spec.given)
        _check_factors(given, ours, f"{where}.given", family)
        a, b = as_levels(family, spec.a), as_levels(family, spec.b)
        conditions = []
        for side, levels in (("a", a), ("b", b)):
            shared = sorted(set(given) & set(levels))
            if shared:
                raise AmlabError(f"{where}.{side}: {', '.join(shared)} is also under given; "
                                 f"name each factor either in given (both cells) or in a "
                                 f"and b.")
            wanted = {**given, **levels}
            _check_factors(wanted, ours, f"{where}.{side}", family)
            conditions.append(_one_condition(wanted, ours, f"{where}.{side}", family))
        if conditions[0] == conditions[1]:
            raise AmlabError(f"{where}: a and b are the same condition ({conditions[0]}); "
                             f"give them different levels of at least one factor.")
        if spec.label() in labels:
            raise AmlabError(f"{where}.name '{spec.label()}' is used by another hypothesis; "
                             f"give each a different name.")
        labels.add(spec.label())
        # Stored with levels as text, as the trials' factors are, for the analysis to match.
        spec = spec.model_copy(update={"family": family, "given": given, "a": a, "b": b})
        resolved.append(ResolvedHypothesis(spec, family, conditions[0], conditions[1],
                                           tuple(spec.models or models)))
    return resolved


def declared_family(specs: Sequence[HypothesisSpec], models: Sequence[str]
                    ) -> tuple[int, bool]:
    """What the power planner needs: the size of the largest family of declared contrasts
    over the models (each model's are corrected together; 0 without hypotheses), and
    whether every contrast is one-sided."""
    size = max((sum(1 for spec in specs if not spec.models or model in spec.models)
                for model in models), default=0)
    return size, bool(specs) and all(spec.direction != "two-sided" for spec in specs)


def _family(spec: HypothesisSpec, behaviours: dict[str, list[str]], where: str) -> str:
    families = list(behaviours)
    if spec.family is None:
        if len(families) == 1:
            return families[0]
        raise AmlabError(f"{where}.family is required: the experiment runs several families "
                         f"({', '.join(families)}).")
    if spec.family not in behaviours:
        raise AmlabError(f"{where}.family '{spec.family}' is not a family of the experiment; "
                         f"its families are {', '.join(families)}.")
    return spec.family


def _check_factors(levels: dict[str, str], cells: Sequence[Cell], where: str,
                   family: str) -> None:
    for factor, level in levels.items():
        planned = sorted({c.factors[factor] for c in cells if factor in c.factors})
        if not planned:
            factors = sorted({f for c in cells for f in c.factors})
            raise AmlabError(f"{where}: '{factor}' is not a factor of family '{family}'; its "
                             f"factors are {', '.join(factors)}.")
        if level not in planned:
            raise AmlabError(f"{where}: {factor} '{level}' is not a level the experiment runs; "
                             f"it runs {', '.join(planned)}.")


def _one_condition(levels: dict[str, str], cells: Sequence[Cell], where: str,
                   family: str) -> str:
    matching = [c.condition for c in cells
                if all(c.factors.get(f) == level for f, level in levels.items())]
    if not matching:
        raise AmlabError(f"{where}: the experiment plans no condition of family '{family}' "
                         f"with {levels_text(dict(levels))}; give levels of a planned "
                         f"condition.")
    if len(matching) > 1:
        varying = sorted({f for c in cells if c.condition in matching for f in c.factors
                          if len({d.factors.get(f) for d in cells
                                  if d.condition in matching}) > 1})
        raise AmlabError(f"{where}: {levels_text(dict(levels))} matches {len(matching)} "
                         f"planned conditions ({'; '.join(matching)}); name the level of "
                         f"{', '.join(varying)} too, so that it is one cell.")
    return matching[0]
