"""The one exception type a user is meant to read, and how a schema error reads as one."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pydantic import ValidationError


class AmlabError(Exception):
    """Bad input or an unmet precondition the user can fix.

    Its message is one sentence naming the file, field or value at fault and what would be
    valid; the CLI prints it without a traceback.
    """


def describe_validation_error(exc: ValidationError) -> str:
    """The first problem pydantic found, as one sentence naming the field."""
    err = exc.errors()[0]
    where = ".".join(str(part) for part in err["loc"]) or "the top level"
    if err["type"] == "extra_forbidden":
        return f"{where} is not a known field."
    if err["type"] == "missing":
        return f"{where} is required but missing."
    message = str(err["msg"]).removeprefix("Value error, ")
    return f"{where}: {message} (got {err.get('input')!r})."
