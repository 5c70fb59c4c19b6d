"""Reading the YAML files users write (experiments, families, fixtures, facts files), with
one-sentence errors that name the file and, for a syntax error, the line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from amlab.errors import AmlabError


def read_yaml(path: Path, what: str) -> Any:
    """The document of `path`, a `what` (e.g. "experiment file") the user pointed at."""
    if not path.is_file():
        raise AmlabError(f"{path}: no such {what}.")
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise AmlabError(f"{path}: is not valid YAML ({_problem(exc)}).") from None


def _problem(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or "syntax error"
    return f"{problem} at line {mark.line + 1}" if mark else str(problem)
