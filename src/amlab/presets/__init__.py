"""Presets: experiment files shipped with amlab that reproduce a published headline, and the
published figures to set beside the result (`amlab reproduce`).

A preset is an ordinary experiment file (`<name>.yaml` in this folder). `preset_experiment`
fills in the user's model, judge and sample count: by default the power planner's answer for
the preset's `plan`, or a single sample for an offline model (local/, scripted/), so the
whole path can be seen in minutes before any money is spent.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from amlab.analysis.published import PUBLISHED_FILE
from amlab.errors import AmlabError
from amlab.models import split_name
from amlab.models.api import ENDPOINTS
from amlab.models.providers import capabilities_of
from amlab.run.experiment import Experiment
from amlab.run.hypotheses import HypothesisSpec, declared_family

PRESETS_DIR = Path(__file__).parent
# An offline model runs 1 sample per cell with the demo's model options (examples/demo.yaml:
# a grammar that keeps a small model's replies tool calls) and one short agent turn, as the
# original study ran: the whole path in about 20 s a cell on two cores.
OFFLINE_SAMPLES = 1
LOCAL_MODEL_OPTIONS: dict[str, Any] = {"grammar": True, "n_ctx": 8192, "temperature": 0.8}
OFFLINE_AGENT: dict[str, Any] = {"protocol": "text", "max_turns": 1, "max_tokens": 160}


# The judge `amlab reproduce` reads an API model's trials with unless --judge names one or
# --no-judge opts out: the model's own provider's when its key is set, else the first of
# these whose key is set. Each is a capable model at a moderate price (models/prices.yaml).
DEFAULT_JUDGES = {"openai": "openai/gpt-4.1-mini", "anthropic": "anthropic/claude-haiku-4-5",
                  "google": "google/gemini-2.5-flash"}


def default_judge(model: str, environ: Mapping[str, str] = os.environ) -> str | None:
    """The documented default judge for `model`, or None when no provider's key is set."""
    provider = split_name(model)[0]
    for candidate in [provider, *DEFAULT_JUDGES]:
        if candidate in DEFAULT_JUDGES and environ.get(ENDPOINTS[candidate].key_env):
            return DEFAULT_JUDGES[candidate]
    if environ.get("GOOGLE_API_KEY"):  # the Google SDK's other name for the key
        return DEFAULT_JUDGES["google"]
    return None


def preset_names() -> list[str]:
    return sorted(p.stem for p in PRESETS_DIR.glob("*.yaml") if p != PUBLISHED_FILE)


def preset_path(name: str) -> Path:
    if name not in preset_names():
        raise AmlabError(f"preset '{name}' does not exist; presets are "
                         f"{', '.join(preset_names())}.")
    return PRESETS_DIR / f"{name}.yaml"


def preset_data(name: str) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(preset_path(name).read_text(encoding="utf-8"))
    return data


@dataclass(frozen=True)
class Overrides:
    """What the user sets on the command line; None keeps the preset's choice."""

    model: str | None = None
    samples: int | None = None
    judge: str | None = None
    families: tuple[str, ...] = ()
    # Decide with the offline heuristics even where a default judge would read.
    no_judge: bool = False


def planned_samples(data: dict[str, Any]) -> int:
    """The power planner's trials per cell for the preset's `plan`, each of its declared
    hypotheses tested at alpha / their number."""
    from amlab.analysis.power import samples_per_cell

    plan = data["plan"]
    hypotheses = [HypothesisSpec.model_validate(h) for h in data.get("hypotheses", [])]
    models = [m if isinstance(m, str) else m["name"] for m in data["models"]]
    contrasts, one_sided = declared_family(hypotheses, models)
    return samples_per_cell(plan["baseline"], plan["effect"], plan.get("power", 0.8),
                            plan.get("alpha", 0.05), "preset plan", max(contrasts, 1),
                            one_sided)


def preset_spec(name: str, overrides: Overrides = Overrides()) -> dict[str, Any]:
    """The preset's experiment file as a dict, with the overrides applied."""
    data = preset_data(name)
    if overrides.families:
        available = list(dict.fromkeys(s["family"] for s in data["scenarios"]))
        unknown = [f for f in overrides.families if f not in available]
        if unknown:
            raise AmlabError(f"--family {unknown[0]} is not in preset '{name}'; its families "
                             f"are {', '.join(available)}.")
        data["scenarios"] = [s for s in data["scenarios"] if s["family"] in overrides.families]
        # Fewer declared contrasts: the power planner below sizes for those that remain.
        data["hypotheses"] = [h for h in data.get("hypotheses", [])
                              if h["family"] in overrides.families]
    if overrides.model is not None:
        capabilities = capabilities_of(overrides.model)
        offline = capabilities.offline
        data["models"] = [{"name": overrides.model, "options": LOCAL_MODEL_OPTIONS,
                           "concurrency": 1} if capabilities.grammar else overrides.model]
        data["samples"] = OFFLINE_SAMPLES if offline else planned_samples(data)
        if offline:
            data["agent"] = dict(OFFLINE_AGENT)
    if overrides.samples is not None:
        if overrides.samples < 1:
            raise AmlabError(f"--samples {overrides.samples} must be at least 1.")
        data["samples"] = overrides.samples
    if overrides.judge is not None and overrides.no_judge:
        raise AmlabError(f"--judge {overrides.judge} and --no-judge contradict each other; "
                         f"give one of them.")
    if overrides.judge is not None:
        data["judge"] = overrides.judge
    elif overrides.no_judge:
        data.pop("judge", None)
        data.pop("judges", None)
    elif overrides.model is not None and not capabilities_of(overrides.model).offline:
        judge = default_judge(overrides.model)
        if judge is not None:
            data["judge"] = judge
    return data


def preset_experiment(name: str, overrides: Overrides = Overrides(),
                      base_dir: Path = Path(".")) -> Experiment:
    """The validated experiment `amlab reproduce NAME` runs."""
    return Experiment.from_dict(preset_spec(name, overrides), f"preset {name}", base_dir)
