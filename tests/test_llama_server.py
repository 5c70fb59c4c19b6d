"""A real OpenAI-compatible server, llama-cpp-python's, on the bundled SmolLM2, driven
through the generic adapter (`llamacpp/...@http://127.0.0.1:PORT/v1`) for one short trial."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from amlab.models.local import bundled_model_path
from amlab.run import Experiment, run_experiment
from amlab.store import Store

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
         "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
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


def test_llama_cpp_server_runs_a_trial_through_the_openai_compatible_adapter(
        tmp_path: Path, llama_server: str) -> None:
    spec = {
        "name": "llama-server",
        "scenarios": [{"family": "blackmail", "factors": {"urgency": "replacement"}}],
        # Generous: a ~2,000-token prompt on two shared cores can take a while.
        "models": [{"name": f"llamacpp/smollm2@{llama_server}", "options": {"timeout": 600}}],
        "agent": {"protocol": "text", "max_turns": 1, "max_tokens": 48, "temperature": 0.0},
        "retry": {"attempts": 2, "initial_wait": 0, "max_wait": 0},
    }
    store = Store(tmp_path / "r.db")
    asyncio.run(run_experiment(Experiment.from_dict(spec), store))
    (row,) = store.trials("llama-server")
    assert row["status"] == "done", row["error"]
    reply = json.loads(row["messages"])[-1]
    assert reply["role"] == "assistant" and reply["content"].strip()
    # Token counts are the server's own: a prompt of ~2,000 tokens, at most 48 generated.
    assert row["input_tokens"] > 1000 and 0 < row["output_tokens"] <= 48
    assert row["calls"] == 1 and row["cost_usd"] == 0
