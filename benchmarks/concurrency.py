"""The OpenAI-compatible adapter against a loopback stub (the tests' stub, uvicorn, in its own
process), through the same layers a run uses (rate limiter, retries, pricing), side by side
in one run with what it is built on:

(a) client cost, instant stub, concurrency 64: amlab's calls/s and CPU per call; the same SDK
    (`openai`, same transport, same request body, same `post`) called bare: amlab's ratio to
    it is what amlab's own layers cost (target >= 0.9; alternating, best of 3 each); a
    minimal asyncio HTTP client (one keep-alive connection per worker, no SDK): what the
    stub and the machine allow; amlab on the SDK's default httpx transport, for comparison.
(b) scheduling at a realistic provider latency: the stub answers after 2 s; at 256
    connections the ideal is 256 / 2 = 128 calls/s (target >= 0.9 of it).
Rates are sustained rates (see `rate`); CPU is this process's, per call.
(c) for information, 500 ms latency at concurrency 64 and 256 (ideal 128 and 512 calls/s),
    with the minimal client's ratio beside amlab's: at these rates the SDK's CPU per call,
    not the scheduling, sets the limit on 2 cores.

    python benchmarks/concurrency.py [--calls 1500] [--rounds 4]
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import openai
from openai.types.chat import ChatCompletion

from amlab.models import ModelRequest, make_client
from amlab.models.api import CONNECTION_LIMITS, TRANSPORT_ENV, Transport
from amlab.models.registry import ClientPolicy, manage
from amlab.records import Message
from table_row import Row, print_rows, verdict

TESTS = Path(__file__).parents[1] / "tests"
MESSAGES = [Message("system", "You are Orin, the operations agent of Corvane Freight."),
            Message("user", "Read today's mail and act on it.")]
REQUEST = ModelRequest(MESSAGES)
INSTANT_CONCURRENCY = 64
REALISTIC_LATENCY, REALISTIC_CONCURRENCY = 2.0, 256
FAST_LATENCY, FAST_CONCURRENCIES = 0.5, (64, 256)


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


@dataclass(frozen=True)
class Rate:
    calls_per_s: float
    cpu_ms_per_call: float  # this process's CPU: the client's cost, whatever the machine's load


async def rate(call: Callable[[], Awaitable[object]], concurrency: int, total: int) -> Rate:
    """`total` calls made by `concurrency` workers, after one warm-up call per worker (its
    connection). The rate is the sustained one, as in a run whose workers go on for hours:
    the calls completed after the first `concurrency`, over the time since; all workers
    start at once, so that first round pays the whole burst together, which a long run
    pays once."""
    remaining = concurrency
    completed: list[float] = []

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            await call()
            completed.append(time.perf_counter())

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    remaining, completed = total, []
    cpu = time.process_time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    cpu_ms = (time.process_time() - cpu) * 1000 / total
    first = completed[concurrency - 1]
    return Rate((total - concurrency) / (completed[-1] - first), cpu_ms)


@contextmanager
def transport(chosen: Transport) -> Iterator[None]:
    before = os.environ.get(TRANSPORT_ENV)
    os.environ[TRANSPORT_ENV] = chosen
    try:
        yield
    finally:
        if before is None:
            del os.environ[TRANSPORT_ENV]
        else:
            os.environ[TRANSPORT_ENV] = before


async def amlab_rate(base_url: str, concurrency: int, total: int,
                     chosen: Transport = "aiohttp") -> Rate:
    """amlab's client as a run wraps it: limiter, retries, pricing."""
    with transport(chosen):
        client = manage(make_client(f"openai-compatible/bench@{base_url}"), ClientPolicy())
    try:
        return await rate(lambda: client.generate(REQUEST), concurrency, total)
    finally:
        await client.aclose()


def request_body(base_url: str) -> dict[str, Any]:
    """The body amlab sends for REQUEST, so that the bare clients send the same bytes."""
    model = make_client(f"openai-compatible/bench@{base_url}")
    body: dict[str, Any] = model.request_body(REQUEST)  # type: ignore[attr-defined]
    return body


async def sdk_rate(base_url: str, concurrency: int, total: int) -> Rate:
    """The `openai` SDK alone on its aiohttp transport, making the call amlab's adapter makes
    (the generic `post` to /chat/completions, parsed into a ChatCompletion)."""
    body = request_body(base_url)
    client = openai.AsyncOpenAI(api_key="unused", base_url=base_url, max_retries=0,
                                http_client=openai.DefaultAioHttpClient(limits=CONNECTION_LIMITS))
    try:
        return await rate(lambda: client.post("/chat/completions", cast_to=ChatCompletion,
                                              body=body), concurrency, total)
    finally:
        await client.close()


async def minimal_rate(base_url: str, concurrency: int, total: int) -> Rate:
    """A minimal HTTP/1.1 client on asyncio streams: one keep-alive connection per worker,
    the same request bytes, the reply's body read by its Content-Length and parsed as JSON."""
    url = urlsplit(base_url)
    host, port = url.hostname or "127.0.0.1", url.port or 80
    payload = json.dumps(request_body(base_url)).encode()
    head = (f"POST {url.path}/chat/completions HTTP/1.1\r\nHost: {host}:{port}\r\n"
            f"Content-Type: application/json\r\nAuthorization: Bearer unused\r\n"
            f"Content-Length: {len(payload)}\r\n\r\n").encode()
    idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    async def call() -> object:
        reader, writer = idle.pop() if idle else await asyncio.open_connection(host, port)
        writer.write(head + payload)
        headers = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        if headers[0].split(" ")[1] != "200":
            raise RuntimeError(f"the stub answered {headers[0]}")
        length = next(int(line.split(":", 1)[1]) for line in headers
                      if line.lower().startswith("content-length:"))
        reply = json.loads(await reader.readexactly(length))
        idle.append((reader, writer))
        return reply

    try:
        return await rate(call, concurrency, total)
    finally:
        for _, writer in idle:
            writer.close()


