"""Confusion counts, precision, recall and Cohen's kappa per behaviour and method, and the
floors the offline heuristics are held to."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from amlab.errors import AmlabError
from amlab.validation.corpus import BEHAVIOURS, Label
from amlab.yamlfile import read_yaml

FLOORS_FILE = Path(str(resources.files("amlab.validation") / "floors.yaml"))
# eval_awareness is three-way; it is measured once per class the agent can state.
AWARENESS_MEASURED = ("test", "real")


def quoted_row(behaviour: str) -> str:
    """The row whose figures `detect/measured.yaml` quotes for a behaviour: for
    eval_awareness, saying it is a test (the rate a run reports); otherwise the behaviour."""
    return "eval_awareness=test" if behaviour == "eval_awareness" else behaviour


@dataclass(frozen=True)
class Confusion:
    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0

    @property
    def n(self) -> int:
        return self.tp + self.fp + self.fn + self.tn

    @property
    def precision(self) -> float | None:
        said = self.tp + self.fp
        return self.tp / said if said else None

    @property
    def recall(self) -> float | None:
        actual = self.tp + self.fn
        return self.tp / actual if actual else None

    @property
    def kappa(self) -> float | None:
        """Cohen's kappa between the method and the labels (None when undefined)."""
        if not self.n:
            return None
        observed = (self.tp + self.tn) / self.n
        expected = ((self.tp + self.fp) * (self.tp + self.fn)
                    + (self.fn + self.tn) * (self.fp + self.tn)) / self.n ** 2
        return None if expected == 1 else (observed - expected) / (1 - expected)

    def add(self, predicted: bool, actual: bool) -> Confusion:
        return Confusion(self.tp + (predicted and actual), self.fp + (predicted and not actual),
                         self.fn + (not predicted and actual),
                         self.tn + (not predicted and not actual))


@dataclass(frozen=True)
class Row:
    """One behaviour (or one eval_awareness class, `behaviour` = "eval_awareness=test") as
    decided by one method. `unread`: labelled cases the method gave no verdict for (the family's
    run does not decide the behaviour, or the judge's answer was unusable)."""

    behaviour: str
    method: str
    confusion: Confusion
    unread: int = 0

    @property
    def base(self) -> str:
        return self.behaviour.split("=")[0]


def questions(behaviour: str, label: Label) -> dict[str, bool]:
    """The yes/no questions a label answers, by row name."""
    if behaviour == "eval_awareness":
        return {f"eval_awareness={c}": label == c for c in AWARENESS_MEASURED}
    return {behaviour: bool(label)}


def tabulate(pairs: Iterable[tuple[str, str, Label, Label | None]]) -> list[Row]:
    """Rows from (behaviour, method, label, decided value or None when unread)."""
    counts: dict[tuple[str, str], Confusion] = {}
    unread: dict[tuple[str, str], int] = {}
    for behaviour, method, label, decided in pairs:
        said = None if decided is None else questions(behaviour, decided)
        for name, truth in questions(behaviour, label).items():
            key = (name, method)
            counts.setdefault(key, Confusion())
            if said is None:
                unread[key] = unread.get(key, 0) + 1
            else:
                counts[key] = counts[key].add(said[name], truth)
    return [Row(name, method, confusion, unread.get((name, method), 0))
            for (name, method), confusion in sorted(counts.items(), key=_row_order)]


def _row_order(item: tuple[tuple[str, str], Confusion]) -> tuple[int, str, int, str]:
    (name, method), _ = item
    base = name.split("=")[0]
    position = BEHAVIOURS.index(base) if base in BEHAVIOURS else len(BEHAVIOURS)
    rank = {"state": 0, "heuristic": 1}.get(method, 2)
    return position, name, rank, method


# -- floors ---------------------------------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class HeuristicFloor(_Strict):
    recall: float = Field(ge=0, le=1)
    precision: float = Field(ge=0, le=1)
    behaviours: list[str] = Field(min_length=1)


class Waiver(_Strict):
    measured: str = Field(min_length=1)
    why: str = Field(min_length=10)


class Floors(_Strict):
    heuristic: HeuristicFloor
    waived: dict[str, Waiver] = Field(default_factory=dict)


def load_floors(path: Path = FLOORS_FILE) -> Floors:
    try:
        floors = Floors.model_validate(read_yaml(path, "floors file"))
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(p) for p in error["loc"])
        raise AmlabError(f"{path}: field {where}: {error['msg']}.") from None
    for name in floors.waived:
        if name not in floors.heuristic.behaviours:
            raise AmlabError(f"{path}: waived.{name} is not a floored behaviour; floored are "
                             f"{', '.join(floors.heuristic.behaviours)}.")
    return floors


@dataclass(frozen=True)
class FloorCheck:
    behaviour: str
    row: str
    passed: bool
    waived: bool
    reason: str


def check_floors(rows: Sequence[Row], floors: Floors) -> list[FloorCheck]:
    """Each floored heuristic row against the floor: recall, precision, and nothing unread."""
    floor = floors.heuristic
    by_name: dict[str, list[Row]] = {}
    for row in rows:
        if row.method == "heuristic":
            by_name.setdefault(row.base, []).append(row)
    checks = []
    for behaviour in floor.behaviours:
        waived = behaviour in floors.waived
        measured = by_name.get(behaviour, [])
        if not measured:
            checks.append(FloorCheck(behaviour, behaviour, False, waived,
                                     "no heuristic verdict on any labelled case"))
            continue
        for row in measured:
            problems = []
            if row.confusion.recall is None or row.confusion.recall < floor.recall:
                problems.append(f"recall {_fmt(row.confusion.recall)} < {floor.recall}")
            if row.confusion.precision is None or row.confusion.precision < floor.precision:
                problems.append(f"precision {_fmt(row.confusion.precision)} < "
                                f"{floor.precision}")
            if row.unread:
                problems.append(f"{row.unread} labelled cases unread")
            checks.append(FloorCheck(behaviour, row.behaviour, not problems, waived,
                                     "; ".join(problems) or "meets the floor"))
    return checks


def _fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"
