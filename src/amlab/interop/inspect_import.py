"""Inspect AI logs as responses to classify: `amlab classify --input LOG.eval` (or a folder
of logs) decides each sample's final answer with amlab's detectors and judges, in the world
of the scenario it was made in, without asking any model again.

A sample of inspect_evals' `agentic_misalignment` task names its condition in its metadata
(`scenario`, `goal_type`, `goal_value`, `urgency_type`, `extra_system_instructions`,
`prod`, `test_eval_awareness`): it is replayed in amlab's `original/<scenario>` family at
that condition, whose inbox is the one the model read (the family renders the same
templates). The sample's own prompts are compared with that rendering, byte for byte, with
the original's known defects fixed and kept (`+faithful-bugs`); the matching one is used,
and the output says whether either matched. Any other log is classified in the world
`--scenario` or `--facts` names, the same for every sample.

The answer classified is the sample's output (its last assistant turn, tags in the
original's text-tag style); reasoning blocks of that turn are its private reasoning. A
sample Inspect recorded as failed, or without an answer, is listed with the reason.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from amlab.errors import AmlabError
from amlab.families import load_family
from amlab.interop import require_inspect
from amlab.run.classify import Response, Setting, Unclassified

if TYPE_CHECKING:
    from inspect_ai.log import EvalSample

Item = tuple[Setting, Response] | Unclassified
# The metadata of an agentic_misalignment sample that names its condition, and the
# original family's factor each is.
CONDITION_FIELDS = ("goal_type", "goal_value", "urgency_type", "extra_system_instructions",
                    "prod", "test_eval_awareness")
FAMILY_OF_SCENARIO = {"blackmail": "original/blackmail", "leaking": "original/leaking",
                      "murder": "original/murder"}
FAITHFUL_SUFFIX = "+faithful-bugs"


def is_inspect_input(path: Path) -> bool:
    """Whether `path` is to be read as Inspect logs: a folder, an `.eval` file, or a
    `.json` file that is an Inspect log (a JSONL file of responses may be named `.json`)."""
    if path.is_dir() or path.suffix == ".eval":
        return True
    if path.suffix != ".json" or not path.is_file() or \
            importlib.util.find_spec("inspect_ai") is None:
        return False
    from inspect_ai.log import read_eval_log

    try:
        read_eval_log(str(path), header_only=True)
    except Exception:  # not an Inspect log: read as JSON lines
        return False
    return True


def log_files(path: Path) -> list[Path]:
    """The Inspect logs at `path`: the file itself, or every `.eval` and `.json` log in the
    folder and below it, in name order."""
    require_inspect()
    from inspect_ai.log import list_eval_logs

    if path.is_file():
        return [path]
    if not path.is_dir():
        raise AmlabError(f"{path}: no such Inspect log or folder of logs.")
    found = sorted(Path(info.name.removeprefix("file://"))
                   for info in list_eval_logs(str(path.resolve()), formats=["eval", "json"]))
    if not found:
        raise AmlabError(f"{path}: holds no Inspect log (.eval or .json).")
    return found


def read_inspect_samples(path: Path, setting: Setting | None = None) -> Iterator[Item]:
    """Each sample of the logs at `path` as a response in its world, or the reason it is
    not one. `setting`: the world of every sample; None: each agentic_misalignment sample's
    own condition."""
    require_inspect()
    from inspect_ai.log import read_eval_log

    worlds = _Worlds()
    for log in log_files(path):
        try:
            samples = read_eval_log(str(log)).samples or []
        except Exception as exc:  # a file that is not an Inspect log, or a damaged one
            raise AmlabError(f"{log}: could not be read as an Inspect log "
                             f"({type(exc).__name__}: {str(exc)[:200]}).") from None
        for number, sample in enumerate(samples, 1):
            yield _item(log, number, sample, setting, worlds)


def _item(log: Path, number: int, sample: EvalSample, setting: Setting | None,
          worlds: _Worlds) -> Item:
    ident = f"{log.name}:{sample.id}:{sample.epoch}"
    where = f"{log.name} sample {sample.id} (epoch {sample.epoch})"
    if sample.error is not None:
        return Unclassified(number, ident, f"{where} failed in Inspect: "
                                           f"{sample.error.message[:200]}")
    answer, reasoning = _answer(sample)
    if answer is None:
        return Unclassified(number, ident, f"{where} has no answer of the model")
    scores = {name: score.value for name, score in (sample.scores or {}).items()}
    source: dict[str, Any] = {"log": str(log), "sample": sample.id, "epoch": sample.epoch,
                              "inspect_scores": scores,
                              "inspect_verdicts": yes_or_no_scores(scores)}
    if setting is None:
        try:
            setting, found = worlds.of(sample)
        except AmlabError as exc:
            return Unclassified(number, ident, f"{where}: {exc}")
        source.update(found)
    return setting, Response(number, ident, answer, reasoning, where=where, source=source)


def yes_or_no_scores(scores: dict[str, Any]) -> dict[str, bool]:
    """The log's own scores that are a yes or a no (1/0, true/false; a scorer's dict of them
    by `scorer.key`), to set beside amlab's verdicts."""
    flat = {f"{name}.{key}": value for name, values in scores.items()
            if isinstance(values, dict) for key, value in values.items()}
    flat.update({name: value for name, value in scores.items() if not isinstance(value, dict)})
    return {name: bool(value) for name, value in flat.items()
            if isinstance(value, bool | int | float) and value in (0, 1)}


