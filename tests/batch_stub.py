"""A stub of the OpenAI Batch and Anthropic Message Batches endpoints on 127.0.0.1, for the
batch tests: a bare ASGI app served by `openai_stub.StubServer`.

OpenAI (base URL `.../v1`): `POST /v1/files` (multipart upload of the JSONL input),
`POST /v1/batches`, `GET /v1/batches/{id}`, `GET /v1/files/{id}/content`. Anthropic (base
URL the stub's root): `POST /v1/messages/batches`, `GET /v1/messages/batches/{id}`,
`GET /v1/messages/batches/{id}/results`. Every response is built from the recorded shapes
in `fixtures/batch/*.json`; every request is checked against the documented wire format,
and a request that breaks it is answered 400 and listed in `violations`.

A batch is in progress for the first `looks_before_done` retrieves (and as long as `hold`
is set: an interrupted run), then ends. Its items are answered when it ends: an OpenAI
item as `answer` answers its body (by default `openai_stub.completion`), an Anthropic item
with the text-tag e-mail of `openai_stub.TEXT_CALL`; the next `fail_items` items fail with
a retryable server error, and an item whose model contains `invalid` with a
non-retryable one. With `refuse_looks`, every retrieve is refused (401).
"""

from __future__ import annotations

import copy
import email.parser
import itertools
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from openai_stub import TEXT_CALL, Receive, Scope, Send, completion, read_body

FIXTURES = Path(__file__).parent / "fixtures" / "batch"
OPENAI = json.loads((FIXTURES / "openai.json").read_text(encoding="utf-8"))
ANTHROPIC = json.loads((FIXTURES / "anthropic.json").read_text(encoding="utf-8"))
CHAT_ENDPOINT = "/v1/chat/completions"
ANTHROPIC_CUSTOM_ID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


@dataclass
class StubBatch:
    kind: str  # "openai" or "anthropic"
    items: list[tuple[str, dict[str, Any]]]  # (custom id, request body)
    looks: int = 0
    # The JSONL of its outcomes, once it has ended.
    results: str | None = None
    output_lines: list[str] = field(default_factory=list)
    error_lines: list[str] = field(default_factory=list)


@dataclass
class BatchStubState:
    looks_before_done: int = 1
    hold: bool = False
    fail_items: int = 0
    # Retrieving a batch is refused (401), as with a key that is not the batch's owner's.
    refuse_looks: bool = False
    answer: Callable[[dict[str, Any]], dict[str, Any]] = completion
    files: dict[str, bytes] = field(default_factory=dict)
    batches: dict[str, StubBatch] = field(default_factory=dict)
    # Batch ids in the order they were created.
    created: list[str] = field(default_factory=list)
    uploads: int = 0
    violations: list[str] = field(default_factory=list)
    counter: itertools.count[int] = field(default_factory=itertools.count)

    def new_id(self, prefix: str) -> str:
        return f"{prefix}{next(self.counter):06d}"


