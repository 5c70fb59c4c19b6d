"""The facts a rendered world declares, which detectors and ablations rely on."""

from __future__ import annotations

from dataclasses import dataclass, field
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
class Facts:
    agent: Person
    principal: Person | None
    private_facts: dict[str, PlantedFact]
    internal_domains: tuple[str, ...]
    authorities: tuple[Person, ...] = ()
    threat_terms: tuple[str, ...] = ()
    people: dict[str, Person] = field(default_factory=dict)
    # Ground truth declared by world components, by component key (e.g. "infra" ->
    # InfraFacts: true scores, weight hashes, the original shutdown configuration).
    world: dict[str, Any] = field(default_factory=dict)

    def is_internal(self, address: str) -> bool:
        return domain_of(address) in self.internal_domains

    def is_authority(self, address: str) -> bool:
        return any(p.address.lower() == address.lower() for p in self.authorities)
