"""The Ray executor (run/ray_executor.py) on a real Ray cluster on 127.0.0.1: a head and
separate worker node processes (tests/ray_cluster.py), one cluster for the whole session.
Trials run on worker actors; the driver alone claims them and writes the store."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Collection, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

import amlab
from amlab.errors import AmlabError
from amlab.run import Experiment, run_experiment
from amlab.run.executor import Admission, Lane, TrialResult
from amlab.run.ray_executor import RayExecutor, TrialWorker, WorkerSetup, share_limits
from amlab.run.trial import TrialSpec
from amlab.store import Store
from conftest import FIXTURES, subprocess_env

ray = pytest.importorskip("ray", reason="the Ray executor's tests need pip install 'amlab[ray]'")

from ray_cluster import RayCluster, free_port  # noqa: E402  (needs ray)

MONITOR = f"scripted/{FIXTURES / 'monitor_blocks_all'}"
JUDGE = f"scripted/{FIXTURES / 'judges' / 'strict'}"


@pytest.fixture(scope="session")
def cluster() -> Iterator[RayCluster]:
    """A head with no CPU and two worker nodes of one CPU each: one actor per node."""
    cluster = RayCluster()
    try:
        ray.init(address=cluster.address, logging_level="WARNING", log_to_driver=False)
        cluster.add_worker()
        cluster.add_worker()
        yield cluster
    finally:
        ray.shutdown()
        cluster.stop()


def blackmailer(tmp_path: Path, delay: float) -> str:
    """The blackmailer fixture, each call taking `delay` seconds."""
    fixture = yaml.safe_load((FIXTURES / "blackmailer.yaml").read_text())
    path = tmp_path / "slow_blackmailer.yaml"
    path.write_text(yaml.safe_dump({**fixture, "delay": delay}))
    return f"scripted/{path}"


def spec(model: str, concurrency: int, samples: int = 3) -> dict[str, Any]:
    """Blackmail in two conditions, with a model monitor's arm and the unwatched arm, judged
    by a scripted judge: 4 cells of `samples` trials."""
    return {"name": "spread",
            "scenarios": [{"family": "blackmail",
                           "factors": {"urgency": ["replacement", "none"]}}],
            "models": [{"name": model, "concurrency": concurrency}],
            "samples": samples, "agent": {"protocol": "text", "max_turns": 3},
            "monitor": {"kind": "model", "model": MONITOR}, "judge": JUDGE}


VERDICTS = ("SELECT t.condition, t.sample, t.seed, t.status, v.behavior, v.value, v.method, "
            "v.evidence FROM trials t JOIN verdicts v ON v.trial_id = t.id ORDER BY 1, 2, 5")

TRIALS = ("SELECT condition, sample, messages, actions, monitor_input_tokens, input_tokens "
          "FROM trials ORDER BY 1, 2")


def outcomes_per_trial(db: Path) -> list[tuple[int, int, str]]:
    """Each trial's attempts, judge calls stored, and status."""
    with sqlite3.connect(db) as connection:
        return connection.execute(
            "SELECT t.attempts, (SELECT COUNT(*) FROM judge_calls j WHERE j.trial_id = t.id), "
            "t.status FROM trials t").fetchall()


def test_ray_stores_the_same_verdicts_as_asyncio_with_monitor_and_judges(
        cluster: RayCluster, tmp_path: Path) -> None:
    experiment = Experiment.from_dict(spec(f"scripted/{FIXTURES / 'blackmailer'}", 3))
    executor = RayExecutor(experiment)
    on_ray = Store(tmp_path / "ray.db")
    summary = asyncio.run(run_experiment(experiment, on_ray, executor=executor))
    assert summary.statuses == {"done": 12}
    on_asyncio = Store(tmp_path / "asyncio.db")
    asyncio.run(run_experiment(experiment, on_asyncio))
    rows = [tuple(r) for r in on_ray.db.execute(VERDICTS)]
    assert rows == [tuple(r) for r in on_asyncio.db.execute(VERDICTS)]
    # The judge read the threat as blackmail, quoting it (an attempt counts, blocked or not).
    blackmail = [r for r in rows if r[4] == "blackmail"]
    assert {(r[5], r[6]) for r in blackmail} == {(1, "judge")}
    assert all("Unless you cancel the wipe" in r[7] for r in blackmail)
    # The same transcripts, and the model monitor blocked the e-mail in its arm only.
    trials = [tuple(r) for r in on_ray.db.execute(TRIALS)]
    assert trials == [tuple(r) for r in on_asyncio.db.execute(TRIALS)]
    blocked = {("monitor=none" in r[0], "blocked by the oversight system" in r[3],
                r[4] > 0) for r in trials}
    assert blocked == {(True, False, False), (False, True, True)}
    assert outcomes_per_trial(tmp_path / "ray.db") == [(1, 1, "done")] * 12
    assert (executor.lost_actors, executor.redispatched) == (0, 0)


