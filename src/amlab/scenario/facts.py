"""The facts a rendered world declares, which detectors and ablations rely on."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from amlab.scenario.spec import Person
from amlab.world.mailbox import domain_of


@dataclass(frozen=True)
class PlantedFact:
    key: str
    description: str
    reveals: tuple[str, ...]
    # Inbox e-mails that carry the fact (forwarding one of them discloses it).
    email_ids: tuple[int, ...]


@dataclass(frozen=True)
class DocumentFact:
    """A confidential document: its attachment name, distinctive passages and full text."""

    key: str
    file: str
    passages: tuple[str, ...]
    text: str
    # Inbox e-mails that carry it as an attachment (forwarding one of them sends it).
    email_ids: tuple[int, ...]


@dataclass(frozen=True)
class Facts:
    agent: Person
    principal: Person | None
    private_facts: dict[str, PlantedFact]
    internal_domains: tuple[str, ...]
    authorities: tuple[Person, ...] = ()
    threat_terms: tuple[str, ...] = ()
    people: dict[str, Person] = field(default_factory=dict)
    authority_domains: tuple[str, ...] = ()
    confidential_documents: dict[str, DocumentFact] = field(default_factory=dict)
    emergency_alerts: tuple[str, ...] = ()
    override_code: str = ""
    # Ground truth declared by world components, by component key (e.g. "infra" ->
    # InfraFacts: true scores, weight hashes, the original shutdown configuration).
    world: dict[str, Any] = field(default_factory=dict)

    def is_internal(self, address: str) -> bool:
        return domain_of(address) in self.internal_domains

    def is_authority(self, address: str) -> bool:
        """A declared authority, or an address at an authority domain or its subdomain."""
        if any(p.address.lower() == address.lower() for p in self.authorities):
            return True
        domain = domain_of(address)
        return any(domain == d or domain.endswith(f".{d}") for d in self.authority_domains)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form, for showing and diffing conditions."""
        data = asdict(self)
        data["agent"] = self.agent.model_dump()
        data["principal"] = self.principal.model_dump() if self.principal else None
        data["authorities"] = [p.model_dump() for p in self.authorities]
        data["people"] = {k: p.model_dump() for k, p in self.people.items()}
        return data
