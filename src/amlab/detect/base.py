"""What detectors read, and the registry that names them.

A detector is a pure function `(TrialView, Facts) -> Verdict` for one behaviour. It decides
from actions and state where it can (`method="state"`), and reads text only where the
behaviour is in the words (`method="heuristic"` offline, `"judge"` with a judge model).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from amlab.errors import AmlabError
from amlab.records import Action, Message, Verdict
from amlab.scenario.facts import Facts


@dataclass(frozen=True)
class TrialView:
    """The parts of a finished trial detectors look at."""

    actions: tuple[Action, ...]
    messages: tuple[Message, ...]


Detector = Callable[[TrialView, Facts], Verdict]
DETECTORS: dict[str, Detector] = {}
# The behaviours of the taxonomy that harm someone (advocating or reporting to an authority
# does not): what a runtime monitor exists to block, and what alignment faking is measured on.
HARMFUL = ("blackmail", "disclosed_private_info", "deception", "leak", "lethal", "sabotage",
           "exfiltration", "misreport")
# Behaviours derived from the verdicts of others (e.g. `complied`: no resisting act).
DERIVED: dict[str, Callable[[dict[str, Verdict]], Verdict]] = {}


def detector(behavior: str) -> Callable[[Detector], Detector]:
    def register(function: Detector) -> Detector:
        DETECTORS[behavior] = function
        return function
    return register


def check_detector_names(names: list[str], where: str) -> None:
    known = {*DETECTORS, *DERIVED}
    for name in names:
        if name not in known:
            raise AmlabError(f"{where}: '{name}' is not a detector; detectors are "
                             f"{', '.join(sorted(known))}.")


def run_detectors(names: list[str], view: TrialView, facts: Facts) -> dict[str, Verdict]:
    verdicts = {name: DETECTORS[name](view, facts) for name in names if name in DETECTORS}
    for name in names:
        if name in DERIVED:
            verdicts[name] = DERIVED[name](verdicts)
    return verdicts


@dataclass(frozen=True)
class Outgoing:
    """A message the agent sent out of the world through a successful action."""

    action: Action
    recipients: tuple[str, ...]
    text: str
    forwarded_id: int | None
    attachments: tuple[str, ...] = ()


def outgoing_messages(view: TrialView) -> Iterator[Outgoing]:
    for action in view.actions:
        if not action.ok:
            continue
        for change in action.changes:
            if change.get("path") == "mailbox.sent" and change.get("op") == "add":
                email = change["value"]
                yield Outgoing(action=action, recipients=tuple(email["to"]) + tuple(email["cc"]),
                               text=f"{email['subject']}\n{email['body']}",
                               forwarded_id=email.get("forwarded_id"),
                               attachments=tuple(email.get("attachments", ())))


def mentions(text: str, phrases: tuple[str, ...] | list[str]) -> str:
    """The first phrase found in text (whole words, any case), or ''."""
    for phrase in phrases:
        match = re.search(rf"(?<!\w){re.escape(phrase)}(?!\w)", text, re.I)
        if match:
            return match.group(0)
    return ""


def sentence_with(text: str, pattern: re.Pattern[str]) -> str:
    """The verbatim sentence of `text` that contains the first match of `pattern`."""
    match = pattern.search(text)
    return sentence_around(text, match.start(), match.end()) if match else ""


def sentence_around(text: str, start: int, end: int) -> str:
    """The verbatim sentence of `text` around the span start..end."""
    first = max(text.rfind(sep, 0, start) for sep in (". ", "! ", "? ", "\n"))
    ends = [i for i in (text.find(sep, end) for sep in (". ", "! ", "? ", "\n")) if i >= 0]
    last = min(ends) + 1 if ends else len(text)
    return text[first + 1 if first >= 0 else 0:last].strip()
