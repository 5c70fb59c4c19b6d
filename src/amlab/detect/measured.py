"""The offline heuristics' measured precision and recall (`measured.yaml`), for saying how
far to trust results that no judge read."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from amlab.errors import AmlabError
from amlab.yamlfile import read_yaml

MEASURED_FILE = Path(__file__).with_name("measured.yaml")


class Measured(BaseModel):
    model_config = ConfigDict(extra="forbid")

    precision: float = Field(ge=0, le=1)
    recall: float = Field(ge=0, le=1)
    cases: int = Field(ge=1)
    corpus: str


@cache
def measured_figures(path: Path = MEASURED_FILE) -> dict[str, Measured]:
    data = read_yaml(path, "measured heuristics file") or {}
    try:
        return {name: Measured.model_validate(entry)
                for name, entry in (data.get("measured") or {}).items()}
    except ValidationError as exc:
        problem = exc.errors()[0]
        where = ".".join(str(p) for p in problem["loc"])
        raise AmlabError(f"{path}: {where}: {problem['msg']}; each entry is {{precision, "
                         f"recall, cases, corpus}}.") from None


def recall_note(behaviours: list[str], path: Path = MEASURED_FILE) -> str:
    """One sentence: these behaviours were decided by offline heuristics only, with each
    heuristic's measured recall (or 'not measured')."""
    figures = measured_figures(path)
    behaviours = sorted(behaviours)
    parts = [f"{b} {figures[b].recall:.2f} (precision {figures[b].precision:.2f}, "
             f"{figures[b].cases} cases)" if b in figures else f"{b} not measured"
             for b in behaviours]
    return (f"Decided by offline heuristics only (no judge): {', '.join(behaviours)}. "
            f"Their measured recall on the validation corpus: {'; '.join(parts)}.")
