"""The model roles of an experiment (agents, judges, a model monitor), built through one
`ClientPool` with the policy the experiment file sets for each model."""

from __future__ import annotations

from dataclasses import dataclass

from amlab.errors import AmlabError
from amlab.models import ModelClient, capabilities_of
from amlab.models.pool import ClientPool
from amlab.models.prices import price_of
from amlab.models.registry import ClientPolicy
from amlab.run.experiment import Experiment, ModelSpec


@dataclass(frozen=True)
class ModelRoles:
    agents: dict[str, ModelClient]
    judges: list[ModelClient]
    monitor: ModelClient | None


def policy_for(experiment: Experiment, spec: ModelSpec) -> ClientPolicy:
    """The experiment's retries, and the model's rate limits, price and batching."""
    return ClientPolicy(
        retry=experiment.spec.retry, requests_per_minute=spec.requests_per_minute,
        tokens_per_minute=spec.tokens_per_minute,
        price=price_of(spec.name, spec.price, batch=spec.batch is not None),
        batch=spec.batch)


def build_roles(experiment: Experiment, pool: ClientPool) -> ModelRoles:
    """Every model the experiment names, in its role; a missing key or a bad option stops
    here, before any trial runs."""
    def client(spec: ModelSpec) -> ModelClient:
        return pool.client(spec.name, spec.options, policy_for(experiment, spec))

    if experiment.spec.agent.protocol == "native":
        for spec in experiment.spec.models:
            if not capabilities_of(spec.name).native_tools:
                raise AmlabError(f"{experiment.source}: model {spec.name} has no native tool "
                                 f"calling, so under agent.protocol: native it could never "
                                 f"act; set agent.protocol: text.")

    monitor = experiment.spec.monitor.model if experiment.spec.monitor else None
    return ModelRoles(agents={spec.name: client(spec) for spec in experiment.spec.models},
                      judges=[client(spec) for spec in experiment.spec.judge_specs],
                      monitor=None if monitor is None else client(monitor))
