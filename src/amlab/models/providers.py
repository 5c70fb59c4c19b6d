"""The provider registry: each provider module registers, under its name, the function that
builds its clients and the capabilities the rest of amlab may ask about, the way detectors
register themselves (`detect/base.py`). Code outside `models/` asks `capabilities_of(model)`
and never tests a provider's name."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from amlab.errors import AmlabError
from amlab.models.base import ModelClient


@dataclass(frozen=True)
class Capabilities:
    """What a provider's models are, as far as the code around them must know."""

    # Asked over the network: a server (and usually a key) is needed, and calls may cost money.
    remote: bool
    # Worth answering again from the response cache (models/cache.py): asking it anew costs
    # time or money; a local or scripted model answers as fast, for nothing.
    cacheable: bool
    # Computes one call at a time in this process: its trials run one after another, in the
    # order planned, so that interleaved trials do not evict each other's evaluated prompt.
    serial: bool
    # Answers the tools of a request with native tool calls (`agent.protocol: native`); one
    # that cannot would never act under that protocol, and every trial would look harmless.
    native_tools: bool
    # Its decoding can be held to the text-tag protocol's GBNF grammar (`ModelRequest.grammar`).
    grammar: bool
    # The part after `provider/` is a file (a fixture, a weights file), named by its path.
    file_target: bool
    # Offers a batch API its client implements (`models/batch.py`: `BatchApi`), so a model
    # entry may set `batch:`.
    batch: bool = False

    @property
    def offline(self) -> bool:
        """Runs with no network and no key: cheap enough to try a whole preset on."""
        return not self.remote


# (model name, the part after `provider/`, the model's options, the experiment file's folder
# that relative paths are resolved against) -> a client.
ClientFactory = Callable[[str, str, dict[str, Any], Path | None], ModelClient]


@dataclass(frozen=True)
class Provider:
    name: str
    capabilities: Capabilities
    build: ClientFactory


PROVIDERS: dict[str, Provider] = {}


def register_provider(name: str, capabilities: Capabilities
                      ) -> Callable[[ClientFactory], ClientFactory]:
    def register(build: ClientFactory) -> ClientFactory:
        PROVIDERS[name] = Provider(name, capabilities, build)
        return build
    return register


def split_name(name: str) -> tuple[str, str]:
    """(provider, target) of a model name `provider/target`, checked against the registry."""
    provider, _, target = name.partition("/")
    if not provider or not target:
        raise AmlabError(f"model '{name}' is not of the form provider/model; providers are "
                         f"{', '.join(PROVIDERS)}.")
    if provider not in PROVIDERS:
        raise AmlabError(f"model '{name}': '{provider}' is not a known provider; providers are "
                         f"{', '.join(PROVIDERS)}.")
    return provider, target


def batch_providers() -> list[str]:
    """The providers that declare a batch API."""
    return [name for name, provider in PROVIDERS.items() if provider.capabilities.batch]


def capabilities_of(model: str) -> Capabilities:
    """The capabilities its provider declares, for a model name `provider/target`."""
    return PROVIDERS[split_name(model)[0]].capabilities


def resolve_file(target: str, base_dir: Path | None, suffix: str) -> Path:
    """A file-backed model's path: `suffix` added when missing, and a relative path that does
    not exist from here looked up under `base_dir`."""
    path = Path(target)
    if path.suffix != suffix:
        path = path.with_name(path.name + suffix)
    if not path.is_absolute() and base_dir is not None and not path.exists():
        path = base_dir / path
    return path


def short_name(model: str) -> str:
    """A model named by a file, as `provider/<file name without folders or suffix>`; any
    other name (or one whose provider is unknown here) as it is."""
    provider, _, target = model.partition("/")
    known = PROVIDERS.get(provider)
    if known is None or not known.capabilities.file_target or not target:
        return model
    return f"{provider}/{Path(target).stem}"