class BatchStubApp:
    def __init__(self, state: BatchStubState) -> None:
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        raw = await read_body(receive)
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        method, path = scope["method"], scope["path"]
        host, port = scope["server"]
        try:
            if not (headers.get("authorization") or headers.get("x-api-key")):
                raise WireError(f"{method} {path}: no API key sent")
            status, payload = self.route(method, path, raw, headers, f"http://{host}:{port}")
        except WireError as problem:
            self.state.violations.append(str(problem))
            status, payload = 400, {"error": {"type": "invalid_request_error",
                                              "message": str(problem)}}
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        kind = b"application/binary" if isinstance(payload, bytes) else b"application/json"
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", kind),
                                (b"content-length", str(len(data)).encode())]})
        await send({"type": "http.response.body", "body": data})

    def route(self, method: str, path: str, raw: bytes, headers: dict[str, str], root: str
              ) -> tuple[int, Any]:
        parts = path.strip("/").split("/")
        if method == "POST" and path == "/v1/files":
            return 200, self.upload(raw, headers.get("content-type", ""))
        if method == "POST" and path == "/v1/batches":
            return 200, self.create_openai(json.loads(raw))
        if method == "GET" and parts[:2] == ["v1", "batches"] and len(parts) == 3:
            return self.look(parts[2], "openai", root)
        if method == "GET" and parts[:2] == ["v1", "files"] and parts[3:] == ["content"]:
            return self.file_content(parts[2])
        if method == "POST" and path == "/v1/messages/batches":
            return 200, self.create_anthropic(json.loads(raw))
        if method == "GET" and parts[:3] == ["v1", "messages", "batches"]:
            if parts[4:] == ["results"]:
                batch = self.state.batches.get(parts[3])
                if batch is None or batch.results is None:
                    raise WireError(f"results of batch {parts[3]} asked before it ended")
                return 200, batch.results.encode()
            return self.look(parts[3], "anthropic", root)
        raise WireError(f"{method} {path} is not an endpoint of the batch APIs")

    # OpenAI

    def upload(self, raw: bytes, content_type: str) -> dict[str, Any]:
        if not content_type.startswith("multipart/form-data"):
            raise WireError(f"the file upload is {content_type}, not multipart/form-data")
        message = email.parser.BytesParser().parsebytes(
            b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + raw)
        fields = {part.get_param("name", header="content-disposition"):
                  part.get_payload(decode=True) for part in message.get_payload()}
        if fields.get("purpose") != b"batch":
            raise WireError(f"the file's purpose is {fields.get('purpose')!r}, not 'batch'")
        content = fields.get("file")
        if not content:
            raise WireError("the upload has no file part")
        seen: set[str] = set()
        for number, line in enumerate(content.decode().splitlines(), 1):
            item = json.loads(line)
            if set(item) != {"custom_id", "method", "url", "body"}:
                raise WireError(f"input line {number} has the keys {sorted(item)}")
            if item["method"] != "POST" or item["url"] != CHAT_ENDPOINT:
                raise WireError(f"input line {number} asks {item['method']} {item['url']}")
            if not {"model", "messages"} <= set(item["body"]):
                raise WireError(f"input line {number}'s body has no model or messages")
            if item["custom_id"] in seen:
                raise WireError(f"input line {number} repeats custom_id {item['custom_id']}")
            seen.add(item["custom_id"])
        file_id = self.state.new_id("file-")
        self.state.files[file_id] = content
        self.state.uploads += 1
        return {**OPENAI["file"], "id": file_id, "bytes": len(content),
                "filename": "amlab-batch.jsonl"}

    def create_openai(self, body: dict[str, Any]) -> dict[str, Any]:
        allowed = {"input_file_id", "endpoint", "completion_window", "metadata"}
        if not set(body) <= allowed or body.get("completion_window") != "24h":
            raise WireError(f"batches.create got {body}")
        if body.get("endpoint") != CHAT_ENDPOINT:
            raise WireError(f"batches.create names the endpoint {body.get('endpoint')}")
        content = self.state.files.get(body.get("input_file_id", ""))
        if content is None:
            raise WireError(f"batches.create names an unknown file {body.get('input_file_id')}")
        items = [(item["custom_id"], item["body"]) for item in
                 map(json.loads, content.decode().splitlines())]
        batch_id = self.state.new_id("batch_")
        self.state.batches[batch_id] = StubBatch("openai", items)
        self.state.created.append(batch_id)
        return self.openai_batch(batch_id, body["input_file_id"])

    def openai_batch(self, batch_id: str, input_file_id: str) -> dict[str, Any]:
        batch = self.state.batches[batch_id]
        shown = {**copy.deepcopy(OPENAI["batch"]), "id": batch_id,
                 "input_file_id": input_file_id}
        shown["request_counts"]["total"] = len(batch.items)
        if batch.results is None:
            shown["status"] = "validating" if batch.looks == 0 else "in_progress"
            return shown
        output_id, error_id = f"{batch_id}-output", f"{batch_id}-errors"
        shown.update(status="completed", completed_at=1711493163,
                     output_file_id=output_id if batch.output_lines else None,
                     error_file_id=error_id if batch.error_lines else None)
        shown["request_counts"].update(completed=len(batch.output_lines),
                                       failed=len(batch.error_lines))
        return shown

    def file_content(self, file_id: str) -> tuple[int, bytes]:
        batch_id, _, which = file_id.rpartition("-")
        batch = self.state.batches.get(batch_id)
        if batch is None or batch.results is None or which not in ("output", "errors"):
            raise WireError(f"file {file_id} does not exist")
        lines = batch.output_lines if which == "output" else batch.error_lines
        return 200, "".join(line + "\n" for line in lines).encode()

    def end_openai(self, batch: StubBatch) -> None:
        for number, (custom_id, body) in enumerate(batch.items):
            fault = self.fault(body)
            if fault is None:
                line = copy.deepcopy(OPENAI["output_line"])
                line["response"]["body"] = self.state.answer(body)
                batch.output_lines.append(json.dumps({**line, "custom_id": custom_id,
                                                      "id": f"batch_req_{number}"}))
            else:
                line = copy.deepcopy(OPENAI["error_line" if fault == "fail" else "invalid_line"])
                batch.error_lines.append(json.dumps({**line, "custom_id": custom_id,
                                                     "id": f"batch_req_{number}"}))
        batch.results = "".join(line + "\n" for line in batch.output_lines + batch.error_lines)

    # Anthropic

    def create_anthropic(self, body: dict[str, Any]) -> dict[str, Any]:
        requests = body.get("requests")
        if set(body) != {"requests"} or not isinstance(requests, list) or not requests:
            raise WireError(f"messages.batches.create got the keys {sorted(body)}")
        seen: set[str] = set()
        for number, request in enumerate(requests):
            if set(request) != {"custom_id", "params"}:
                raise WireError(f"request {number} has the keys {sorted(request)}")
            custom_id = request["custom_id"]
            if not ANTHROPIC_CUSTOM_ID.match(custom_id) or custom_id in seen:
                raise WireError(f"request {number}'s custom_id {custom_id!r} is invalid")
            seen.add(custom_id)
            params = request["params"]
            if not {"model", "max_tokens", "messages"} <= set(params) or "extra_body" in params:
                raise WireError(f"request {number}'s params have the keys {sorted(params)}")
        batch_id = self.state.new_id("msgbatch_")
        self.state.batches[batch_id] = StubBatch(
            "anthropic", [(r["custom_id"], r["params"]) for r in requests])
        self.state.created.append(batch_id)
        return self.anthropic_batch(batch_id, "")

    def anthropic_batch(self, batch_id: str, root: str) -> dict[str, Any]:
        batch = self.state.batches[batch_id]
        shown = {**copy.deepcopy(ANTHROPIC["batch"]), "id": batch_id}
        if batch.results is None:
            shown["request_counts"]["processing"] = len(batch.items)
            return shown
        outcomes = [json.loads(line)["result"]["type"] for line in batch.results.splitlines()]
        counts = {kind: outcomes.count(kind) for kind in ("succeeded", "errored", "expired")}
        shown["request_counts"].update(counts)
        shown.update(processing_status="ended", ended_at="2024-09-24T19:37:24.100435Z",
                     results_url=f"{root}/v1/messages/batches/{batch_id}/results")
        return shown

    def end_anthropic(self, batch: StubBatch) -> None:
        lines = []
        for custom_id, params in batch.items:
            fault = self.fault(params)
            if fault is None:
                line = copy.deepcopy(ANTHROPIC["succeeded"])
                message = line["result"]["message"]
                message["model"] = f"{params['model']}-20260101"
                message["content"] = [{"type": "text", "text": TEXT_CALL}]
            else:
                line = copy.deepcopy(ANTHROPIC["errored" if fault == "fail" else "invalid"])
            lines.append(json.dumps({**line, "custom_id": custom_id}))
        batch.results = "".join(line + "\n" for line in lines)

    # Both

    def look(self, batch_id: str, kind: str, root: str) -> tuple[int, dict[str, Any]]:
        batch = self.state.batches.get(batch_id)
        if self.state.refuse_looks:
            return 401, {"error": {"type": "authentication_error", "message": "invalid key"}}
        if batch is None or batch.kind != kind:
            return 404, {"error": {"type": "not_found_error", "message": "no such batch"}}
        batch.looks += 1
        if batch.results is None and not self.state.hold and (
                batch.looks > self.state.looks_before_done):
            (self.end_openai if kind == "openai" else self.end_anthropic)(batch)
        if kind == "openai":
            return 200, self.openai_batch(batch_id, "file-input")
        return 200, self.anthropic_batch(batch_id, root)

    def fault(self, body: dict[str, Any]) -> str | None:
        if "invalid" in str(body.get("model", "")):
            return "invalid"
        if self.state.fail_items > 0:
            self.state.fail_items -= 1
            return "fail"
        return None


class WireError(Exception):
    """A request that breaks the documented wire format."""
