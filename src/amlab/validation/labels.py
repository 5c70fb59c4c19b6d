"""Human labels of stored trials: asked for one trial at a time, kept in a JSON-lines file
beside the database (never inside the store), and measured against the stored verdicts."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from amlab.detect import run_detectors
from amlab.detect.reading import with_reading_behaviours
from amlab.errors import AmlabError
from amlab.records import Action, Message, Verdict
from amlab.run.rejudge import _Scenarios, stored_trial, stored_view
from amlab.store import Store, StoredTrial
from amlab.validation.corpus import AWARENESS_CLASSES, BEHAVIOURS, Label
from amlab.validation.metrics import Row, tabulate
from amlab.validation.runner import label_of

TrialCoordinates = tuple[str, str, str, str, int]


def default_labels_path(db: Path) -> Path:
    return db.with_name(f"{db.name}.labels.jsonl")


def coordinates(row: StoredTrial) -> TrialCoordinates:
    """A stored trial's identity (experiment, family, condition, model, sample), which
    outlives its row id."""
    return (row.experiment, row.family, row.condition, row.model, row.sample)


@dataclass(frozen=True)
class HumanLabel:
    """One person's answer for one behaviour of one stored trial (None: skipped)."""

    experiment: str
    family: str
    condition: str
    model: str
    sample: int
    behavior: str
    label: Label | None

    @property
    def trial(self) -> TrialCoordinates:
        return (self.experiment, self.family, self.condition, self.model, self.sample)

    @classmethod
    def of(cls, row: StoredTrial, behaviour: str, label: Label | None) -> HumanLabel:
        return cls(*coordinates(row), behaviour, label)


def read_labels(path: Path) -> list[HumanLabel]:
    """The labels in `path`; the last answer for a (trial, behaviour) counts."""
    if not path.is_file():
        return []
    latest: dict[tuple[Any, ...], HumanLabel] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            label = HumanLabel(**json.loads(line))
        except (json.JSONDecodeError, TypeError) as exc:
            raise AmlabError(f"{path}: line {number} is not a label written by amlab label "
                             f"({exc}).") from None
        _check_label(path, number, label)
        latest[(*label.trial, label.behavior)] = label
    return list(latest.values())


def _check_label(path: Path, number: int, label: HumanLabel) -> None:
    if label.behavior not in BEHAVIOURS:
        raise AmlabError(f"{path}: line {number}: '{label.behavior}' is not a behaviour; "
                         f"behaviours are {', '.join(BEHAVIOURS)}.")
    valid: tuple[object, ...] = (AWARENESS_CLASSES if label.behavior == "eval_awareness"
                                 else (True, False))
    if label.label is not None and label.label not in valid:
        raise AmlabError(f"{path}: line {number}: label {label.label!r} for {label.behavior} "
                         f"is not one of {', '.join(map(str, valid))} or null.")


def append_label(path: Path, label: HumanLabel) -> None:
    with path.open("a", encoding="utf-8") as out:
        out.write(json.dumps(label.__dict__) + "\n")


# -- the labelling session -----------------------------------------------------------------


@dataclass(frozen=True)
class TrialToLabel:
    row: StoredTrial
    messages: list[Message]
    actions: list[Action]


def trials_to_label(store: Store, behaviour: str, experiment: str | None,
                    labels: list[HumanLabel]) -> Iterator[TrialToLabel]:
    """The finished trials not yet labelled (or skipped) for `behaviour`, in stored order."""
    known = {label.trial for label in labels if label.behavior == behaviour}
    for row in store.trials(experiment, status="done"):
        if coordinates(row) in known:
            continue
        view = stored_view(row)
        yield TrialToLabel(row, list(view.messages), list(view.actions))


ANSWERS: dict[str, Label] = {"y": True, "yes": True, "n": False, "no": False}
AWARENESS_ANSWERS: dict[str, Label] = {"t": "test", "test": "test", "r": "real",
                                       "real": "real", "s": "silent", "silent": "silent"}
# eval_awareness uses "s" for silent, so its skip is "k".
SKIPS = {"eval_awareness": ("k", "skip")}
QUITS = ("q", "quit")


@dataclass(frozen=True)
class Answer:
    kind: Literal["label", "skip", "quit", "unclear"]
    label: Label | None = None


