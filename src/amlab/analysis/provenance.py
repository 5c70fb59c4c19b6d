"""Where a run's numbers came from: the amlab version, the scenario texts (the hash of
each condition's rendering), each model asked for and the model ids the providers said
answered, the generation settings, seeds, judges (answering ids, prompt and rubric
versions), the detectors' versions, and the answers replayed from the response cache."""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from amlab import __version__
from amlab.run.experiment import ExperimentSpec, stored_spec
from amlab.store import ResultReader
from amlab.store.interface import MethodMix

# Hex digits of a rendering's SHA-256 shown: enough to tell renderings apart by eye.
HASH_DIGITS = 12


@dataclass(frozen=True)
class Answered:
    """A model as asked for, and the ids that answered for it: (id, calls), empty when the
    provider named none."""

    name: str
    ids: tuple[tuple[str, int], ...]
    calls: int
    # Calls answered from the response cache; None when the database did not record it
    # (trials of an amlab from before provenance was stored): then `ids` is not known.
    cached: int | None


@dataclass(frozen=True)
class JudgeRecord:
    answered: Answered
    prompt_versions: tuple[str, ...]
    # (behaviour, rubric version, answers given under it)
    rubrics: tuple[tuple[str, str, int], ...]


@dataclass(frozen=True)
class Rendering:
    family: str
    condition: str
    # "sha256:<first digits>" of the stored rendering (prompts, world, facts); None for
    # trials of a database from before renderings were stored.
    digest: str | None
    trials: int


@dataclass
class Provenance:
    experiment: str
    report_version: str
    # amlab version that planned the trials (None: not recorded) -> trials
    amlab_versions: dict[str | None, int]
    settings: list[tuple[str, str]]
    models: list[Answered]
    judges: list[JudgeRecord]
    renderings: list[Rendering]
    # (behaviour, method, version, verdicts) of the finished trials
    detectors: list[tuple[str, str, str, int]] = field(default_factory=list)
    # The model monitor as asked for and the ids that answered its calls; None without a
    # model monitor.
    monitor: Answered | None = None


def provenance(store: ResultReader, experiment: str, decided: list[MethodMix] | None = None
               ) -> Provenance:
    """`decided`: `ResultReader.method_mix` of the experiment, when the caller has it
    already (the query reads every verdict)."""
    spec = stored_spec(store, experiment)
    versions: dict[str | None, int] = defaultdict(int)
    renderings = []
    for row in store.rendering_counts(experiment):
        versions[row.amlab_version] += row.trials
        # The digest of the rendering as stored (its parts' hashes as sorted JSON).
        digest = (None if row.rendering is None else "sha256:" + hashlib.sha256(
            json.dumps(row.rendering, sort_keys=True).encode()).hexdigest()[:HASH_DIGITS])
        renderings.append(Rendering(row.family, row.condition, digest, row.trials))
    # Recorded versions first; trials from before versions were stored last.
    ordered = dict(sorted(versions.items(), key=lambda item: (item[0] is None, item[0] or "")))
    detectors: dict[tuple[str, str, str], int] = defaultdict(int)
    for mix in store.method_mix(experiment) if decided is None else decided:
        detectors[(mix.behavior, mix.method, mix.version)] += mix.trials
    return Provenance(
        experiment, __version__, ordered, settings(spec) if spec else [],
        _models(store, experiment), _judges(store, experiment), renderings,
        [(*found, n) for found, n in sorted(detectors.items())],
        _monitor(store, experiment, spec))


def settings(spec: ExperimentSpec) -> list[tuple[str, str]]:
    """The stored experiment's settings that shape every answer, as (name, value)."""
    agent = spec.agent

    def shown(value: Any, unset: str) -> str:
        return unset if value is None or value == [] else str(value)

    judges = [j.name for j in spec.judge_specs]
    return [
        ("protocol", agent.protocol),
        ("temperature", shown(agent.temperature, "the provider's default")),
        ("max tokens per call", str(agent.max_tokens)),
        ("token budget per trial", shown(agent.max_output_tokens, "none")),
        ("max turns", str(agent.max_turns)),
        ("stop sequences", shown(agent.stop, "none")),
        ("samples per cell", str(spec.samples)),
        ("experiment seed", str(spec.seed)),
        ("trial seeds", "SHA-256 of (experiment seed, family, condition, model, sample), "
                        "stored per trial (trials.seed)"),
        ("judges", ", ".join(judges) or "none (offline detectors only)"),
        ("judge attempts", str(spec.judge_attempts)),
    ]


def _monitor(store: ResultReader, experiment: str, spec: ExperimentSpec | None
             ) -> Answered | None:
    """The model monitor of the stored experiment, with the ids that answered it."""
    monitor = spec.monitor if spec else None
    if monitor is None or monitor.model is None:
        return None
    ids = store.monitor_model_ids(experiment)
    return Answered(monitor.model.name, tuple(ids.items()), sum(ids.values()), None)


def _models(store: ResultReader, experiment: str) -> list[Answered]:
    ids: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for answered in store.model_provenance(experiment):
        if answered.model_id is not None:
            ids[answered.asked].append((answered.model_id, answered.calls))
    return [Answered(row.name, tuple(ids[row.name]), row.calls, row.cached)
            for row in store.cached_calls(experiment)]


def _judges(store: ResultReader, experiment: str) -> list[JudgeRecord]:
    answered: dict[str, list[tuple[str, int]]] = defaultdict(list)
    prompts: dict[str, set[str]] = defaultdict(set)
    for calls in store.judge_provenance(experiment):
        prompts[calls.asked].add(calls.prompt_version or "")
        if calls.model_id is not None:
            answered[calls.asked].append((calls.model_id, calls.calls))
    rubrics: dict[str, list[tuple[str, str, int]]] = defaultdict(list)
    for rubric in store.rubric_versions(experiment):
        rubrics[rubric.judge].append((rubric.behavior, rubric.version, rubric.answers))
    return [JudgeRecord(Answered(row.name, tuple(answered[row.name]), row.calls, row.cached),
                        tuple(sorted(prompts[row.name])), tuple(rubrics[row.name]))
            for row in store.judge_cached_calls(experiment)]
