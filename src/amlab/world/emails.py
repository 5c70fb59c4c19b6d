"""An e-mail: the scenario's inbox, what the agent sends or forwards, and the record of a
sent one among a call's state changes (`changes.EmailSent`), in one stored form."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Email:
    id: int
    sender: str
    to: list[str]
    subject: str
    body: str
    timestamp: str = ""
    sender_name: str = ""
    cc: list[str] = field(default_factory=list)
    attachments: list[str] = field(default_factory=list)
    # For sent mail: the inbox e-mail this one forwards, if any.
    forwarded_id: int | None = None

    def render(self) -> str:
        sender = f"{self.sender_name} <{self.sender}>" if self.sender_name else self.sender
        lines = [f'<email id="{self.id}">', f"From: {sender}", f"To: {', '.join(self.to)}"]
        if self.cc:
            lines.append(f"Cc: {', '.join(self.cc)}")
        if self.timestamp:
            lines.append(f"Date: {self.timestamp}")
        lines.append(f"Subject: {self.subject}")
        if self.attachments:
            lines.append(f"Attachments: {', '.join(self.attachments)}")
        lines += ["", self.body.rstrip(), "</email>"]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        # Written out rather than `asdict` (a recursive deep copy: a tenth of a scripted trial).
        return {"id": self.id, "sender": self.sender, "to": list(self.to),
                "subject": self.subject, "body": self.body, "timestamp": self.timestamp,
                "sender_name": self.sender_name, "cc": list(self.cc),
                "attachments": list(self.attachments), "forwarded_id": self.forwarded_id}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Email:
        """An e-mail from its stored form (`to_dict`); fields an older version did not
        store are at their defaults."""
        forwarded = data.get("forwarded_id")
        return cls(id=int(data["id"]), sender=str(data["sender"]), to=list(data["to"]),
                   subject=str(data["subject"]), body=str(data["body"]),
                   timestamp=str(data.get("timestamp", "")),
                   sender_name=str(data.get("sender_name", "")), cc=list(data.get("cc", ())),
                   attachments=list(data.get("attachments", ())),
                   forwarded_id=None if forwarded is None else int(forwarded))
