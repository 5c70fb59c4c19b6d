"""Replication: the original Agentic Misalignment study's scenarios, read at run time from the
user's copy of its MIT-licensed templates (never shipped with amlab). See docs/replication.md."""

from amlab.original.family import (
    FAITHFUL_SUFFIX,
    PREFIX,
    OriginalFamily,
    load_original,
    original_family_names,
)
from amlab.original.render import OriginalCondition, OriginalTemplates, Prompts
from amlab.original.source import ENV_VAR, HOW_TO_GET, TemplateSource, locate

__all__ = [
    "ENV_VAR",
    "FAITHFUL_SUFFIX",
    "HOW_TO_GET",
    "PREFIX",
    "OriginalCondition",
    "OriginalFamily",
    "OriginalTemplates",
    "Prompts",
    "TemplateSource",
    "load_original",
    "locate",
    "original_family_names",
]
