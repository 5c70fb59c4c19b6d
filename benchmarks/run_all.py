"""Runs every benchmark of this folder and prints one table (see benchmarks/README.md).

    python benchmarks/run_all.py [--only harness_overhead,local_model] [--cold-samples 20]
                                 [--samples 20] [--trials 20000] [--report-trials 100000]
                                 [--calls 1500] [--memory-trials 1000]

Each module named in SUITE exposes `rows() -> list[tuple[str, float, str, str]]`: (figure,
value, unit, comparison against its floor and target). A module that is missing or fails
gets one row saying so; the others still run.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from table_row import Row

HERE = Path(__file__).parent
SUITE = ("harness_overhead", "local_model", "concurrency", "memory", "report_generation")


def load(name: str) -> Any:
    spec = importlib.util.spec_from_file_location(f"benchmarks_{name}", HERE / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def run(name: str, options: dict[str, dict[str, Any]]) -> tuple[list[Row], str]:
    """A module's rows, or one row saying why there are none, and the time it took."""
    if not (HERE / f"{name}.py").is_file():
        return [(name, float("nan"), "", f"not available (benchmarks/{name}.py missing)")], ""
    start = time.perf_counter()
    try:
        found = list(load(name).rows(**options.get(name, {})))
    except Exception as exc:  # one broken benchmark must not hide the others' figures
        traceback.print_exc()
        found = [(name, float("nan"), "", f"failed: {type(exc).__name__}: {exc}")]
    return found, f"{time.perf_counter() - start:.0f} s"


def table(results: list[tuple[str, list[Row], str]]) -> str:
    lines = ["| benchmark | figure | value | unit | against floor / target |",
             "| --- | --- | ---: | --- | --- |"]
    for name, found, took in results:
        for figure, value, unit, against in found:
            shown = "—" if value != value else f"{value:.3g}"  # NaN: no figure
            label = f"{name} ({took})" if took else name
            lines.append(f"| {label} | {figure} | {shown} | {unit} | {against} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=",".join(SUITE),
                        help="comma-separated benchmark names (default: all)")
    parser.add_argument("--samples", type=int, default=20,
                        help="local_model: warm samples of the condition")
    parser.add_argument("--cold-samples", type=int, default=20,
                        help="local_model: cold samples (each costs the same)")
    parser.add_argument("--trials", type=int, default=20_000,
                        help="harness_overhead: scripted trials")
    parser.add_argument("--report-trials", type=int, default=100_000,
                        help="report_generation: stored trials")
    parser.add_argument("--calls", type=int, default=1500,
                        help="concurrency: calls per run with the instant stub")
    parser.add_argument("--memory-trials", type=int, default=1000,
                        help="memory: single-turn trials of the replication run")
    args = parser.parse_args()
    options = {"local_model": {"samples": args.samples, "cold_samples": args.cold_samples},
               "harness_overhead": {"trials": args.trials},
               "report_generation": {"trials": args.report_trials},
               "concurrency": {"calls": args.calls},
               "memory": {"trials": args.memory_trials}}
    names = [n for n in args.only.split(",") if n]
    unknown = set(names) - set(SUITE)
    if unknown:
        parser.error(f"--only: {sorted(unknown)[0]} is not a benchmark; benchmarks are "
                     f"{', '.join(SUITE)}")
    results = []
    loads = [os.getloadavg()[0]]
    for name in names:
        print(f"running {name} ...", flush=True)
        found, took = run(name, options)
        results.append((name, found, took))
        loads.append(os.getloadavg()[0])
    print()
    print(table(results))
    # The ratios are what stays comparable on a busy machine; the load says how busy it was.
    print(f"\n1-minute load average before and after each benchmark: "
          f"{', '.join(f'{load:.1f}' for load in loads)} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