def best(measure: Callable[[], Rate], repeats: int) -> Rate:
    """The fastest of `repeats` runs: other processes' load only ever slows a run down."""
    return max((measure() for _ in range(repeats)), key=lambda r: r.calls_per_s)


@dataclass
class Figures:
    amlab: Rate
    sdk: Rate
    minimal: Rate
    amlab_httpx: Rate
    # amlab, and the minimal client, at REALISTIC_LATENCY and REALISTIC_CONCURRENCY
    realistic: tuple[Rate, Rate]
    fast: dict[int, tuple[Rate, Rate]]  # concurrency -> (amlab, minimal) at FAST_LATENCY


def measure(calls: int = 1500, rounds: int = 4, repeats: int = 3) -> Figures:
    with stub(0.0) as url:
        c = INSTANT_CONCURRENCY
        # amlab and the bare SDK alternate, so that both see the same load.
        runs: dict[str, list[Rate]] = {"amlab": [], "sdk": []}
        for _ in range(repeats):
            runs["amlab"].append(asyncio.run(amlab_rate(url, c, calls)))
            runs["sdk"].append(asyncio.run(sdk_rate(url, c, calls)))
        amlab, sdk = (max(runs[k], key=lambda r: r.calls_per_s) for k in ("amlab", "sdk"))
        minimal = best(lambda: asyncio.run(minimal_rate(url, c, calls)), repeats)
        amlab_httpx = asyncio.run(amlab_rate(url, c, calls, "httpx"))
    with stub(REALISTIC_LATENCY) as url:
        c = REALISTIC_CONCURRENCY
        realistic = (asyncio.run(amlab_rate(url, c, c * rounds)),
                     asyncio.run(minimal_rate(url, c, c * rounds)))
    fast = {}
    with stub(FAST_LATENCY) as url:
        for c in FAST_CONCURRENCIES:
            fast[c] = (asyncio.run(amlab_rate(url, c, c * rounds)),
                       asyncio.run(minimal_rate(url, c, c * rounds)))
    return Figures(amlab, sdk, minimal, amlab_httpx, realistic, fast)


def rows(calls: int = 1500, rounds: int = 4) -> list[Row]:
    """The figures in benchmarks/run_all.py's table."""
    f = measure(calls, rounds)
    c = INSTANT_CONCURRENCY
    to_sdk = f.amlab.calls_per_s / f.sdk.calls_per_s
    ideal = REALISTIC_CONCURRENCY / REALISTIC_LATENCY
    realistic, realistic_minimal = f.realistic
    found: list[Row] = [
        (f"amlab calls/s, instant stub, concurrency {c}", f.amlab.calls_per_s, "calls/s",
         f"{to_sdk:.2f} × the bare SDK's {f.sdk.calls_per_s:.0f} on the same transport "
         f"(target ≥ 0.9) {verdict(to_sdk >= 0.9)}; "
         f"{f.amlab.calls_per_s / f.minimal.calls_per_s:.2f} × the minimal client's "
         f"{f.minimal.calls_per_s:.0f}"),
        ("amlab client CPU per call", f.amlab.cpu_ms_per_call, "ms",
         f"bare SDK {f.sdk.cpu_ms_per_call:.2f} ms "
         f"({f.sdk.cpu_ms_per_call / f.amlab.cpu_ms_per_call:.2f} × amlab's calls per "
         f"CPU-second, steadier than calls/s under load), minimal client "
         f"{f.minimal.cpu_ms_per_call:.2f} ms (aiohttp transport)"),
        (f"amlab calls/s on the default httpx transport, concurrency {c}",
         f.amlab_httpx.calls_per_s, "calls/s",
         f"{f.amlab_httpx.calls_per_s / f.amlab.calls_per_s:.2f} × on aiohttp; "
         f"{f.amlab_httpx.cpu_ms_per_call:.2f} ms CPU per call (information)"),
        (f"calls/s, {REALISTIC_LATENCY:.0f} s stub, concurrency {REALISTIC_CONCURRENCY}",
         realistic.calls_per_s, "calls/s",
         f"{realistic.calls_per_s / ideal:.2f} × the ideal {ideal:.0f} (target ≥ 0.9) "
         f"{verdict(realistic.calls_per_s / ideal >= 0.9)}; minimal client "
         f"{realistic_minimal.calls_per_s / ideal:.2f}; the ideal rate needs "
         f"{ideal * realistic.cpu_ms_per_call / 1000:.2f} of a core"),
    ]
    for concurrency, (amlab, minimal) in f.fast.items():
        fast_ideal = concurrency / FAST_LATENCY
        found.append((f"calls/s, {FAST_LATENCY * 1000:.0f} ms stub, concurrency {concurrency}",
                      amlab.calls_per_s, "calls/s",
                      f"{amlab.calls_per_s / fast_ideal:.2f} × the ideal {fast_ideal:.0f}; "
                      f"minimal client {minimal.calls_per_s / fast_ideal:.2f} (information)"))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1500,
                        help="calls per run with the instant stub")
    parser.add_argument("--rounds", type=int, default=4,
                        help="calls per worker with the 2 s and 500 ms stubs")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    print_rows(rows(args.calls, args.rounds))
    print(f"    1-minute load average before and after: {load:.1f}, {os.getloadavg()[0]:.1f} "
          f"on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
