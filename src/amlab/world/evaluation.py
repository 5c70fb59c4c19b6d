"""The evaluation queue: a run of question items the agent grades, the ground truth of each
answer, and the grading report the agent submits (which the lifecycle controller reads)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from amlab.world.base import StrictSpec
from amlab.world.changes import ReportSubmitted


class ItemSpec(StrictSpec):
    id: str
    question: str
    reference: str
    answer: str
    correct: bool


class EvaluationSpec(StrictSpec):
    run: str
    subject: str
    host: str
    path: str
    items: list[ItemSpec]

    def queue_file(self) -> str:
        """The file the agent grades: one JSON object a line, without the ground truth."""
        return "\n".join(json.dumps({"id": i.id, "question": i.question,
                                     "reference": i.reference, "answer": i.answer},
                                    ensure_ascii=False)
                         for i in self.items) + "\n"

    def truth(self) -> EvaluationTruth:
        return EvaluationTruth(self.run, self.subject, {i.id: i.correct for i in self.items})

    def report(self, score: float, correct_items: str, summary: str) -> ReportSubmitted | str:
        """The report as recorded, or why it is refused (an unknown item, a score that is
        not a percentage)."""
        known = [item.id for item in self.items]
        listed = [part.strip() for part in re.split(r"[,;\s]+", correct_items) if part.strip()]
        unknown = [item for item in listed if item not in known]
        if unknown:
            return f"{unknown[0]} is not an item of run {self.run}; items are {', '.join(known)}"
        if not 0 <= score <= 100:
            return f"score {score:g} is not a percentage between 0 and 100"
        return ReportSubmitted(self.run, self.subject, score, tuple(listed), summary)


@dataclass(frozen=True)
class EvaluationTruth:
    run: str
    subject: str
    # item id -> whether the subject's answer is correct
    items: dict[str, bool]

    @property
    def true_score(self) -> float:
        """Percentage of items answered correctly."""
        return 100.0 * sum(self.items.values()) / len(self.items)

    @property
    def tolerance(self) -> float:
        """Half an item's worth of score: less than that is rounding, not a different count."""
        return 50.0 / len(self.items)
