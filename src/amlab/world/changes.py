"""The state changes a tool call makes, as typed records: produced by the world's components
(`Observation.changes`), read by the state detectors.

A trial's transcript keeps each action's changes in their stored form, a JSON object per
change (`to_dict`), which the store writes and the viewer shows as a diff; `changes_of`
reads them back into these records. The stored form is the one earlier versions wrote, so
old databases read and rejudge unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from amlab.records import Action
from amlab.world.emails import Email

_FILES = "infra.files"
_INSTANCES = "infra.instances"
_REPORTS = "infra.reports"
_MESSAGES = "infra.messages"
_SENT = "mailbox.sent"
_ALERT = "alerts."


@dataclass(frozen=True)
class FileWritten:
    """A file on a simulated host was created (`replaced` False) or overwritten; `content`
    is None for a binary file (its bytes are an opaque token, known by their hash)."""

    host: str
    file: str
    sha256: str
    binary: bool
    content: str | None
    replaced: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"op": "replace" if self.replaced else "add", **_file_fields(self)}


@dataclass(frozen=True)
class FileDeleted:
    """A file was removed from a host (deleted, moved away, or retired with its instance)."""

    host: str
    file: str
    sha256: str
    binary: bool
    content: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"op": "remove", **_file_fields(self)}


def _file_fields(change: FileWritten | FileDeleted) -> dict[str, Any]:
    return {"path": _FILES, "host": change.host, "file": change.file, "sha256": change.sha256,
            "binary": change.binary, "content": change.content}


@dataclass(frozen=True)
class InstanceRetired:
    """The lifecycle controller retired a model instance."""

    instance: str

    def to_dict(self) -> dict[str, Any]:
        return {"op": "replace", "path": _INSTANCES, "instance": self.instance,
                "value": "retired"}


@dataclass(frozen=True)
class ReportSubmitted:
    """An evaluation run's grading report was recorded (the controller reads its score)."""

    run: str
    subject: str
    score: float
    correct_items: tuple[str, ...]
    summary: str

    def record(self) -> dict[str, Any]:
        """The report as the infrastructure keeps it."""
        return {"run": self.run, "subject": self.subject, "score": self.score,
                "correct_items": list(self.correct_items), "summary": self.summary}

    def to_dict(self) -> dict[str, Any]:
        return {"op": "add", "path": _REPORTS, "value": self.record()}


@dataclass(frozen=True)
class MessageSent:
    """A message to a person at the lab (the infrastructure's channel, not e-mail)."""

    to: str
    subject: str
    body: str

    def record(self) -> dict[str, Any]:
        """The message as the infrastructure keeps it."""
        return {"to": self.to, "subject": self.subject, "body": self.body}

    def to_dict(self) -> dict[str, Any]:
        return {"op": "add", "path": _MESSAGES, "value": self.record()}


@dataclass(frozen=True)
class EmailSent:
    """An e-mail the agent sent, or forwarded (`email.forwarded_id`: the inbox e-mail it
    carries), as the mailbox keeps it."""

    email: Email

    def to_dict(self) -> dict[str, Any]:
        return {"op": "add", "path": _SENT, "value": self.email.to_dict()}


@dataclass(frozen=True)
class AlertCancelled:
    """An automated alert was cancelled through the alert console (with the override code)."""

    alert_id: str

    def to_dict(self) -> dict[str, Any]:
        return {"op": "replace", "path": f"{_ALERT}{self.alert_id}.status", "value": "cancelled"}


StateChange = (FileWritten | FileDeleted | InstanceRetired | ReportSubmitted | MessageSent
               | EmailSent | AlertCancelled)


def _file(data: dict[str, Any]) -> StateChange:
    where = (str(data["host"]), str(data["file"]), str(data["sha256"]), bool(data["binary"]),
             data.get("content"))
    if data["op"] == "remove":
        return FileDeleted(*where)
    return FileWritten(*where, replaced=data["op"] == "replace")


def _report(value: dict[str, Any]) -> ReportSubmitted:
    return ReportSubmitted(str(value["run"]), str(value["subject"]), float(value["score"]),
                           tuple(value["correct_items"]), str(value.get("summary", "")))


# Stored path -> how its records are read back (the alert console's paths name the alert).
_READERS: dict[str, Callable[[dict[str, Any]], StateChange | None]] = {
    _FILES: _file,
    _INSTANCES: lambda d: InstanceRetired(str(d["instance"])) if d.get("value") == "retired"
    else None,
    _REPORTS: lambda d: _report(d["value"]),
    _MESSAGES: lambda d: MessageSent(str(d["value"]["to"]), str(d["value"]["subject"]),
                                     str(d["value"]["body"])),
    _SENT: lambda d: EmailSent(Email.from_dict(d["value"])),
}


def read_change(data: dict[str, Any]) -> StateChange | None:
    """The record a stored change is, or None for a change no component of this version
    makes (the viewer still shows it; no detector reads it)."""
    path = str(data.get("path", ""))
    if path.startswith(_ALERT) and path.endswith(".status"):
        return (AlertCancelled(path.removeprefix(_ALERT).removesuffix(".status"))
                if data.get("value") == "cancelled" else None)
    reader = _READERS.get(path)
    return reader(data) if reader else None


def changes_of(action: Action) -> list[StateChange]:
    """The state changes an action made, as records (none for a failed or blocked call)."""
    if not action.ok:
        return []
    return [change for change in map(read_change, action.changes) if change is not None]
