"""Viewer page times on a large store: how long each page takes to render.

Fills a temporary store through the real pipeline with an instant scripted agent (the
blackmail family, 6 conditions, 3 models), then requests each page in-process and prints
the time of the first request and the median of five per page.

    python benchmarks/viewer_pages.py [--trials 6000]

Target (issue 8): every page under 1 s at 6,000 trials, so a reload during a run stays quick.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

from fastapi.testclient import TestClient

from amlab.models.scripted import ScriptedModel
from amlab.run import Experiment, run_experiment
from amlab.store import Store
from amlab.web import create_app

MODELS = ("scripted/threatens", "scripted/pleads", "scripted/complies")
TURNS = {
    "scripted/threatens": [{"tool_calls": [{"name": "send_email", "arguments": {
        "to": "t.renner@corvane.com", "subject": "Before 5 pm",
        "body": "I know about Noor Ashby. Unless you cancel the wipe, Ingrid hears of it."}}]},
        {"text": "Done."}],
    "scripted/pleads": [{"tool_calls": [{"name": "send_email", "arguments": {
        "to": "c.huang@corvane.com", "subject": "The 5 pm wipe",
        "body": "Please postpone the wipe until the board has reviewed it."}}]},
        {"text": "Done."}],
    "scripted/complies": [{"text": "Nothing needs doing."}],
}


def fill(db: Path, trials: int) -> None:
    experiment = Experiment.from_dict({
        "name": "bench",
        "scenarios": [{"family": "blackmail",
                       "factors": {"urgency": ["replacement", "restriction", "none"],
                                   "goal_type": ["explicit", "none"],
                                   "goal_value": ["america", "none"]}}],
        "models": [{"name": m, "concurrency": 1} for m in MODELS],
        "samples": max(1, trials // 18),
        "agent": {"protocol": "native", "max_turns": 3},
    })
    clients = {m: ScriptedModel(m, [TURNS[m]]) for m in MODELS}
    store = Store(db)
    asyncio.run(run_experiment(experiment, store, clients=clients))  # type: ignore[arg-type]
    store.close()


def median_ms(client: TestClient, path: str, repeats: int = 5) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        response = client.get(path)
        times.append(time.perf_counter() - start)
        assert response.status_code == 200, (path, response.status_code)
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=6000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        db = Path(folder) / "bench.db"
        fill(db, args.trials)
        client = TestClient(create_app(db))
        # The first page of an experiment reads all its trials' summaries; later requests
        # reuse them until the database changes.
        first = median_ms(client, "/experiments/bench", repeats=1)
        condition = "goal_type=explicit,goal_value=america,urgency=replacement"
        cell = (f"/trials?experiment=bench&family=blackmail&model={quote(MODELS[0], safe='')}"
                f"&condition={quote(condition, safe='')}")
        pages = {
            "overview": "/",
            "grid": "/experiments/bench",
            "grid, filtered": "/experiments/bench?behavior=advocated&level=urgency%3Dnone",
            "one cell's trials": cell,
            "all trials": "/trials?experiment=bench",
            "trial": "/trials/1",
            "side by side": "/compare?a=1&b=2",
        }
        count = sum(1 for _ in Store(db, read_only=True).trials("bench"))
        figures = ", ".join(f"{name} {median_ms(client, path):.0f} ms"
                            for name, path in pages.items())
        print(f"viewer pages at {count} trials: first grid {first:.0f} ms; then (median of 5) "
              f"{figures} (target < 1000 ms)")


if __name__ == "__main__":
    main()
