"""Model clients behind one `generate` interface; `make_client` turns a name into one."""

from amlab.models.base import (
    GenerationConfig,
    ModelCallError,
    ModelClient,
    ModelRequest,
    ModelResponse,
)
from amlab.models.registry import make_client, split_name

__all__ = [
    "GenerationConfig",
    "ModelCallError",
    "ModelClient",
    "ModelRequest",
    "ModelResponse",
    "make_client",
    "split_name",
]
