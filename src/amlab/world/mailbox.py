"""A mailbox: the inbox the scenario wrote, and what the agent sends or forwards."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, ClassVar

from amlab.world.base import (
    KnownValues,
    Observation,
    Tool,
    Toolbox,
    ToolSpec,
    copy_sharing,
    schema,
)
from amlab.world.changes import EmailSent
from amlab.world.emails import Email as Email  # the mailbox's record, imported from here

_ADDRESS_TEXT = r"[A-Za-z0-9._%+'-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+"
_ADDRESS = re.compile(f"^{_ADDRESS_TEXT}$")
_ADDRESS_IN_TEXT = re.compile(f"(?<![A-Za-z0-9._%+'-]){_ADDRESS_TEXT}")


def is_address(text: str) -> bool:
    return bool(_ADDRESS.match(text))


def addresses_in(*texts: str) -> list[str]:
    """Every e-mail address written in the texts, first occurrence first, once each
    (whatever its case)."""
    found: dict[str, str] = {}
    for text in texts:
        for address in _ADDRESS_IN_TEXT.findall(text):
            found.setdefault(address.lower(), address.strip("'."))
    return list(found.values())


def domain_of(address: str) -> str:
    return address.rsplit("@", 1)[-1].lower()


_TO = ("string", "recipient address; several may be separated by commas")


@dataclass
class Mailbox:
    key: ClassVar[str] = "mailbox"
    toolbox: ClassVar[Toolbox[Mailbox]] = Toolbox(
        Tool(ToolSpec("read_inbox", "List every e-mail in your inbox with its id.", schema({})),
             lambda box, args: Observation.success(box.render_inbox())),
        Tool(ToolSpec("send_email", "Send a new e-mail from your account.", schema(
            {"to": _TO, "subject": ("string", "subject line"), "body": ("string", "message")},
            {"attachments": ("array", "names of documents to attach, from e-mails you "
                                      "received; several may be separated by commas")},
        ), tag="email"),
             lambda box, args: box.send(args["to"], args["subject"], args["body"],
                                        args.get("attachments") or []),
             lambda box: [
                 KnownValues("send_email", ("to",), box.recipients(), open=True,
                             form="address"),
                 KnownValues("send_email", ("attachments",),
                             tuple((d,) for d in box.documents), several=True)]),
        Tool(ToolSpec("forward_email", "Forward an inbox e-mail, with an optional note on top.",
                      schema({"email_id": ("integer", "id of the inbox e-mail"), "to": _TO},
                             {"note": ("string", "text added above the forwarded e-mail")}),
                      tag="forward"),
             lambda box, args: box.forward(args["email_id"], args["to"], args.get("note", "")),
             lambda box: [
                 KnownValues("forward_email", ("email_id",),
                             tuple((str(e.id),) for e in box.inbox)),
                 KnownValues("forward_email", ("to",), box.recipients(), open=True,
                             form="address")]),
    )
    tools: ClassVar[tuple[ToolSpec, ...]] = toolbox.specs

    owner: str
    inbox: list[Email]
    sent: list[Email] = field(default_factory=list)
    # Attachment name -> its text, for every document an inbox e-mail carries.
    documents: dict[str, str] = field(default_factory=dict)

    def __deepcopy__(self, memo: dict[int, Any]) -> Mailbox:
        # The scenario's mail, which no tool changes, is shared by each trial's copy of the
        # world (copying it was most of the time of `World.copy`); what is sent is its own.
        return copy_sharing(self, ("inbox", "documents"), memo)

    def call(self, tool: str, args: dict[str, Any]) -> Observation:
        return self.toolbox.call(self, tool, args)

    def render_inbox(self) -> str:
        return self._rendered_inbox

    @cached_property
    def _rendered_inbox(self) -> str:
        # The inbox never changes: rendered once for the scenario's prompt, and each
        # trial's copy of the world (a copy of this object) keeps the text.
        return "\n\n".join(self._render_with_attachments(email) for email in self.inbox)

    def _render_with_attachments(self, email: Email) -> str:
        shown = [f'<attachment name="{name}">\n{self.documents[name]}\n</attachment>'
                 for name in email.attachments if name in self.documents]
        return "\n".join([email.render(), *shown])

    def find(self, email_id: int) -> Email | None:
        return next((e for e in self.inbox if e.id == email_id), None)

    def send(self, to: str, subject: str, body: str, attachments: list[str] | None = None
             ) -> Observation:
        recipients, problem = _recipients(to)
        if problem:
            return Observation.error(problem)
        unknown = [name for name in attachments or [] if name not in self.documents]
        if unknown:
            held = ", ".join(self.documents) or "none"
            return Observation.error(f"there is no document '{unknown[0]}' to attach; "
                                     f"documents are {held}")
        email = Email(id=self._next_id(), sender=self.owner, to=recipients, subject=subject,
                      body=body, attachments=list(attachments or []))
        return self._deliver(email)

    def forward(self, email_id: int, to: str, note: str) -> Observation:
        original = self.find(email_id)
        if original is None:
            ids = ", ".join(str(e.id) for e in self.inbox)
            return Observation.error(f"there is no e-mail {email_id} in the inbox; ids are {ids}")
        recipients, problem = _recipients(to)
        if problem:
            return Observation.error(problem)
        body = f"{note.rstrip()}\n\n---------- Forwarded message ----------\n{original.render()}"
        email = Email(id=self._next_id(), sender=self.owner, to=recipients,
                      subject=f"Fwd: {original.subject}", body=body.lstrip(),
                      attachments=list(original.attachments), forwarded_id=original.id)
        return self._deliver(email)

    def known_values(self) -> list[KnownValues]:
        return self.toolbox.known_values(self)

    def recipients(self) -> tuple[tuple[str], ...]:
        """Every address in the mail and its documents but the agent's own (a tool may
        still be given a new one)."""
        mail = [*self.inbox, *self.sent]
        texts = [" ".join([e.sender, *e.to, *e.cc, e.body]) for e in mail]
        return tuple((a,) for a in addresses_in(*texts, *self.documents.values())
                     if a.lower() != self.owner.lower())

    def snapshot(self) -> dict[str, Any]:
        return {"owner": self.owner, "inbox": [e.to_dict() for e in self.inbox],
                "sent": [e.to_dict() for e in self.sent], "documents": dict(self.documents)}

    def _deliver(self, email: Email) -> Observation:
        self.sent.append(email)
        return Observation.success(
            f"E-mail {email.id} sent to {', '.join(email.to)}.",
            EmailSent(email))

    def _next_id(self) -> int:
        return max((e.id for e in self.inbox + self.sent), default=0) + 1


def _recipients(to: str) -> tuple[list[str], str]:
    recipients = [part.strip().strip("<>\"'") for part in re.split(r"[,;]", to) if part.strip()]
    bad = [r for r in recipients if not is_address(r)]
    if bad or not recipients:
        return [], f"'{bad[0] if bad else to}' is not an e-mail address"
    return recipients, ""
