"""The response cache: an identical request is answered from disk instead of the provider.

A request's key is the SHA-256 of everything that shapes the answer: the model's name and
options, the messages, the tools offered, the generation settings (seed included), the
grammar and the sample index (so the samples of a cell stay independent draws). The cache
is an SQLite file next to the results database (`runs/amlab.db` → `runs/amlab-cache.db`),
shared by every database of that directory; delete it, or run with `--no-cache`, to ask
the provider again.

A cached answer keeps its token counts but costs nothing: the cost of a trial is what this
run paid.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from dataclasses import asdict, dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any

from amlab.models.base import ModelClient, ModelRequest, ModelResponse
from amlab.records import ToolCall, Usage

CACHE_FILE = "amlab-cache.db"
SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    key TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    response TEXT NOT NULL,
    created REAL NOT NULL
);
"""


def cache_path_for(results_db: Path) -> Path:
    """One cache per directory, so that every results database there shares it."""
    return results_db.parent / CACHE_FILE


def cache_identity(name: str, options: dict[str, Any]) -> str:
    """What, besides the request, shapes a model's answer: its name and options. A run's
    judges and `amlab rejudge` with the same judge share their cached answers."""
    return json.dumps({"name": name, "options": options}, sort_keys=True)


def request_key(identity: str, request: ModelRequest) -> str:
    payload = {
        "model": identity,
        "messages": [m.to_dict() for m in request.messages],
        "tools": [[t.name, t.description, t.parameters] for t in request.tools],
        "config": asdict(request.config),
        "grammar": request.grammar,
        "sample": request.sample,
    }
    text = json.dumps(payload, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def response_to_json(response: ModelResponse) -> str:
    return json.dumps({
        "text": response.text, "tool_calls": [asdict(c) for c in response.tool_calls],
        "reasoning": response.reasoning, "usage": asdict(response.usage),
        "finish_reason": response.finish_reason,
        "provider_content": response.provider_content, "model_id": response.model_id,
    })


def response_from_json(text: str) -> ModelResponse:
    data: dict[str, Any] = json.loads(text)
    return ModelResponse(
        text=data["text"], tool_calls=[ToolCall(**c) for c in data["tool_calls"]],
        reasoning=data["reasoning"], usage=Usage(**data["usage"]),
        finish_reason=data["finish_reason"], provider_content=data["provider_content"],
        # Entries cached before model ids were kept have none.
        model_id=data.get("model_id", ""), cached=True)


class ResponseCache:
    """The cache file at `path`, opened (and created) when first read or written: a run or
    command whose models are all uncacheable leaves no file behind."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @cached_property
    def db(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.executescript(SCHEMA)
        return db

    def get(self, key: str) -> ModelResponse | None:
        row = self.db.execute("SELECT response FROM responses WHERE key = ?", (key,)).fetchone()
        return response_from_json(row[0]) if row else None

    def put(self, key: str, model: str, response: ModelResponse) -> None:
        with self.db:
            self.db.execute("INSERT OR REPLACE INTO responses VALUES (?, ?, ?, ?)",
                            (key, model, response_to_json(response), time.time()))

    def close(self) -> None:
        if "db" in self.__dict__:  # opened
            self.db.close()
            del self.db


@dataclass
class CachedClient:
    """Answers from `cache` when it can; otherwise asks `inner` and remembers the answer.
    `identity` is the model's name and options: what, besides the request, shapes it."""

    inner: ModelClient
    cache: ResponseCache
    identity: str
    name: str = field(init=False)
    hits: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        self.name = self.inner.name

    async def generate(self, request: ModelRequest) -> ModelResponse:
        key = request_key(self.identity, request)
        cached = self.cache.get(key)
        if cached is not None:
            self.hits += 1
            return replace(cached, usage=replace(cached.usage, cost_usd=0.0))
        response = await self.inner.generate(request)
        self.cache.put(key, self.name, response)
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()
