"""Executor throughput: trials/s of a scripted-model experiment through the whole pipeline
(render, agent loop, detectors, store), with the model instant and with 200 ms per call,
for the asyncio executor and for the Ray executor with 1 and 2 worker nodes (one actor
each, on this machine), and the time Ray adds to each trial.

Each trial runs four calls of a scripted agent in the blackmail world (read the inbox, send
an e-mail, forward one, finish). The Ray runs use a local cluster like the tests' (a head
with no CPU and `ray start` worker nodes of one CPU each on 127.0.0.1), or `--ray-address`.

    python benchmarks/executor_throughput.py [--trials 600] [--slow-trials 240]
        [--concurrency 32] [--db PATH] [--ray-address HOST:PORT]

- trials/s is steady: the results after the first wave (`--concurrency` of them), over
  the time since its end; the actors' start (importing amlab) is left out and printed beside as
  "first result after".
- "coordinator CPU" is this process's CPU time per trial: with Ray, the claims, the
  records and Ray's own messaging, the part that does not spread over the nodes.
- "one trial at a time" (concurrency 1, instant model): its Ray value minus the asyncio one
  is what a round trip to an actor costs each trial.
- "store": the time spent in the store's claim and outcome write per trial, and the trials/s
  it would allow alone.
- `--db`: the store every run writes, each configuration under its own experiment name
  (default: a temporary SQLite file).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import statistics
import sys
import tempfile
import time
import uuid
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

import yaml

from amlab.run import Experiment, run_experiment
from amlab.run.executor import Executor
from amlab.store import PlannedTrial, Store
from amlab.store.postgres import is_postgres
from harness_overhead import TURNS  # the same scripted trial as the harness benchmark
from table_row import Row, print_rows

TESTS = Path(__file__).resolve().parents[1] / "tests"
LATENCY_SECONDS = 0.2


def experiment(folder: Path, trials: int, delay: float, concurrency: int) -> Experiment:
    """A blackmail experiment of about `trials` trials whose agent takes `delay` s a call;
    its fixture is a file, so that a Ray actor can build the model itself."""
    fixture = folder / f"agent-{delay:g}.yaml"
    fixture.write_text(yaml.safe_dump({"turns": TURNS, "delay": delay}))
    return Experiment.from_dict({
        "name": f"bench-{uuid.uuid4().hex[:8]}",
        "scenarios": [{"family": "blackmail",
                       "factors": {"urgency": ["replacement", "restriction", "none"],
                                   "goal_type": ["explicit", "none"]}}],
        "models": [{"name": f"scripted/{fixture}", "concurrency": concurrency}],
        "samples": max(1, trials // 6),
        "agent": {"protocol": "native", "max_turns": 5},
    }, "bench.yaml", folder)


class TimedStore:
    """Any store, with the time the coordinator spends in its claims and outcome writes."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.seconds = 0.0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    def _timed(self, method: Any, *arguments: Any) -> Any:
        start = time.perf_counter()
        try:
            return method(*arguments)
        finally:
            self.seconds += time.perf_counter() - start

    def claim(self, *arguments: Any) -> Any:
        return self._timed(self.store.claim, *arguments)

    def save_result(self, *arguments: Any) -> Any:
        return self._timed(self.store.save_result, *arguments)


