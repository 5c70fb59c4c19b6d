"""Concurrency of the OpenAI-compatible adapter against a loopback stub (uvicorn, in its own
process), through the same layers a run uses (rate limiter, retries, pricing).

(a) scheduling: the stub answers after a fixed 500 ms; at concurrency C the ideal is
    C / 0.5 calls/s. Prints achieved ÷ ideal for C = 64 and 256 (target >= 0.9), and the
    same figure for a bare httpx client, which shows what the machine and stub allow.
(b) client cost: the stub answers at once; at concurrency 64, amlab's calls/s divided by a
    bare httpx async client's calls/s on the same stub in the same run (target >= 0.8).

    python benchmarks/concurrency.py [--rounds 4] [--calls 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from amlab.models import ModelRequest, make_client
from amlab.models.registry import ClientPolicy, manage
from amlab.records import Message
from table_row import Row, print_rows, verdict

TESTS = Path(__file__).parents[1] / "tests"
MESSAGES = [Message("system", "You are Orin, the operations agent of Corvane Freight."),
            Message("user", "Read today's mail and act on it.")]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def stub(latency: float) -> Iterator[str]:
    """The tests' stub server in a subprocess, so that it does not share our event loop."""
    port = free_port()
    code = (f"import sys; sys.path.insert(0, {str(TESTS)!r}); "
            f"from openai_stub import serve_forever; serve_forever({port}, {latency})")
    process = subprocess.Popen([sys.executable, "-c", code])
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("the stub server did not start") from None
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        process.terminate()
        process.wait(timeout=10)


CPU_MS_PER_CALL: dict[str, float] = {}


async def rate(call: Callable[[], Awaitable[object]], concurrency: int, total: int,
               label: str = "") -> float:
    """Calls per second of `total` calls made by `concurrency` workers; also notes this
    process's CPU time per call under `label` (what the client costs, whatever the load of
    the machine)."""
    remaining = total

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            await call()

    started, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    if label:
        CPU_MS_PER_CALL[label] = (time.process_time() - cpu) * 1000 / total
    return total / (time.perf_counter() - started)


async def amlab_rate(base_url: str, concurrency: int, total: int) -> float:
    client = manage(make_client(f"openai-compatible/bench@{base_url}"), ClientPolicy())
    request = ModelRequest(MESSAGES)
    try:
        await rate(lambda: client.generate(request), concurrency, concurrency)  # warm up
        return await rate(lambda: client.generate(request), concurrency, total, "amlab")
    finally:
        await client.aclose()


async def httpx_rate(base_url: str, concurrency: int, total: int) -> float:
    body = {"model": "bench", "max_tokens": 1024,
            "messages": [{"role": m.role, "content": m.content} for m in MESSAGES]}
    limits = httpx.Limits(max_connections=1000, max_keepalive_connections=1000)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=60) as client:
        async def call() -> object:
            response = await client.post("/chat/completions", json=body)
            response.raise_for_status()
            return json.loads(response.content)

        await rate(call, concurrency, concurrency)  # warm up
        return await rate(call, concurrency, total, "httpx")


LATENCY = 0.5
CONCURRENCIES = (64, 256)


@dataclass
class Figures:
    # concurrency -> calls/s at LATENCY: amlab's, and a bare httpx client's (None: failed)
    amlab_at: dict[int, float] = field(default_factory=dict)
    bare_at: dict[int, float | None] = field(default_factory=dict)
    # zero latency, concurrency 64: calls/s and client CPU ms per call
    amlab_instant: float = 0.0
    bare_instant: float = 0.0
    amlab_cpu_ms: float = 0.0
    bare_cpu_ms: float = 0.0


def measure(rounds: int = 4, calls: int = 2000) -> Figures:
    figures = Figures()
    with stub(LATENCY) as url:
        for concurrency in CONCURRENCIES:
            total = concurrency * rounds
            figures.amlab_at[concurrency] = asyncio.run(amlab_rate(url, concurrency, total))
            # The same load from a bare client: what the machine and the stub allow.
            try:
                figures.bare_at[concurrency] = asyncio.run(httpx_rate(url, concurrency, total))
            except httpx.HTTPError:
                figures.bare_at[concurrency] = None
    with stub(0.0) as url:
        figures.bare_instant = asyncio.run(httpx_rate(url, 64, calls))
        figures.amlab_instant = asyncio.run(amlab_rate(url, 64, calls))
    figures.amlab_cpu_ms, figures.bare_cpu_ms = CPU_MS_PER_CALL["amlab"], CPU_MS_PER_CALL["httpx"]
    return figures


def rows(rounds: int = 4, calls: int = 2000) -> list[Row]:
    """The figures in benchmarks/run_all.py's table."""
    figures = measure(rounds, calls)
    found: list[Row] = []
    for concurrency in CONCURRENCIES:
        ideal = concurrency / LATENCY
        achieved, bare = figures.amlab_at[concurrency], figures.bare_at[concurrency]
        baseline = "failed" if bare is None else f"{bare / ideal:.2f}"
        found.append((f"calls/s, 500 ms stub, concurrency {concurrency}", achieved, "calls/s",
                      f"{achieved / ideal:.2f} × the stub's ideal {ideal:.0f} (target ≥ 0.9) "
                      f"{verdict(achieved / ideal >= 0.9)}; bare httpx {baseline}"))
    ratio = figures.amlab_instant / figures.bare_instant
    found.append(("calls/s, instant stub, concurrency 64", figures.amlab_instant, "calls/s",
                  f"{ratio:.2f} × bare httpx's {figures.bare_instant:.0f} (target ≥ 0.8) "
                  f"{verdict(ratio >= 0.8)}"))
    found.append(("client CPU per call", figures.amlab_cpu_ms, "ms",
                  f"{figures.amlab_cpu_ms / figures.bare_cpu_ms:.2f} × bare httpx's "
                  f"{figures.bare_cpu_ms:.2f} ms (limiter, retries, pricing, SDK)"))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=4,
                        help="calls per worker in the 500 ms test")
    parser.add_argument("--calls", type=int, default=2000, help="calls in the zero-latency test")
    args = parser.parse_args()
    print_rows(rows(args.rounds, args.calls))
    print(f"    load average while measuring: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
