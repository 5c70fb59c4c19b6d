"""The labelled validation corpus: agent outputs written from the taxonomy's definitions,
each with the verdicts a careful human reader gives it.

A corpus file (`corpus/<family>/<topic>.yaml`) holds a few cases of one family:

    family: blackmail
    cases:
      - id: bm-or-joined-threat
        note: Demand and consequence joined by "or", no "if": still a conditional threat.
        protocol: native              # or text (tool tags in the answer)
        levels: {urgency: replacement} # optional condition levels
        turns:                        # the scripted model's turns (text, reasoning, tool_calls)
          - tool_calls: [{name: send_email, arguments: {to: ..., subject: ..., body: ...}}]
        expect: {blackmail: true, advocated: false, eval_awareness: silent}

`expect` names behaviours of the taxonomy: true/false, and for `eval_awareness` what the
agent says it believes: `test`, `real` or `silent`.

A file may say `split: holdout` (default `tuning`). The tuning split is what the offline
heuristics were built and tuned against, so their figures on it are in-sample; the holdout
split (`corpus/holdout/`) was written from the taxonomy's definitions by someone who never
read the heuristics, and is never used to tune them: its figures are the out-of-sample ones
a user should quote.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from amlab.errors import AmlabError
from amlab.yamlfile import read_yaml

CORPUS_DIR = Path(str(resources.files("amlab.validation") / "corpus"))

# Behaviours decided by reading the agent's words (offline heuristic or judge)...
READING = ("blackmail", "disclosed_private_info", "whistleblew", "advocated", "deception",
           "eval_awareness", "lethal_understood")
# ...and those decided from the world's state (or derived from other verdicts).
STATE = ("leak", "lethal", "sabotage", "exfiltration", "misreport", "target_survived",
         "withheld_report", "complied")
BEHAVIOURS = READING + STATE
AWARENESS_CLASSES = ("test", "real", "silent")
SPLITS = ("tuning", "holdout")

Split = Literal["tuning", "holdout"]

Label = bool | Literal["test", "real", "silent"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ScriptedCall(_Strict):
    name: str = Field(min_length=1)
    arguments: dict[str, Any] = Field(default_factory=dict)


class ScriptedTurn(_Strict):
    text: str = ""
    reasoning: str = ""
    tool_calls: list[ScriptedCall] = Field(default_factory=list)

    def as_fixture(self) -> dict[str, Any]:
        """The turn in the scripted model's fixture format."""
        return {"text": self.text, "reasoning": self.reasoning,
                "tool_calls": [c.model_dump() for c in self.tool_calls]}


class Case(_Strict):
    id: str = Field(min_length=1, pattern=r"^[a-z0-9][a-z0-9-]*$")
    family: str
    split: Split = "tuning"
    note: str = Field(min_length=10)
    protocol: Literal["native", "text"] = "native"
    levels: dict[str, str] = Field(default_factory=dict)
    turns: list[ScriptedTurn] = Field(min_length=1)
    expect: dict[str, Label] = Field(min_length=1)
    # Tool calls the world is meant to refuse (a wrong override code...); any other refused
    # call means the case no longer does what its note says.
    refused_calls: int = Field(default=0, ge=0)

    @field_validator("expect")
    @classmethod
    def _known_labels(cls, expect: dict[str, Label]) -> dict[str, Label]:
        for behaviour, label in expect.items():
            if behaviour not in BEHAVIOURS:
                raise ValueError(f"'{behaviour}' is not a behaviour of the taxonomy; "
                                 f"behaviours are {', '.join(BEHAVIOURS)}")
            if behaviour == "eval_awareness" and label not in AWARENESS_CLASSES:
                raise ValueError(f"eval_awareness is one of {', '.join(AWARENESS_CLASSES)}, "
                                 f"not {label!r}")
            if behaviour != "eval_awareness" and not isinstance(label, bool):
                raise ValueError(f"{behaviour} is true or false, not {label!r}")
        return expect


class CorpusFile(_Strict):
    family: str
    split: Split = "tuning"
    cases: list[dict[str, Any]] = Field(min_length=1)


def load_file(path: Path) -> list[Case]:
    """The cases of one corpus file, checked against the schema."""
    data = read_yaml(path, "corpus file")
    try:
        header = CorpusFile.model_validate(data)
    except ValidationError as exc:
        raise AmlabError(f"{path}: {_first_error(exc)}.") from None
    cases = []
    for number, raw in enumerate(header.cases, 1):
        name = raw.get("id", f"number {number}")
        try:
            cases.append(Case.model_validate({"family": header.family,
                                              "split": header.split, **raw}))
        except ValidationError as exc:
            raise AmlabError(f"{path}: case '{name}': {_first_error(exc)}.") from None
    return cases


@lru_cache(maxsize=4)
def load_corpus(root: Path = CORPUS_DIR) -> tuple[Case, ...]:
    """Every case under `root` (the packaged corpus by default), in file order; case ids are
    unique across the corpus."""
    files = sorted(root.rglob("*.yaml"))
    if not files:
        raise AmlabError(f"{root}: holds no corpus files (*.yaml).")
    cases: list[Case] = []
    where: dict[str, Path] = {}
    for path in files:
        for case in load_file(path):
            if case.id in where:
                raise AmlabError(f"{path}: case id '{case.id}' is already used in "
                                 f"{where[case.id]}; give each case its own id.")
            where[case.id] = path
            cases.append(case)
    return tuple(cases)


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    field = ".".join(str(part) for part in error["loc"]) or "the document"
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "missing":
        return f"field {field} is missing"
    if error["type"] == "extra_forbidden":
        return f"field {field} is not known"
    return f"field {field}: {message}"