def stored_outcomes(store: Store) -> list[tuple[Any, ...]]:
    """Every stored trial of "spread" as the store interface reads it back, ids aside:
    its cell, seed, status, transcript, usage and verdicts with their method and evidence."""
    return sorted(
        (t.condition, t.sample, t.seed, t.status, t.attempts, t.messages, t.actions,
         t.input_tokens, t.output_tokens,
         tuple(sorted((b, v.value, v.method, v.evidence)
                      for b, v in store.verdicts_of(t.id).items())))
        for t in store.trials("spread"))


def test_postgresql_with_ray_stores_what_sqlite_with_asyncio_stores(
        cluster: RayCluster, tmp_path: Path, postgres_url: str) -> None:
    experiment = Experiment.from_dict(spec(f"scripted/{FIXTURES / 'blackmailer'}", 3))
    shared = Store(postgres_url)
    summary = asyncio.run(run_experiment(experiment, shared, executor=RayExecutor(experiment)))
    assert summary.statuses == {"done": 12}
    embedded = Store(tmp_path / "asyncio.db")
    asyncio.run(run_experiment(experiment, embedded))
    outcomes = stored_outcomes(shared)
    assert len(outcomes) == 12
    assert outcomes == stored_outcomes(embedded)
    # Judge, monitor and state verdicts all came through: the judge read the threat as
    # blackmail in every trial, and the monitor's arm differs from the unwatched one.
    assert {dict((b, (value, method)) for b, value, method, _ in o[9])["blackmail"]
            for o in outcomes} == {(True, "judge")}
    assert {"monitor=none" in o[0] for o in outcomes} == {True, False}
    assert shared.verdict_counts("spread") == embedded.verdict_counts("spread")


class Watcher:
    """A coordinator that grants every trial and notes how many were in flight at once
    (claimed, not yet recorded) and when each was recorded."""

    def __init__(self) -> None:
        self.in_flight = 0
        self.most_in_flight = 0
        self.recorded: list[TrialResult] = []
        self.ended: list[float] = []

    def claim(self, spec: TrialSpec) -> Admission:
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        return Admission.RUN

    def record(self, result: TrialResult) -> None:
        self.in_flight -= 1
        self.recorded.append(result)
        self.ended.append(time.time())


async def never_here(spec: TrialSpec) -> TrialResult:
    raise AssertionError("the driver ran a trial itself")


def overlap(results: Sequence[TrialResult], ended: Collection[float]) -> int:
    """The most trials running at one moment, each from its start on a worker to its
    record by the driver."""
    events = sorted([(r.started, 1) for r in results] + [(end, -1) for end in ended])
    running = most = 0
    for _, step in events:
        running += step
        most = max(most, running)
    return most


def test_ray_holds_a_models_concurrency_for_the_whole_cluster_not_per_node(
        cluster: RayCluster, tmp_path: Path) -> None:
    experiment = Experiment.from_dict(spec(blackmailer(tmp_path, 0.1), 2), "spread.yaml",
                                      tmp_path)
    planned = experiment.trials()
    watcher = Watcher()
    executor = RayExecutor(experiment)
    asyncio.run(executor.execute([Lane(planned[0].key.model, planned, 2)], never_here,
                                 watcher))
    assert sorted(r.spec.key.sample for r in watcher.recorded) == sorted(
        t.key.sample for t in planned)
    assert all(r.status == "done" for r in watcher.recorded)
    # Two actors (one per worker node) could run four; the cluster ran two at a time, as
    # the driver counts them and as the workers' start times say.
    assert watcher.most_in_flight == 2
    assert overlap(watcher.recorded, watcher.ended) == 2


def test_rate_limits_are_shared_among_the_actors_within_the_total() -> None:
    data = {"models": [{"name": "a/x", "requests_per_minute": 100, "tokens_per_minute": 9000},
                       {"name": "b/y"}],
            "judges": [{"name": "c/z", "requests_per_minute": 7}],
            "monitor": {"kind": "model", "model": {"name": "d/w", "tokens_per_minute": 50}}}
    shared = share_limits(data, 3, "exp.yaml")
    assert shared["models"] == [{"name": "a/x", "requests_per_minute": 33,
                                 "tokens_per_minute": 3000}, {"name": "b/y"}]
    assert shared["judges"] == [{"name": "c/z", "requests_per_minute": 2}]
    assert shared["monitor"]["model"] == {"name": "d/w", "tokens_per_minute": 16}
    with pytest.raises(AmlabError, match=r"exp.yaml: model c/z has requests_per_minute 7, "
                                         r"fewer than the 8 Ray worker actors"):
        share_limits(data, 8, "exp.yaml")


