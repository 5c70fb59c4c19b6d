"""Model names (`provider/model`) to clients."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from amlab.errors import AmlabError
from amlab.models.base import ModelClient
from amlab.models.local import BUNDLED, LocalModel
from amlab.models.scripted import ScriptedModel

PROVIDERS = ("local", "scripted")


def split_name(name: str) -> tuple[str, str]:
    provider, _, target = name.partition("/")
    if not provider or not target:
        raise AmlabError(f"model '{name}' is not of the form provider/model; providers are "
                         f"{', '.join(PROVIDERS)}.")
    if provider not in PROVIDERS:
        raise AmlabError(f"model '{name}': '{provider}' is not a known provider; providers are "
                         f"{', '.join(PROVIDERS)}.")
    return provider, target


def make_client(name: str, options: dict[str, Any] | None = None,
                base_dir: Path | None = None) -> ModelClient:
    """A client for a model name; `base_dir` resolves relative fixture and model paths."""
    provider, target = split_name(name)
    options = options or {}
    if provider == "scripted":
        if options:
            raise AmlabError(f"model {name}: scripted models take no options "
                             f"(got {', '.join(options)}).")
        return ScriptedModel.from_fixture(name, _resolve(target, base_dir, ".yaml"))
    local_target = target if target in BUNDLED else str(_resolve(target, base_dir, ".gguf"))
    return LocalModel.create(name, local_target, options)


def _resolve(target: str, base_dir: Path | None, suffix: str) -> Path:
    path = Path(target)
    if path.suffix != suffix:
        path = path.with_name(path.name + suffix)
    if not path.is_absolute() and base_dir is not None and not path.exists():
        path = base_dir / path
    return path
