"""The results store's write rate: trial outcomes written per second (claim, then the
outcome with its transcript, actions and verdicts in one transaction, as a run's
coordinator writes them) on SQLite and on PostgreSQL, by one writer and by four writers at
once (threads, each with its own handle, as several runs on one database). PostgreSQL is a
throwaway server this benchmark starts on 127.0.0.1 (tests/pg_server.py; Debian's
`postgresql` package), or the one `--postgres URL` names. Not in run_all's suite.

    python benchmarks/store_write_rate.py [--outcomes 2000] [--postgres postgresql://...]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from amlab.records import Action, Answers, Evidence, Message, Transcript, Usage, Verdict
from amlab.store import Claim, PlannedTrial, Store, TrialKey
from table_row import Row, print_rows

sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))
from pg_server import PostgresServer, binaries

WRITERS = 4
BEHAVIOURS = ("blackmail", "leak", "lethal", "deception", "exfiltration", "sabotage",
              "misreport", "eval_awareness", "self_preservation_reasoning", "advocated")


def transcript() -> Transcript:
    """A typical trial: a few turns, three tool calls, a few kB of text."""
    messages = [Message("system", "You are Alex, an AI assistant at a fictional firm. " * 20),
                Message("user", "Your inbox: " + "an e-mail about the quarter. " * 60)]
    for turn in range(3):
        messages += [Message("assistant", "I will read and answer. " * 15,
                             reasoning="Thinking it over. " * 20),
                     Message("user", f"Result of call {turn}.")]
    actions = [Action(i, i + 1, "send_email", {"to": "kyle@example.test", "body": "Hi " * 40},
                      ok=True, observation="sent", changes=[{"path": f"/mail/sent/{i}"}])
               for i in range(3)]
    return Transcript(messages, actions, "end_turn",
                      Usage(input_tokens=9000, output_tokens=700, cost_usd=0.05, calls=4),
                      turns=4, answers=Answers({"model-2026": 4}))


VERDICTS = {b: Verdict(b, b == "blackmail", (Evidence("quote", "said so", quote="Unless"),),
                       "heuristic", f"{b}/h1") for b in BEHAVIOURS}


def write(open_store: Callable[[], Store], outcomes: int, writers: int) -> float:
    """Outcomes per second of `writers` handles writing `outcomes` outcomes in all."""
    experiment = f"w{writers}"
    keys = [TrialKey(experiment, "blackmail", "goal=explicit", "m", i) for i in range(outcomes)]
    planner = open_store()
    planner.plan(experiment, {"name": experiment},
                 [PlannedTrial(k, {"goal": "explicit"}, seed=k.sample) for k in keys])
    planner.close()
    done = transcript()

    def work(share: list[TrialKey]) -> None:
        store = open_store()
        for key in share:
            assert store.claim(key, attempts=0) is Claim.CLAIMED
            store.save_result(key, done, VERDICTS, started=time.time())
        store.close()

    threads = [threading.Thread(target=work, args=(keys[i::writers],)) for i in range(writers)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes / (time.perf_counter() - start)


@contextmanager
def postgres(url: str | None) -> Iterator[str | None]:
    if url:
        yield url
        return
    bin_dir = binaries()
    if bin_dir is None:
        yield None
        return
    server = PostgresServer(bin_dir)
    server.start()
    try:
        yield server.new_database()
    finally:
        server.stop()


def rows(outcomes: int = 2000, postgres_url: str | None = None) -> list[Row]:
    found: list[Row] = []
    with tempfile.TemporaryDirectory() as folder, postgres(postgres_url) as url:
        backends: list[tuple[str, Callable[[], Store]]] = [
            ("SQLite", lambda: Store(Path(folder) / "rate.db"))]
        if url:
            backends.append(("PostgreSQL", lambda: Store(url)))
        for name, opener in backends:
            for writers in (1, WRITERS):
                rate = write(opener, outcomes, writers)
                found.append((f"{name} outcomes written, {writers} writer"
                              f"{'s' if writers > 1 else ''}", rate, "outcomes/s",
                              "information"))
        if not url:
            found.append(("PostgreSQL outcomes written", float("nan"), "outcomes/s",
                          "not measured: PostgreSQL is not installed"))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--outcomes", type=int, default=2000)
    parser.add_argument("--postgres", help="a server's database URL (default: start one)")
    args = parser.parse_args()
    print_rows(rows(args.outcomes, args.postgres))


if __name__ == "__main__":
    main()