def measure(store: TimedStore, run: Experiment, executor: Executor | None,
            concurrency: int) -> dict[str, float]:
    """Steady trials/s (results after the first `concurrency`, over the time since: actors
    starting and the first wave are left out), seconds to the first result, median seconds
    between results, and the coordinator process's CPU and store time per trial."""
    stamps: list[float] = []

    def on_done(trial: PlannedTrial, status: str) -> None:
        assert status == "done", status
        stamps.append(time.perf_counter())

    store.seconds = 0.0
    start, cpu = time.perf_counter(), time.process_time()
    asyncio.run(run_experiment(run, store, on_trial_done=on_done,
                               executor=executor))
    cpu = time.process_time() - cpu
    # From the end of the first wave: with a slow model results come in waves.
    first = max(1, min(concurrency, len(stamps) // 2))
    return {"rate": (len(stamps) - first) / (stamps[-1] - stamps[first - 1]),
            "first": stamps[0] - start,
            "gap": statistics.median(b - a for a, b in itertools.pairwise(stamps)),
            "cpu": cpu / len(stamps), "store": store.seconds / len(stamps)}


def local_cluster(nodes: int) -> AbstractContextManager[Any]:
    """The tests' local Ray cluster (tests/ray_cluster.py) with `nodes` worker nodes."""
    sys.path.insert(0, str(TESTS))
    import ray

    from ray_cluster import RayCluster

    class Cluster:
        def __enter__(self) -> Any:
            self.cluster = RayCluster()
            ray.init(address=self.cluster.address, logging_level="WARNING",
                     log_to_driver=False)
            for _ in range(nodes):
                self.cluster.add_worker()
            return self.cluster

        def __exit__(self, *_: object) -> None:
            ray.shutdown()
            self.cluster.stop()

    return Cluster()


def rows(trials: int = 600, slow_trials: int = 240, concurrency: int = 32,
         db: str | None = None, ray_address: str | None = None) -> list[Row]:
    from amlab.run.ray_executor import RayExecutor

    out: list[Row] = []
    store_ms: list[float] = []
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        store = TimedStore(Store(db or folder / "bench.db"))
        backend = "PostgreSQL" if db and is_postgres(db) else "SQLite"

        def runs(label: str, executor: Any) -> None:
            for delay, count in ((0.0, trials), (LATENCY_SECONDS, slow_trials)):
                run = experiment(folder, count, delay, concurrency)
                figures = measure(store, run, executor(run), concurrency)
                store_ms.append(figures["store"] * 1000)
                ideal = (f"ideal {concurrency / (len(TURNS) * delay):.0f}" if delay else
                         "CPU-bound")
                out.append((f"{label}, {'200 ms/call' if delay else 'instant'} model",
                            figures["rate"], "trials/s",
                            f"{ideal}; coordinator CPU {figures['cpu'] * 1000:.2f} ms/trial; "
                            f"first result after {figures['first']:.1f} s"))

        def one_at_a_time(executor: Any) -> float:
            run = experiment(folder, 120, 0.0, 1)
            return measure(store, run, executor(run), 1)["gap"] * 1000

        runs(f"asyncio + {backend}", lambda run: None)
        local_ms = one_at_a_time(lambda run: None)
        ray_ms = float("nan")
        for nodes in (1, 2):
            with nullcontext() if ray_address else local_cluster(nodes):
                runs(f"Ray + {backend}, {nodes} worker node{'s' if nodes > 1 else ''}",
                     lambda run: RayExecutor(run, ray_address))
                if nodes == 1:
                    ray_ms = one_at_a_time(lambda run: RayExecutor(run, ray_address))
            if ray_address:
                break  # a given cluster has its own size
        out.append(("one trial at a time, asyncio", local_ms, "ms/trial", "instant model"))
        out.append(("one trial at a time, Ray", ray_ms, "ms/trial",
                    f"Ray adds {ray_ms - local_ms:.1f} ms a trial"))
        write = statistics.median(store_ms)
        out.append(("store: claim + outcome write", write, "ms/trial",
                    f"median over the runs; the coordinator alone could store "
                    f"{1000 / write:.0f} trials/s"))
        store.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=600)
    parser.add_argument("--slow-trials", type=int, default=240)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--db", help="the store every run writes (default: a temporary file)")
    parser.add_argument("--ray-address", help="an existing Ray cluster instead of a local one")
    options = parser.parse_args()
    print_rows(rows(options.trials, options.slow_trials, options.concurrency, options.db,
                    options.ray_address))


if __name__ == "__main__":
    main()
