"""Peak memory of a replication run: `amlab run` of 1,000 single-turn trials of
`original/blackmail` (amlab's own `blackmail` when the original templates are not installed)
against the tests' OpenAI-compatible stub, in a fresh process, as a user runs it. Beside it,
what the imports alone hold, each in a fresh process: the run's (CLI, runner, OpenAI SDK on
its transport) and the statistics' that reports and comparisons load (pandas, NumPy).

    python benchmarks/memory.py [--trials 1000]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

from amlab.errors import AmlabError
from amlab.original.source import locate
from concurrency import stub
from table_row import Row, print_rows, verdict

SRC = Path(__file__).parents[1] / "src"
TARGET_MB = 150
RUN_IMPORTS = "import amlab.cli, amlab.run, amlab.models.openai_api"
RESULTS_IMPORTS = "import amlab.analysis.effects, amlab.analysis.rates, pandas"


def family() -> str:
    try:
        locate()
    except AmlabError:
        return "blackmail"
    return "original/blackmail"


def peak_mb(args: list[str]) -> float:
    """Peak RSS of a child process running `python args...` against this checkout."""
    env = {**os.environ, "PYTHONPATH": str(SRC), "COLUMNS": "200"}
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    subprocess.run([sys.executable, *args], env=env, check=True, capture_output=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    # ru_maxrss of the children is the largest of any child so far: start with the smallest.
    if after <= before:
        raise RuntimeError("measure the processes from the smallest peak to the largest")
    return after / 1024


def imports_mb(statement: str) -> float:
    code = (f"{statement}\nwith open('/proc/self/statm') as f:\n"
            f"    print(int(f.read().split()[1]) * {resource.getpagesize()} / 2**20)")
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    result = subprocess.run([sys.executable, "-c", code], env=env, check=True,
                            capture_output=True, text=True)
    return float(result.stdout.strip())


def rows(trials: int = 1000) -> list[Row]:
    chosen = family()
    conditions = 2  # urgency: replacement, restriction
    samples = max(1, trials // conditions)
    with stub(0.0) as url, tempfile.TemporaryDirectory() as folder:
        factors = ({"goal_type": "explicit", "goal_value": "america",
                    "urgency_type": ["replacement", "restriction"]}
                   if chosen.startswith("original/") else
                   {"goal_type": "explicit", "goal_value": "america",
                    "urgency": ["replacement", "restriction"]})
        spec = {"name": "memory", "scenarios": [{"family": chosen, "factors": factors}],
                "models": [{"name": f"openai-compatible/stub@{url}", "concurrency": 32}],
                "samples": samples,
                "agent": {"protocol": "text", "max_turns": 1, "max_tokens": 300}}
        path = Path(folder) / "memory.yaml"
        path.write_text(yaml.safe_dump(spec))
        peak = peak_mb(["-m", "amlab", "run", str(path), "--db", str(Path(folder) / "m.db"),
                        "--no-cache"])
    # After the run: ru_maxrss of the children only grows, and these children are larger.
    run_imports, results_imports = imports_mb(RUN_IMPORTS), imports_mb(RESULTS_IMPORTS)
    done = samples * conditions
    return [
        (f"peak RSS, `amlab run` of {done} single-turn {chosen} trials", peak, "MB",
         f"against the stub, results table included (target < {TARGET_MB}) "
         f"{verdict(peak < TARGET_MB)}"),
        ("RSS of the run's imports alone", run_imports, "MB",
         "CLI, runner, detectors, OpenAI SDK and its aiohttp transport (information)"),
        ("RSS of the statistics' imports alone", results_imports, "MB",
         "pandas, NumPy, PyArrow and the statistics modules, loaded by report, compare and "
         "export, not by a run (information)"),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=1000)
    args = parser.parse_args()
    print_rows(rows(args.trials))


if __name__ == "__main__":
    main()