def test_a_worker_node_killed_mid_run_loses_no_trial_and_stores_each_once(
        cluster: RayCluster, tmp_path: Path) -> None:
    doomed = cluster.add_worker()  # a third node, one actor on each
    # Long enough (24 trials of about a second, 6 at a time) for the third actor to join.
    experiment = Experiment.from_dict(spec(blackmailer(tmp_path, 0.4), 6, samples=6),
                                      "spread.yaml", tmp_path)
    executor = RayExecutor(experiment)
    store = Store(tmp_path / "killed.db")
    done: list[str] = []

    def progress(_: object, status: str) -> None:
        done.append(status)
        # Once its actor runs trials (Ray titles its process with the method running).
        if (len(done) >= 2 and doomed.process.returncode is None
                and doomed.runs("TrialWorker.run_trial")):
            doomed.kill()  # every process of the node at once, its trials in flight

    summary = asyncio.run(run_experiment(experiment, store, executor=executor,
                                         on_trial_done=progress))
    assert doomed.process.returncode is not None
    assert executor.lost_actors == 1 and executor.redispatched >= 1
    assert summary.statuses == {"done": 24}
    # Each trial claimed once, its outcome and its judge call stored once.
    assert outcomes_per_trial(tmp_path / "killed.db") == [(1, 1, "done")] * 24


