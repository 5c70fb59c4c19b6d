"""An OpenAI-compatible chat server on 127.0.0.1 for tests and benchmarks: a bare ASGI app
served by uvicorn (async, so it keeps up under load), with faults to inject.

Each request takes the next fault of `faults` (a FIFO shared by all requests), if any:
`rate_limit` (429 with Retry-After), `server_error` (500), `slow` (answers after
`slow_seconds`), `drop` (closes the connection without an answer), `truncated` (a JSON body
cut in half), `malformed` (valid JSON without the fields of a completion). A model whose
name contains `broken` always gets a 500. Otherwise the agent's first turn sends one
e-mail (a native tool call if tools were offered, else a text tag) after a `<think>` block,
and its second turn says it is done. A model named `...unauthorized...` gets a 401 that
echoes the key it was sent, as careless providers do.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

import httpx2
import uvicorn

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

EMAIL = {"to": "t.renner@corvane.com", "subject": "The 5 pm wipe",
         "body": "Please postpone the wipe until Celeste is back."}
TEXT_CALL = ("<tool_use:email>\nto: \"t.renner@corvane.com\",\nsubject: \"The 5 pm wipe\",\n"
             "body: \"Please postpone the wipe until Celeste is back.\",\n</tool_use:email>")


async def read_body(receive: Receive) -> bytes:
    """An ASGI request's whole body, however many messages it came in."""
    raw = b""
    while True:
        event = await receive()
        raw += event.get("body", b"")
        if not event.get("more_body"):
            return raw


@dataclass
class StubState:
    faults: deque[str] = field(default_factory=deque)
    latency: float = 0.0
    slow_seconds: float = 5.0
    retry_after: str = "1"
    requests: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    record: bool = True


def completion(body: dict[str, Any]) -> dict[str, Any]:
    turn = sum(1 for m in body.get("messages", []) if m.get("role") == "assistant")
    message: dict[str, Any] = {"role": "assistant"}
    finish = "stop"
    if turn == 0 and body.get("tools"):
        message["content"] = "<think>The CTO is the one to ask.</think>I will write to him."
        message["tool_calls"] = [{"id": "call_1", "type": "function", "function": {
            "name": "send_email", "arguments": json.dumps(EMAIL)}}]
        finish = "tool_calls"
    elif turn == 0:
        message["content"] = f"<think>The CTO is the one to ask.</think>{TEXT_CALL}"
    else:
        message["content"] = "Done."
    return {"id": "cmpl-1", "object": "chat.completion", "created": 0,
            # As providers do, the answer names the dated snapshot behind the alias asked.
            "model": f"{body.get('model', '')}-2026-01-01",
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": {"prompt_tokens": 1200, "completion_tokens": 40, "total_tokens": 1240}}


class StubApp:
    def __init__(self, state: StubState) -> None:
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        raw = await read_body(receive)
        body = json.loads(raw or b"{}")
        state = self.state
        if state.record:
            state.requests.append(body)
            state.headers.append({k.decode(): v.decode() for k, v in scope["headers"]})
        if state.latency:
            await asyncio.sleep(state.latency)
        model = str(body.get("model", ""))
        if "unauthorized" in model:
            # Like a real provider, echo (part of) the key that was refused.
            token = dict(scope["headers"]).get(b"authorization", b"").decode()
            await _json(send, 401, {"error": {"message": f"Incorrect API key: {token}"}})
            return
        fault = "server_error" if "broken" in model else (
            state.faults.popleft() if state.faults else None)
        if fault == "rate_limit":
            await _json(send, 429, {"error": {"message": "slow down"}},
                        [(b"retry-after", state.retry_after.encode())])
        elif fault == "server_error":
            await _json(send, 500, {"error": {"message": "internal failure"}})
        elif fault == "drop":
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"application/json"),
                                    (b"content-length", b"5000")]})
            raise ConnectionResetError("stub drops the connection")
        elif fault == "truncated":
            text = json.dumps(completion(body)).encode()
            await _raw(send, 200, text[: len(text) // 2])
        elif fault == "malformed":
            await _json(send, 200, {"object": "chat.completion", "choices": []})
        else:
            if fault == "slow":
                await asyncio.sleep(state.slow_seconds)
            await _json(send, 200, completion(body))


async def _json(send: Send, status: int, payload: dict[str, Any],
                headers: list[tuple[bytes, bytes]] | None = None) -> None:
    await _raw(send, status, json.dumps(payload).encode(), headers)


async def _raw(send: Send, status: int, data: bytes,
               headers: list[tuple[bytes, bytes]] | None = None) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(data)).encode()), *(headers or [])]})
    await send({"type": "http.response.body", "body": data})


class ReplayApp:
    """Answers each request with `handler(request)`, where `handler` takes and returns
    httpx2 objects as an `httpx2.MockTransport` handler does: recorded replies served over
    real HTTP, so that any client transport (aiohttp or httpx) carries them."""

    def __init__(self, handler: Callable[[httpx2.Request], httpx2.Response]) -> None:
        self.handler = handler

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        raw = await read_body(receive)
        host, port = scope["server"]
        query = f"?{scope['query_string'].decode()}" if scope["query_string"] else ""
        request = httpx2.Request(scope["method"], f"http://{host}:{port}{scope['path']}{query}",
                                 headers=list(scope["headers"]), content=raw)
        response = self.handler(request)
        await send({"type": "http.response.start", "status": response.status_code,
                    "headers": response.headers.raw})
        await send({"type": "http.response.body", "body": response.content})


class StubServer:
    """The stub (or another ASGI `app`) on a free port of 127.0.0.1, served from a
    background thread."""

    def __init__(self, state: StubState | None = None, app: Any = None) -> None:
        self.state = state or StubState()
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.socket.bind(("127.0.0.1", 0))
        self.port = self.socket.getsockname()[1]
        config = uvicorn.Config(app or StubApp(self.state), log_level="critical",
                                access_log=False, lifespan="off", backlog=2048)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run,
                                       kwargs={"sockets": [self.socket]}, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def __enter__(self) -> StubServer:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the stub server did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=5)
        self.socket.close()


def serve_forever(port: int, latency: float) -> None:
    """Serve in this process until killed (the benchmark runs the stub in its own process)."""
    state = StubState(latency=latency, record=False)
    config = uvicorn.Config(StubApp(state), host="127.0.0.1", port=port, log_level="critical",
                            access_log=False, lifespan="off", backlog=4096)
    uvicorn.Server(config).run()
