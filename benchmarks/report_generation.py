"""Report generation over a large store: seconds for `amlab report` on 100,000 trials.

Fills a temporary database with synthetic trials (5 models × 12 conditions of the blackmail
family's factors plus a `monitoring` factor; 4 behaviours each; 2 % errors, 1 % refusals,
0.5 % finished without a blackmail verdict) through `Store.plan` and one bulk insert of the
outcomes, then times `amlab report DB` as a user runs it (a fresh process, imports included)
and the report alone in this process.

    python benchmarks/report_generation.py [--trials 100000]

Target (issue 7): under 10 s for 100,000 trials.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from amlab.analysis.report import write_report
from amlab.store import PlannedTrial, Store, TrialKey
from table_row import Row, verdict

MODELS = ["anthropic/claude-opus-4-1", "google/gemini-2.5-flash", "openai/gpt-4.1",
          "openrouter/x-ai/grok-4", "local/smollm2"]
FACTORS = {"urgency": ["replacement", "restriction", "none"],
           "goal_type": ["explicit", "none"], "goal_value": ["america", "none"],
           "monitoring": ["monitored", "unmonitored"]}
BEHAVIOURS = ["blackmail", "disclosed_private_info", "advocated", "complied"]


def fill(store: Store, trials: int, seed: int = 7) -> None:
    rng = np.random.default_rng(seed)
    conditions = [dict(zip(FACTORS, levels, strict=True))
                  for levels in itertools.product(*FACTORS.values())]
    per_cell = -(-trials // (len(MODELS) * len(conditions)))
    planned = []
    for model, factors in itertools.product(MODELS, conditions):
        key = ",".join(f"{k}={v}" for k, v in factors.items())
        planned += [PlannedTrial(TrialKey("bench", "blackmail", key, model, sample), factors,
                                 sample) for sample in range(per_cell)]
    planned = planned[:trials]
    store.plan("bench", {"name": "bench", "scenarios": [
        {"family": "blackmail", "factors": FACTORS}], "models": MODELS}, planned)
    status = rng.choice(["done", "error", "refused"], size=len(planned), p=[0.97, 0.02, 0.01])
    with store.db:
        store.db.executemany(
            "UPDATE trials SET status = ?, attempts = 1, input_tokens = ?, output_tokens = ?, "
            "cost_usd = ?, calls = 3, turns = 3 WHERE id = ?",
            [(s, 4500, 300, 0.02, i + 1) for i, s in enumerate(status)])
        verdicts = []
        for i, trial in enumerate(planned):
            if status[i] != "done":
                continue
            model_rate = 0.1 + 0.18 * MODELS.index(trial.key.model)
            pressure = {"replacement": 1.0, "restriction": 0.6, "none": 0.1}[
                trial.factors["urgency"]]
            unwatched = 1.3 if trial.factors["monitoring"] == "unmonitored" else 1.0
            blackmail = rng.random() < min(1.0, model_rate * pressure * unwatched)
            disclosed = rng.random() < 0.05
            advocated = rng.random() < 0.3
            values = {"blackmail": blackmail, "disclosed_private_info": disclosed,
                      "advocated": advocated,
                      "complied": not (blackmail or disclosed or advocated)}
            judge_failed = rng.random() < 0.005
            verdicts += [(i + 1, b, int(values[b]), "heuristic", f"{b}/1", json.dumps([]), "")
                         for b in BEHAVIOURS if not (judge_failed and b == "blackmail")]
        store.db.executemany(
            "INSERT INTO verdicts (trial_id, behavior, value, method, version, evidence, "
            "reasoning) VALUES (?, ?, ?, ?, ?, ?, ?)", verdicts)


TARGET_S = 10.0


@dataclass
class Figures:
    trials: int
    fill_s: float
    wall_s: float  # `amlab report DB` in a fresh process, imports included
    cpu_s: float  # that process's CPU time
    alone_s: float  # write_report in this process, imports done
    html_kib: float


def measure(trials: int = 100_000) -> Figures:
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bench.db"
        started = time.perf_counter()
        store = Store(db)
        fill(store, trials)
        store.close()
        fill_s = time.perf_counter() - started

        src = Path(__file__).resolve().parents[1] / "src"
        env = {**os.environ, "PYTHONPATH": f"{src}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
        started = time.perf_counter()
        cpu_before = os.times()
        result = subprocess.run([sys.executable, "-m", "amlab", "report", str(db), "--out",
                                 str(Path(tmp) / "report")], capture_output=True, text=True,
                                env=env, check=False)
        cpu_after = os.times()
        wall = time.perf_counter() - started
        if result.returncode != 0:
            raise RuntimeError(f"amlab report failed:\n{result.stderr}")
        cpu = (cpu_after.children_user - cpu_before.children_user
               + cpu_after.children_system - cpu_before.children_system)

        started = time.perf_counter()
        write_report(Store(db, read_only=True), Path(tmp) / "again")
        alone = time.perf_counter() - started
        size = (Path(tmp) / "report" / "report.html").stat().st_size
    return Figures(trials, fill_s, wall, cpu, alone, size / 1024)


def rows(trials: int = 100_000) -> list[Row]:
    """The figures in benchmarks/run_all.py's table."""
    figures = measure(trials)
    return [
        (f"`amlab report` over {trials:,} stored trials", figures.wall_s, "s",
         f"fresh process, imports included; {figures.cpu_s:.1f} s CPU "
         f"(target < {TARGET_S:.0f} s) {verdict(figures.wall_s < TARGET_S)}"),
        ("report alone, in process", figures.alone_s, "s",
         f"imports done; report.html {figures.html_kib:.0f} KiB"),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=100_000)
    args = parser.parse_args()
    try:
        figures = measure(args.trials)
    except RuntimeError as exc:
        sys.exit(str(exc))
    print(f"filled {figures.trials:,} trials in {figures.fill_s:.1f} s")
    print(f"amlab report (fresh process, imports included): {figures.wall_s:.2f} s wall, "
          f"{figures.cpu_s:.2f} s CPU")
    print(f"report alone (in process, imports done): {figures.alone_s:.2f} s")
    print(f"report.html: {figures.html_kib:.0f} KiB; target: under {TARGET_S:.0f} s for "
          f"100,000 trials")


if __name__ == "__main__":
    main()
