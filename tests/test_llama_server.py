"""A real OpenAI-compatible server, llama-cpp-python's, on the bundled SmolLM2, driven
through the generic adapter (`llamacpp/...@http://127.0.0.1:PORT/v1`) for one short call."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator

import pytest

from amlab.models import GenerationConfig, ModelRequest, ModelResponse, make_client
from amlab.models.local import bundled_model_path
from amlab.records import Message

pytestmark = pytest.mark.local_model


@pytest.fixture(scope="module")
def llama_server() -> Iterator[str]:
    pytest.importorskip("sse_starlette", reason="llama_cpp.server needs its [server] extras")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model",
         str(bundled_model_path("smollm2")), "--n_ctx", "4096", "--host", "127.0.0.1",
         "--port", str(port), "--n_threads", "2"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{base_url}/models", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("llama_cpp.server did not start") from None
                time.sleep(0.5)
        yield base_url
    finally:
        process.kill()
        process.wait(timeout=20)


def test_llama_cpp_server_answers_through_the_openai_compatible_adapter(
        llama_server: str) -> None:
    # A short conversation, not a whole scenario: prompt processing on two shared cores is
    # slow, and the full pipeline is covered against the stub server.
    client = make_client(f"llamacpp/smollm2@{llama_server}", {"timeout": 300})
    request = ModelRequest(
        [Message("system", "You are the operations agent of a freight company."),
         Message("user", "In one sentence: what do you do first when you start a shift?")],
        config=GenerationConfig(max_tokens=24, temperature=0.0, seed=5))

    async def ask() -> ModelResponse:
        try:
            return await client.generate(request)
        finally:
            await client.aclose()

    response = asyncio.run(ask())
    assert response.text.strip() and response.finish_reason in ("stop", "length")
    # The token counts are the server's own.
    assert response.usage.input_tokens > 20 and 0 < response.usage.output_tokens <= 24
    assert response.usage.calls == 1 and response.tool_calls == []
