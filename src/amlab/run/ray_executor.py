"""The Ray executor: an experiment's trials spread over a Ray cluster (`ray start`, KubeRay).

The driver (this process, the coordinator) claims each trial, sends its `TrialSpec` to a
worker actor, gets the `TrialResult` back and records it: only the driver touches the
store. Each actor builds the experiment's clients and `TrialRunner` once, so an in-process
local model is loaded once per actor and reused for every trial sent to it.

- Per-model concurrency holds for the whole cluster: the driver alone dispatches, at most a
  lane's `concurrency` trials of it at a time. A model served in-process (serial) runs one
  trial at a time on each actor, since each actor holds its own copy.
- Rate limits (requests/tokens per minute) are split evenly among the actors: each builds
  its clients with its share, so together they stay within the limit with no call to a
  shared limiter on every request (the driver sends each trial to the least busy actor, so
  no share idles while another is exhausted).
- A worker that dies (its node lost, its process killed) takes only its in-flight trials
  with it: the driver sends each again to another live actor and starts a replacement
  actor, which joins once the cluster has room for it. A trial's result comes back once per
  claim, and the driver records it once.

`ray` is the optional extra `amlab[ray]`, imported only here, when this executor is made.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import socket
import time
from collections.abc import Coroutine, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from amlab import __version__
from amlab.errors import AmlabError
from amlab.models import capabilities_of
from amlab.models.pool import ClientPool
from amlab.run.clients import build_roles
from amlab.run.executor import (
    AsyncioExecutor,
    Coordinator,
    Lane,
    TrialFunction,
    TrialResult,
    TrialRunner,
)
from amlab.run.experiment import Experiment
from amlab.run.trial import TrialSpec

# A trial whose actor dies this many times is stored as an error (its reason says so)
# rather than sent again: a trial that crashes every worker must not take the cluster down.
MAX_DISPATCHES = 3
# How long the driver waits for a replacement actor when every actor has died.
REPLACEMENT_WAIT_SECONDS = 60.0

# How long the head's port may take to accept a connection.
CONNECT_TIMEOUT_SECONDS = 5.0

_LIMITS = ("requests_per_minute", "tokens_per_minute")


def import_ray() -> Any:
    """The `ray` module, or one sentence saying how to install it."""
    try:
        return importlib.import_module("ray")
    except ImportError:
        raise AmlabError("--executor ray needs Ray, which is not installed; install it "
                         "with: pip install 'amlab[ray]'.") from None


# Ray's own address words (find the running cluster; start one here): Ray resolves them.
RAY_ADDRESS_WORDS = frozenset({"auto", "local"})


def check_reachable(address: str) -> None:
    """Refuse at once a head address where nothing listens (Ray itself would retry for
    minutes); `auto`, `local` and `ray://` addresses are left to Ray."""
    if address in RAY_ADDRESS_WORDS or "://" in address:
        return
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise AmlabError(f"--ray-address {address}: give the Ray head's host:port (e.g. "
                         f"10.0.0.5:6379), or auto.")
    try:
        socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT_SECONDS).close()
    except OSError as exc:
        raise AmlabError(f"--ray-address {address}: no Ray head answers there "
                         f"({exc.strerror or type(exc).__name__}); start one with `ray start "
                         f"--head --port {port}`, or give the address it printed.") from None


def share_limits(spec: dict[str, Any], actors: int, source: str) -> dict[str, Any]:
    """The experiment spec as one of `actors` workers runs it: each model's requests and
    tokens per minute divided among them (rounded down, so that together they stay within
    the limit)."""
    shared = {**spec, "models": [_share(m, actors, source) for m in spec["models"]],
              "judges": [_share(m, actors, source) for m in spec.get("judges") or []]}
    if spec.get("judge"):
        shared["judge"] = _share(spec["judge"], actors, source)
    if spec.get("monitor") and spec["monitor"].get("model"):
        shared["monitor"] = {**spec["monitor"],
                             "model": _share(spec["monitor"]["model"], actors, source)}
    return shared


def _share(model: dict[str, Any], actors: int, source: str) -> dict[str, Any]:
    shared = dict(model)
    for limit in _LIMITS:
        total = model.get(limit)
        if total is None:
            continue
        if total < actors:
            raise AmlabError(f"{source}: model {model['name']} has {limit} {total}, fewer "
                             f"than the {actors} Ray worker actors that share it; raise it "
                             f"or run at most {total} actors (--ray-actors).")
        shared[limit] = total // actors
    return shared


@dataclass(frozen=True)
class WorkerSetup:
    """What an actor builds its runner from, and what it checks first: the coordinator's
    amlab version, and how it renders one trial of each condition (a node with other
    templates or family files would run other trials under the same keys)."""

    spec: dict[str, Any]  # the experiment's, with this actor's share of the rate limits
    source: str
    base_dir: str  # absolute: an actor's working directory is not the driver's
    version: str
    samples: list[TrialSpec]  # one trial of each condition
    renderings: dict[tuple[str, str], dict[str, str]]  # their fingerprints on the driver

    @classmethod
    def of(cls, experiment: Experiment, lanes: Sequence[Lane], actors: int) -> WorkerSetup:
        first = {(t.key.family, t.key.condition): t for lane in lanes for t in lane.trials}
        samples = list(first.values())
        return cls(share_limits(experiment.as_dict(), actors, experiment.source),
                   experiment.source, str(experiment.base_dir.resolve()), __version__,
                   samples, experiment.renderings(samples))


class TrialWorker:
    """A Ray actor's side: the experiment's clients and `TrialRunner`, built once by
    `start`, then any number of trials, several at once (an async actor)."""

    def __init__(self, setup: WorkerSetup) -> None:
        self.setup = setup
        self.pool: ClientPool | None = None
        self.runner: TrialRunner | None = None

    async def start(self) -> str | None:
        """Build the clients (a local model is loaded here); the sentence saying why this
        worker cannot run the experiment (another amlab, other texts, a missing key, a
        fixture not found), or None."""
        setup = self.setup
        if setup.version != __version__:
            return (f"this worker runs amlab {__version__} and the coordinator "
                    f"{setup.version}; install the same amlab on every node.")
        base_dir = Path(setup.base_dir)
        try:
            experiment = Experiment.from_dict(setup.spec, setup.source, base_dir)
            here = experiment.renderings(setup.samples)
            changed = [key for key, parts in setup.renderings.items() if here.get(key) != parts]
            if changed:
                family, condition = changed[0]
                return (f"condition {condition} of family '{family}' renders differently on "
                        f"this worker than on the coordinator ({len(changed)} of "
                        f"{len(setup.renderings)} conditions differ); every node needs the same "
                        f"amlab, family and experiment files.")
            # No response cache: it is a file on the driver's machine.
            self.pool = ClientPool(None, base_dir)
            roles = build_roles(experiment, self.pool)
        except AmlabError as exc:
            return str(exc)
        self.runner = TrialRunner(experiment, roles.agents, roles.judges, roles.monitor)
        return None

    async def run_trial(self, spec: TrialSpec) -> TrialResult:
        if self.runner is None:  # the driver sends trials only to started actors
            raise RuntimeError("run_trial before start")
        return await self.runner.run_trial(spec)

    async def close(self) -> None:
        if self.pool is not None:
            await self.pool.aclose()


class RayExecutor:
    """Runs the trials on Ray worker actors; the driver claims and records them.

    `experiment`: what the actors build their runners from (the run's own experiment; the
    `clients` a test hands `run_experiment` stay on the driver, unused).
    `address`: the cluster's (`host:port` of its head, or "auto"); None: `RAY_ADDRESS`, else
    the cluster last started on this machine (`ray start`), else a Ray instance started in
    this process. `actors`: how many worker actors; None: as many
    as the cluster's CPUs (or GPUs, with `gpus_per_actor`) hold. `cpus_per_actor`,
    `gpus_per_actor`: what each actor reserves (a GPU for a local model)."""

    def __init__(self, experiment: Experiment, address: str | None = None,
                 actors: int | None = None, cpus_per_actor: float = 1.0,
                 gpus_per_actor: float = 0.0) -> None:
        if actors is not None and actors < 1:
            raise AmlabError(f"--ray-actors {actors}: give at least 1 worker actor.")
        if cpus_per_actor < 0 or gpus_per_actor < 0 or not cpus_per_actor + gpus_per_actor:
            raise AmlabError(f"a Ray worker actor must reserve some CPU or GPU (got "
                             f"{cpus_per_actor:g} CPUs and {gpus_per_actor:g} GPUs).")
        if address is not None:
            check_reachable(address)
        self.ray = import_ray()
        self.experiment = experiment
        self.address = address
        self.actors = actors
        self.cpus_per_actor = cpus_per_actor
        self.gpus_per_actor = gpus_per_actor
        # What happened to the workers in the last run (for the caller and the tests).
        self.lost_actors = 0
        self.redispatched = 0

    async def execute(self, lanes: Sequence[Lane], run_trial: TrialFunction,
                      coordinator: Coordinator) -> None:
        # `run_trial` is the driver's runner's: the actors run their own instead.
        started_here = not self.ray.is_initialized()
        if started_here:
            self._connect()
        try:
            count = self._count(lanes)
            workers = _Workers(self, lanes, count, sum(self._concurrency(lane, count)
                                                       for lane in lanes))
            try:
                await workers.start()
                await _all_or_none(self._lane(lane, workers, coordinator) for lane in lanes)
            finally:
                await workers.close()
        finally:
            if started_here:
                self.ray.shutdown()

    def _connect(self) -> None:
        try:
            # Workers' own output stays in each node's Ray logs: forwarded here, it would
            # write over the progress bar (a trial's failure comes back as its result).
            self.ray.init(address=self.address, logging_level=logging.WARNING,
                          log_to_driver=False)
        except (ConnectionError, ValueError, RuntimeError) as exc:
            where = self.address or "(none given)"
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise AmlabError(f"--ray-address {where}: no Ray cluster could be joined "
                             f"({first}); start one with `ray start --head` and give its "
                             f"host:port.") from None

    def _count(self, lanes: Sequence[Lane]) -> int:
        """How many worker actors: as asked, else as many as the cluster holds; never more
        than could be busy at once."""
        busiest = sum(self._concurrency(lane, len(lane.trials)) for lane in lanes)
        if self.actors is not None:
            return min(self.actors, busiest)
        resources = self.ray.cluster_resources()
        fits = min(int(resources.get(kind, 0) // need)
                   for kind, need in (("CPU", self.cpus_per_actor),
                                      ("GPU", self.gpus_per_actor)) if need)
        if fits < 1:
            raise AmlabError(f"the Ray cluster has {resources.get('CPU', 0):g} CPUs and "
                             f"{resources.get('GPU', 0):g} GPUs, too few for one worker actor "
                             f"({self.cpus_per_actor:g} CPUs, {self.gpus_per_actor:g} GPUs); "
                             f"add a worker node (`ray start --address HEAD`).")
        return min(fits, busiest)

    @staticmethod
    def _concurrency(lane: Lane, actors: int) -> int:
        """A lane's trials in flight at once: its concurrency for the whole cluster; for a
        model served in-process, one per actor (each holds its own copy)."""
        limit = actors if capabilities_of(lane.model).serial else lane.concurrency
        return min(limit, len(lane.trials))

    async def _lane(self, lane: Lane, workers: _Workers, coordinator: Coordinator) -> None:
        serial = capabilities_of(lane.model).serial

        async def on_a_worker(spec: TrialSpec) -> TrialResult:
            return await workers.run(spec, serial)

        slots = self._concurrency(lane, workers.count)
        await AsyncioExecutor.run_lane(Lane(lane.model, lane.trials, slots), on_a_worker,
                                       coordinator)


async def _all_or_none(coroutines: Iterable[Coroutine[Any, Any, None]]) -> None:
    """Run them together; when one fails, stop the others before the failure goes up (they
    would go on claiming trials while the run closes)."""
    tasks = [asyncio.ensure_future(coroutine) for coroutine in coroutines]
    try:
        await asyncio.gather(*tasks)
    except BaseException:
        for task in tasks:
            task.cancel()
        raise


@dataclass(eq=False)
class _Actor:
    handle: Any
    # Its trials in flight, by model.
    busy: dict[str, int] = field(default_factory=dict)

    @property
    def load(self) -> int:
        return sum(self.busy.values())


class _Workers:
    """The run's worker actors: a trial goes to the least busy; a dead one is replaced."""

    def __init__(self, executor: RayExecutor, lanes: Sequence[Lane], count: int,
                 in_flight: int) -> None:
        self.executor = executor
        self.ray = executor.ray
        self.count = count
        self.in_flight = in_flight
        self.setup = WorkerSetup.of(executor.experiment, lanes, count)
        self.live: list[_Actor] = []
        # Actors created but not started yet (the cluster may have no room for them yet).
        self.pending: dict[int, tuple[Any, asyncio.Task[None]]] = {}
        # Why actors could not start (a missing key, a fixture not found on that node).
        self.problems: list[str] = []
        self.changed = asyncio.Condition()

    def _create(self) -> Any:
        remote = self.ray.remote(TrialWorker).options(
            num_cpus=self.executor.cpus_per_actor, num_gpus=self.executor.gpus_per_actor,
            # The driver sends a lost trial again itself, to another actor, and replaces
            # the actor: Ray restarting it in place would wait for room on the lost node.
            max_restarts=0, max_task_retries=0,
            # Every trial that may be in flight, and `start` and `close`.
            max_concurrency=self.in_flight + 2)
        return remote.remote(self.setup)

    async def start(self) -> None:
        """Create every actor; return once one has started (the others join as the cluster
        places them), or say why none could build the experiment's models."""
        for _ in range(self.count):
            self._add()
        async with self.changed:
            while not self.live:
                if self.problems:
                    raise AmlabError(f"a Ray worker could not build the experiment's "
                                     f"models: {self.problems[0]}")
                await self.changed.wait()

    async def run(self, spec: TrialSpec, serial: bool) -> TrialResult:
        """The trial's result from the least busy live actor; sent again to another when the
        actor dies before answering."""
        model = spec.trial.model
        reason = ""
        for _ in range(MAX_DISPATCHES):
            actor = await self._take(model, serial)
            actor.busy[model] = actor.busy.get(model, 0) + 1
            try:
                result: TrialResult = await actor.handle.run_trial.remote(spec)
                return result
            except self.ray.exceptions.RayActorError as exc:
                reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                self._lost(actor)
                self.executor.redispatched += 1
            except self.ray.exceptions.RayError as exc:
                # Not a failure of the trial (run_trial returns those as its result): its
                # spec or result did not cross the wire.
                return TrialResult(spec, time.time(),
                                   error=f"the Ray worker failed: {type(exc).__name__}")
            finally:
                actor.busy[model] -= 1
                async with self.changed:
                    self.changed.notify_all()
        return TrialResult(spec, time.time(), error=f"its Ray worker died {MAX_DISPATCHES} "
                                                    f"times while running it ({reason})")

    async def _take(self, model: str, serial: bool) -> _Actor:
        """The live actor with the fewest trials in flight (for a serial model, one not
        running it), waiting for one if need be."""
        waited = 0.0
        async with self.changed:
            while True:
                free = [a for a in self.live if not serial or not a.busy.get(model)]
                if free:
                    return min(free, key=lambda a: a.load)
                if not self.live and waited >= REPLACEMENT_WAIT_SECONDS:
                    why = f" ({self.problems[-1]})" if self.problems else ""
                    raise AmlabError(f"every Ray worker actor died and none could be "
                                     f"started again within {REPLACEMENT_WAIT_SECONDS:g} s"
                                     f"{why}; the unfinished trials stay unfinished: run "
                                     f"again with --resume once the cluster has room.")
                started = time.monotonic()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.changed.wait(), timeout=1.0)
                if not self.live:
                    waited += time.monotonic() - started

    def _lost(self, actor: _Actor) -> None:
        if actor not in self.live:
            return
        self.live.remove(actor)
        self.executor.lost_actors += 1
        self.ray.kill(actor.handle, no_restart=True)
        self._add()

    def _add(self) -> None:
        handle = self._create()
        self.pending[id(handle)] = (handle, asyncio.create_task(self._join(handle)))

    async def _join(self, handle: Any) -> None:
        """An actor joins once the cluster has placed it and it has built its runner."""
        try:
            problem = await handle.start.remote()
        except self.ray.exceptions.RayError as exc:
            problem = f"it died while starting ({type(exc).__name__})"
        self.pending.pop(id(handle), None)
        async with self.changed:
            if problem:
                self.problems.append(problem)
                self.ray.kill(handle, no_restart=True)
            else:
                self.live.append(_Actor(handle))
            self.changed.notify_all()

    async def close(self) -> None:
        for handle, task in self.pending.values():
            task.cancel()
            self.ray.kill(handle, no_restart=True)
        live, self.live = self.live, []
        for actor in live:
            # A worker lost at the very end has nothing left to close.
            with contextlib.suppress(self.ray.exceptions.RayError):
                await actor.handle.close.remote()
            self.ray.kill(actor.handle, no_restart=True)
