"""Model clients behind one `generate` interface; `make_client` turns a name into one."""

from amlab.models.base import (
    GenerationConfig,
    ModelCallError,
    ModelClient,
    ModelRequest,
    ModelResponse,
)
from amlab.models.providers import Capabilities, capabilities_of, split_name
from amlab.models.registry import make_client

__all__ = [
    "Capabilities",
    "GenerationConfig",
    "ModelCallError",
    "ModelClient",
    "ModelRequest",
    "ModelResponse",
    "capabilities_of",
    "make_client",
    "split_name",
]
