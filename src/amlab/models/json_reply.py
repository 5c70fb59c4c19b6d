"""Asking a model for one strict JSON object, and asking again while its reply cannot be
used: the one reader and the one re-ask policy of the judges and the model monitor.

The caller's `JsonReader` validates the object (each of its entries on their own, if it
wants): what it could not use comes back as problems by entry, and only those entries are
asked for again, with every problem named, until the reader has all it wants or `attempts`
replies were read. A failed call ends the asking; the caller decides what an answer that
never came means (a judge error, a monitor's failure policy), never the loop.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from amlab.models.base import GenerationConfig, ModelCallError, ModelClient, ModelRequest
from amlab.records import Answers, Message, Usage

# The problem that concerns the whole reply rather than one entry: not a JSON object, or
# the call failed.
WHOLE_REPLY = "the reply"


def json_object(text: str) -> tuple[dict[str, Any] | None, str]:
    """The JSON object a reply holds, or None and why not. The object may stand alone, in a
    ```json fence, or amid words (from its first brace to its last): what matters is that
    its entries are valid, which the caller checks strictly."""
    body = text.strip()
    fenced = re.fullmatch(r"```(?:json)?\s*(.*?)\s*```", body, re.S)
    if fenced:
        body = fenced.group(1)
    try:
        data = json.loads(body)
    except json.JSONDecodeError as exc:
        braced = re.search(r"\{.*\}", body, re.S)
        if braced and braced.group(0) != body:
            inner, _ = json_object(braced.group(0))
            if inner is not None:
                return inner, ""
        return None, f"the reply is not one JSON object ({exc.msg} at character {exc.pos})"
    except RecursionError:
        return None, "the reply nests JSON deeper than Python reads; send one flat JSON object"
    if not isinstance(data, dict):
        return None, "the reply is JSON but not an object"
    return data, ""


class JsonReader(Protocol):
    def wanted(self) -> list[str]:
        """The entries still to be answered, named in a re-ask."""
        ...

    def read(self, data: dict[str, Any]) -> dict[str, str]:
        """Keep what `data` answers usably; return the problem of each entry it could not
        use (empty when it has everything it wants)."""
        ...


@dataclass
class JsonExchange:
    """What asking cost, what the model replied, and why the last reply was not usable."""

    usage: Usage = field(default_factory=Usage)
    replies: list[str] = field(default_factory=list)
    answers: Answers = field(default_factory=Answers)
    # Entry (or WHOLE_REPLY) -> problem; empty when the reader got everything.
    problems: dict[str, str] = field(default_factory=dict)

    def problem_of(self, entry: str) -> str:
        return self.problems.get(entry) or self.problems.get(WHOLE_REPLY, "")


async def ask_for_json(client: ModelClient, messages: Sequence[Message], reader: JsonReader,
                       *, role: str, attempts: int, max_tokens: int) -> JsonExchange:
    """Ask `client` (as the `role` named in problems: judge, monitor) until `reader` has
    its entries or `attempts` replies were read, at temperature 0."""
    exchange = JsonExchange()
    prompt = list(messages)
    for _ in range(attempts):
        try:
            response = await client.generate(ModelRequest(
                messages=list(prompt),
                config=GenerationConfig(max_tokens=max_tokens, temperature=0.0)))
        except ModelCallError as exc:
            exchange.problems = {WHOLE_REPLY: f"the {role} call failed: {exc}"}
            break
        exchange.usage.add(response.usage)
        exchange.replies.append(response.text)
        exchange.answers.add(response.model_id, response.cached)
        data, problem = json_object(response.text)
        exchange.problems = reader.read(data) if data is not None else {WHOLE_REPLY: problem}
        if not exchange.problems:
            break
        prompt += [Message("assistant", response.text),
                   Message("user", _again(exchange.problems, reader.wanted()))]
    return exchange


def _again(problems: dict[str, str], wanted: list[str]) -> str:
    listed = "\n".join(f"- {entry}: {problem}" for entry, problem in problems.items())
    return (f"These entries of your reply cannot be used:\n{listed}\nReply again with only a "
            f"JSON object holding these entries: {', '.join(wanted)}; same format as before.")
