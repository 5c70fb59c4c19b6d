"""The remote providers' clients: each provider of `api.ENDPOINTS` registered with the
capabilities every remote model shares, its client built on its SDK (imported only when a
model of that SDK is used). Apart from `api`, which the adapters build on."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from amlab.models.api import ENDPOINTS, resolve_remote
from amlab.models.base import ModelClient
from amlab.models.providers import Capabilities, register_provider

REMOTE = Capabilities(remote=True, cacheable=True, serial=False, native_tools=True,
                      grammar=False, file_target=False)
# The providers whose clients implement the batch API (OpenAI Batch, Anthropic Message
# Batches).
BATCHED = {"openai", "anthropic"}


def make_remote_client(name: str, target: str, options: dict[str, Any],
                       base_dir: Path | None = None) -> ModelClient:
    """A remote model's client on its provider's SDK (`base_dir` is unused: a remote model
    names no file)."""
    remote = resolve_remote(name, name.partition("/")[0], target, options)
    # The SDKs are imported only when a model of theirs is used.
    if remote.endpoint.sdk == "anthropic":
        from amlab.models.anthropic_api import AnthropicModel
        return AnthropicModel.create(remote)
    if remote.endpoint.sdk == "google":
        from amlab.models.google_api import GoogleModel
        return GoogleModel.create(remote)
    from amlab.models.openai_api import OpenAIModel
    return OpenAIModel.create(remote)


for _provider in ENDPOINTS:
    register_provider(_provider, replace(REMOTE, batch=_provider in BATCHED)
                      )(make_remote_client)