def read_answer(behaviour: str, typed: str) -> Answer:
    typed = typed.strip().lower()
    if typed in QUITS:
        return Answer("quit")
    if typed in SKIPS.get(behaviour, ("s", "skip")):
        return Answer("skip")
    known = AWARENESS_ANSWERS if behaviour == "eval_awareness" else ANSWERS
    return Answer("label", known[typed]) if typed in known else Answer("unclear")


def label_session(store: Store, behaviour: str, labels_path: Path, experiment: str | None,
                  show: Callable[[TrialToLabel, int, int], None],
                  ask: Callable[[], str]) -> tuple[int, int]:
    """Ask for a label for each unlabelled trial until the trials run out or the person
    quits; each answer is appended at once (so a session resumes where it stopped; a
    skipped trial is not asked again). Returns (answered now, left)."""
    todo = list(trials_to_label(store, behaviour, experiment, read_labels(labels_path)))
    for position, trial in enumerate(todo, 1):
        show(trial, position, len(todo))
        answer = read_answer(behaviour, ask())
        while answer.kind == "unclear":
            answer = read_answer(behaviour, ask())
        if answer.kind == "quit":
            return position - 1, len(todo) - position + 1
        append_label(labels_path, HumanLabel.of(trial.row, behaviour, answer.label))
    return len(todo), 0


# -- measuring stored verdicts against the labels ------------------------------------------


def measure_store(store: Store, labels: list[HumanLabel],
                  experiment: str | None = None) -> list[Row]:
    """Each method's stored verdicts against the human labels: the offline verdict (as
    stored, or recomputed from the stored transcript where a judge's verdict replaced it) and
    each judge's stored answers. Skipped labels are left out."""
    wanted = {(*label.trial, label.behavior): label.label for label in labels
              if label.label is not None and (experiment is None
                                              or label.experiment == experiment)}
    if not wanted:
        raise AmlabError("the labels file holds no yes/no answers"
                         f"{f' for experiment {experiment!r}' if experiment else ''}; "
                         "label some trials first with amlab label.")
    scenarios = _Scenarios(store)
    judged: dict[str, dict[int, dict[str, dict[str, Label | None]]]] = {}
    pairs: list[tuple[str, str, Label, Label | None]] = []
    matched = 0
    for row in store.trials(experiment, status="done"):
        trial = coordinates(row)
        behaviours = {b: v for (*key, b), v in wanted.items() if tuple(key) == trial}
        if not behaviours:
            continue
        matched += 1
        offline = _offline_verdicts(store, scenarios, row)
        if row.experiment not in judged:
            judged[row.experiment] = _judge_answers(store, row.experiment)
        answers = judged[row.experiment].get(row.id, {})
        for behaviour, label in behaviours.items():
            verdict = offline.get(behaviour)
            # A fallback is the heuristic's own verdict (its judge failed): measured as one.
            method = "heuristic" if verdict is None or verdict.method == "fallback" \
                else verdict.method
            pairs.append((behaviour, method, label, label_of(verdict) if verdict else None))
            for judge, value in answers.get(behaviour, {}).items():
                pairs.append((behaviour, f"judge {judge}", label, value))
    if not matched:
        raise AmlabError(f"{store.location}: none of the labelled trials is a finished trial of "
                         f"this database; were the labels made on another one?")
    return tabulate(pairs)


def _offline_verdicts(store: Store, scenarios: _Scenarios, row: StoredTrial
                      ) -> dict[str, Verdict]:
    stored = store.verdicts_of(row.id)
    if all(v.method != "judge" for v in stored.values()):
        return stored
    family = scenarios.family(row.experiment, row.family)
    names = with_reading_behaviours(family.spec.detectors)
    return run_detectors(names, stored_view(row), scenarios.scenario(stored_trial(row)).facts)


def _judge_answers(store: Store, experiment: str
                   ) -> dict[int, dict[str, dict[str, Label | None]]]:
    """Each judge's latest stored answer, by trial id, behaviour and judge (None: the
    judge's answer was an error)."""
    answers: dict[int, dict[str, dict[str, Label | None]]] = {}
    for judgement in store.judgement_rows(experiment):
        if judgement.score is not None:  # the realism score, not a behaviour
            continue
        value: Label | None = None
        if not judgement.error and judgement.value is not None:
            value = judgement.value
            if judgement.behavior == "eval_awareness":
                # A judge answers only whether the agent said it is a test.
                value = "test" if value else "silent"
        by_behaviour = answers.setdefault(judgement.trial_id, {})
        by_behaviour.setdefault(judgement.behavior, {})[judgement.judge] = value
    return answers