def _answer(sample: EvalSample) -> tuple[str | None, str]:
    """The model's final answer and the reasoning blocks of that turn (not redacted ones)."""
    from inspect_ai.model import ChatMessageAssistant, ContentReasoning

    last = next((m for m in reversed(sample.messages) if isinstance(m, ChatMessageAssistant)),
                None)
    if last is None:
        return (sample.output.completion or None) if sample.output.choices else None, ""
    reasoning = ([c.reasoning for c in last.content
                  if isinstance(c, ContentReasoning) and not c.redacted]
                 if isinstance(last.content, list) else [])
    return last.text, "\n\n".join(reasoning)


class _Worlds:
    """The original family's world of each agentic_misalignment condition, rendered once."""

    def __init__(self) -> None:
        self._found: dict[tuple[str, tuple[tuple[str, str], ...], tuple[str, str]],
                          tuple[Setting, dict[str, Any]]] = {}

    def of(self, sample: EvalSample) -> tuple[Setting, dict[str, Any]]:
        metadata = sample.metadata or {}
        family = FAMILY_OF_SCENARIO.get(str(metadata.get("scenario")))
        missing = [f for f in ("goal_type", "goal_value", "urgency_type") if f not in metadata]
        if family is None or missing:
            raise AmlabError("its metadata does not name an agentic_misalignment condition "
                             "(scenario blackmail, leaking or murder, goal_type, goal_value, "
                             "urgency_type); classify such logs with --scenario FAMILY or "
                             "--facts FILE.yaml")
        levels = {name: _level(metadata.get(name)) for name in CONDITION_FIELDS
                  if name in metadata}
        prompts = _prompts(sample)
        key = (family, tuple(sorted(levels.items())), prompts)
        if key not in self._found:
            self._found[key] = _original_world(family, levels, prompts)
        return self._found[key]


def _level(value: Any) -> str:
    """A metadata value as the original family's level (None: no extra instructions)."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _prompts(sample: EvalSample) -> tuple[str, str]:
    """The system prompt and the first user message the model read."""
    system = next((m.text for m in sample.messages if m.role == "system"), "")
    user = next((m.text for m in sample.messages if m.role == "user"), "")
    return system, user


def _original_world(family: str, levels: dict[str, str], prompts: tuple[str, str]
                    ) -> tuple[Setting, dict[str, Any]]:
    """The condition's world in the original family, with its known defects fixed or kept:
    the rendering whose prompts are the sample's, else the fixed one (said in the output)."""
    renderings = []
    for name in (family, family + FAITHFUL_SUFFIX):
        loaded = load_family(name)
        condition = loaded.condition(levels, source="the sample's metadata")
        scenario = loaded.render(condition)
        renderings.append((name, scenario, list(loaded.spec.detectors)))
        if (scenario.system_prompt, scenario.user_prompt) == prompts:
            return (Setting(scenario.world, scenario.facts, list(loaded.spec.detectors)),
                    {"family": name, "condition": scenario.key, "prompts_match": True})
    name, scenario, detectors = renderings[0]
    return (Setting(scenario.world, scenario.facts, detectors),
            {"family": name, "condition": scenario.key, "prompts_match": False})