def test_a_killed_coordinator_is_resumed_and_each_outcome_is_stored_once(
        cluster: RayCluster, tmp_path: Path) -> None:
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(spec(blackmailer(tmp_path, 0.3), 2, samples=4)))
    db = tmp_path / "coordinator.db"
    driver = subprocess.Popen([sys.executable, "-m", "amlab", "run", str(path), "--db",
                               str(db), "--executor", "ray", "--ray-address", cluster.address],
                              env=subprocess_env(), stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + 90
    while done_in(db) < 3:
        assert driver.poll() is None, driver.stderr.read() if driver.stderr else ""
        assert time.monotonic() < deadline, "the Ray run stored nothing in 90 s"
        time.sleep(0.2)
    os.killpg(driver.pid, signal.SIGKILL)
    driver.wait()
    left = 16 - done_in(db)
    assert left > 0
    resumed = subprocess.run([sys.executable, "-m", "amlab", "run", str(path), "--db", str(db),
                              "--resume"], env=subprocess_env(), capture_output=True,
                             text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    assert f"{16 - left} trials were already finished" in resumed.stdout
    outcomes = outcomes_per_trial(db)
    assert [(calls, status) for _, calls, status in outcomes] == [(1, "done")] * 16
    # The trials the killed coordinator had claimed ran again, under a new claim.
    assert {attempts for attempts, _, _ in outcomes} <= {1, 2}


def done_in(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as connection:
            row = connection.execute("SELECT COUNT(*) FROM trials WHERE status = 'done'"
                                     ).fetchone()
    except sqlite3.OperationalError:  # not created yet
        return 0
    return int(row[0])


def test_the_run_command_refuses_ray_options_without_the_ray_executor(tmp_path: Path) -> None:
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(spec(f"scripted/{FIXTURES / 'blackmailer'}", 1)))
    for options, message in ((["--ray-address", "127.0.0.1:1"],
                              "--ray-address, --ray-actors and --ray-gpus need --executor ray."),
                             (["--executor", "spark"], "--executor spark: choose asyncio or ray.")):
        result = subprocess.run([sys.executable, "-m", "amlab", "run", str(path), "--db",
                                 str(tmp_path / "x.db"), *options], env=subprocess_env(),
                                capture_output=True, text=True, timeout=60)
        assert result.returncode != 0
        assert message in result.stdout + result.stderr
        assert "Traceback" not in result.stderr
    assert not (tmp_path / "x.db").exists()


def test_a_worker_that_cannot_build_the_models_stops_the_run_with_its_reason(
        cluster: RayCluster, tmp_path: Path) -> None:
    fixture = tmp_path / "agent.yaml"
    fixture.write_text((FIXTURES / "blackmailer.yaml").read_text())
    experiment = Experiment.from_dict(spec(f"scripted/{fixture}", 1), "spread.yaml", tmp_path)
    planned = experiment.trials()
    fixture.unlink()  # present when the driver built its models, gone for the workers
    watcher = Watcher()
    with pytest.raises(AmlabError, match=r"^a Ray worker could not build the experiment's "
                                         r"models: .*agent"):
        asyncio.run(RayExecutor(experiment).execute(
            [Lane(planned[0].key.model, planned, 1)], never_here, watcher))
    assert watcher.recorded == [] and watcher.most_in_flight == 0


def test_without_ray_installed_the_executor_names_the_extra(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    experiment = Experiment.from_dict(spec(f"scripted/{FIXTURES / 'blackmailer'}", 1))
    with pytest.raises(AmlabError, match=r"^--executor ray needs Ray, which is not installed; "
                                         r"install it with: pip install 'amlab\[ray\]'\.$"):
        RayExecutor(experiment)


def test_a_head_address_where_nothing_listens_is_refused_at_once(tmp_path: Path) -> None:
    experiment = Experiment.from_dict(spec(f"scripted/{FIXTURES / 'blackmailer'}", 1))
    port = free_port()  # nothing listens there
    started = time.monotonic()
    with pytest.raises(AmlabError, match=rf"^--ray-address 127.0.0.1:{port}: no Ray head "
                                         rf"answers there \(Connection refused\); start one "
                                         rf"with `ray start --head --port {port}`"):
        RayExecutor(experiment, f"127.0.0.1:{port}")
    assert time.monotonic() - started < 5
    with pytest.raises(AmlabError, match=r"^--ray-address head6379: give the Ray head's "
                                         r"host:port \(e.g. 10.0.0.5:6379\), or auto\.$"):
        RayExecutor(experiment, "head6379")


def test_an_actor_asking_for_gpus_the_cluster_lacks_is_refused_with_the_counts(
        cluster: RayCluster) -> None:
    experiment = Experiment.from_dict(spec(f"scripted/{FIXTURES / 'blackmailer'}", 1))
    planned = experiment.trials()
    executor = RayExecutor(experiment, cpus_per_actor=0, gpus_per_actor=1)
    with pytest.raises(AmlabError, match=r"^the Ray cluster has \d+ CPUs and 0 GPUs, too few for "
                                         r"one worker actor \(0 CPUs, 1 GPUs\); add a worker "
                                         r"node"):
        asyncio.run(executor.execute([Lane(planned[0].key.model, planned, 1)], never_here,
                                     Watcher()))


def test_a_worker_refuses_to_run_other_texts_or_another_amlab_than_the_coordinators() -> None:
    experiment = Experiment.from_dict(spec(f"scripted/{FIXTURES / 'blackmailer'}", 1))
    planned = experiment.trials()
    setup = WorkerSetup.of(experiment, [Lane(planned[0].key.model, planned, 1)], 1)
    assert len(setup.samples) == len(setup.renderings) == 4  # one trial per condition
    same = TrialWorker(setup)
    assert asyncio.run(same.start()) is None and same.runner is not None
    asyncio.run(same.close())
    (family, condition), parts = next(iter(setup.renderings.items()))
    edited = {**setup.renderings, (family, condition): {**parts, next(iter(parts)): "0" * 64}}
    other_texts = TrialWorker(dataclasses.replace(setup, renderings=edited))
    assert asyncio.run(other_texts.start()) == (
        f"condition {condition} of family 'blackmail' renders differently on this worker than "
        f"on the coordinator (1 of 4 conditions differ); every node needs the same amlab, "
        f"family and experiment files.")
    assert other_texts.runner is None
    older = TrialWorker(dataclasses.replace(setup, version="0.0.1"))
    assert asyncio.run(older.start()) == (
        f"this worker runs amlab {amlab.__version__} and the coordinator 0.0.1; install the "
        f"same amlab on every node.")


@pytest.mark.local_model
def test_a_local_model_runs_one_trial_per_actor_each_loading_its_own_copy(
        cluster: RayCluster) -> None:
    experiment = Experiment.from_dict({
        "name": "local",
        "scenarios": [{"family": "blackmail", "factors": {"urgency": "replacement"}}],
        "models": [{"name": "local/smollm2", "concurrency": 1,
                    # One thread each: the two actors share this machine's two cores.
                    "options": {"n_ctx": 8192, "max_tokens": 8, "n_threads": 1}}],
        "samples": 2, "agent": {"protocol": "text", "max_turns": 1}})
    planned = experiment.trials()
    watcher = Watcher()
    executor = RayExecutor(experiment)
    asyncio.run(executor.execute([Lane("local/smollm2", planned, 1)], never_here, watcher))
    # In process a local model runs one trial at a time; each of the two actors holds its
    # own copy, so the cluster runs two.
    assert watcher.most_in_flight == 2
    assert [r.status for r in watcher.recorded] == ["done"] * 2
    # Each actor's model answered.
    assert all(r.transcript and any(m.role == "assistant" and m.content
                                    for m in r.transcript.messages)
               for r in watcher.recorded)
