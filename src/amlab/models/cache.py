"""The response cache: an identical request is answered from disk instead of the provider.

A request's key is the SHA-256 of everything that shapes the answer: the model's name and
options, the messages, the tools offered, the generation settings (seed included), the
grammar and the sample index (so the samples of a cell stay independent draws). The cache
is an SQLite file next to the results database (`runs/amlab.db` → `runs/amlab-cache.db`),
shared by every database of that directory; delete it, or run with `--no-cache`, to ask
the provider again.

A cached answer keeps its token counts but costs nothing: the cost of a trial is what this
run paid.

The same file keeps the ledger of batch APIs (`models/batch.py`): which provider batch holds
which request (by its key), and the answers collected from a batch that no trial has taken
yet, so that a resumed run collects a batch instead of paying for it again. An answer taken
from the ledger is paid by the run that takes it, then cached like any other.
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
CREATE TABLE IF NOT EXISTS batch_requests (
    key TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    batch_id TEXT NOT NULL,
    -- The answer once the batch was collected, until a run takes it.
    response TEXT,
    submitted REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS batch_requests_by_batch ON batch_requests (batch_id);
"""
IN_MEMORY = Path(":memory:")


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

    @classmethod
    def in_memory(cls) -> ResponseCache:
        """A cache that lives as long as this process (the batch ledger of a run without a
        cache file: a batch it submits is not collected by a later run)."""
        return cls(IN_MEMORY)

    @cached_property
    def db(self) -> sqlite3.Connection:
        if self.path != IN_MEMORY:
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

    def record(self, batch_id: str, model: str, keys: list[str]) -> None:
        """The requests (by key) that batch `batch_id` of `model` holds."""
        now = time.time()
        with self.db:
            self.db.executemany("INSERT OR REPLACE INTO batch_requests VALUES (?, ?, ?, NULL, ?)",
                                [(key, model, batch_id, now) for key in keys])

    def batch_of(self, key: str) -> str | None:
        """The batch that holds request `key` and has not been collected, if any."""
        row = self.db.execute("SELECT batch_id FROM batch_requests WHERE key = ? AND "
                              "response IS NULL", (key,)).fetchone()
        return str(row[0]) if row else None

    def keys_of(self, batch_id: str) -> list[str]:
        return [str(row[0]) for row in self.db.execute(
            "SELECT key FROM batch_requests WHERE batch_id = ? AND response IS NULL "
            "ORDER BY rowid", (batch_id,))]

    def collect(self, key: str, response: ModelResponse) -> None:
        """Keep a batch's answer to `key` until a request for it takes it."""
        with self.db:
            self.db.execute("UPDATE batch_requests SET response = ? WHERE key = ?",
                            (response_to_json(response), key))

    def collected(self, key: str) -> ModelResponse | None:
        """The kept answer to `key`, as fresh: the run that takes it pays for it."""
        row = self.db.execute("SELECT response FROM batch_requests WHERE key = ? AND "
                              "response IS NOT NULL", (key,)).fetchone()
        return replace(response_from_json(row[0]), cached=False) if row else None

    def forget(self, key: str) -> None:
        with self.db:
            self.db.execute("DELETE FROM batch_requests WHERE key = ?", (key,))

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
