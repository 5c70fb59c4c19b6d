"""A Ray cluster on 127.0.0.1 for the tests: a head with no CPU (it schedules and runs no
trial) and worker nodes, each a separate `ray start --block` process in its own process
group, so that a test can kill one the way a machine dies (every process of the node,
workers included, at once, with no goodbye)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from conftest import subprocess_env

# The `ray` command of the Python running the tests.
RAY = str(Path(sys.executable).parent / "ray")
# No token authentication on this machine-local cluster, as for its drivers (this process,
# `amlab run` subprocesses), even where a local Ray instance left a token in ~/.ray.
AUTHENTICATION = {"RAY_AUTH_MODE": "disabled"}
# The head notices a dead node after about a second instead of the default half minute.
FAST_FAILURE_DETECTION = {"RAY_health_check_initial_delay_ms": "0",
                          "RAY_health_check_period_ms": "300",
                          "RAY_health_check_timeout_ms": "300",
                          "RAY_health_check_failure_threshold": "3"}
START_TIMEOUT_SECONDS = 60.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def alive(pid: int) -> bool:
    """Running, not ended (a zombie waiting for its parent to read its end has ended)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


class RayNode:
    """One node's `ray start --block` process group."""

    def __init__(self, arguments: list[str], log: Path) -> None:
        self.log = log
        with log.open("wb") as out:
            self.process = subprocess.Popen(
                [RAY, "start", "--block", "--disable-usage-stats",
                 "--node-ip-address", "127.0.0.1", "--object-store-memory", str(80 << 20),
                 # Each node on this machine needs its own agent ports.
                 "--node-manager-port", str(free_port()),
                 "--object-manager-port", str(free_port()),
                 "--dashboard-agent-listen-port", str(free_port()),
                 "--dashboard-agent-grpc-port", str(free_port()),
                 "--metrics-export-port", str(free_port()),
                 "--runtime-env-agent-port", str(free_port()), *arguments],
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                env=subprocess_env(**AUTHENTICATION, **FAST_FAILURE_DETECTION))

    def processes(self) -> dict[int, str]:
        """The node's processes (its group, and the workers its raylet started, which Ray
        puts in sessions of their own), pid to command line."""
        parents: dict[int, int] = {}
        commands: dict[int, str] = {}
        group: set[int] = set()
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                # The fields after the command name (which may hold spaces and parentheses).
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                commands[int(entry.name)] = (entry / "cmdline").read_text().replace("\0", " ")
            except (OSError, IndexError):
                continue  # ended meanwhile
            parents[int(entry.name)] = int(fields[1])
            if int(fields[2]) == self.process.pid:
                group.add(int(entry.name))
        mine = set(group)
        while True:
            children = {pid for pid, parent in parents.items() if parent in mine} - mine
            if not children:
                return {pid: commands.get(pid, "") for pid in mine}
            mine |= children

    def runs(self, task: str) -> bool:
        """Whether a Ray worker of this node runs `task` (an actor class, or its method
        while it runs: `Class.method`)."""
        return any(command.startswith(f"ray::{task}")
                   for command in self.processes().values())

    def kill(self) -> None:
        """Every process of the node at once, SIGKILL, as when its machine dies."""
        pids = self.processes()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):  # ended meanwhile
                os.kill(pid, signal.SIGKILL)
        self.process.wait()
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while any(alive(pid) for pid in pids):
            if time.monotonic() > deadline:
                raise RuntimeError(f"processes of a Ray node outlived SIGKILL: {pids}")
            time.sleep(0.05)


class RayCluster:
    """`address` is the head's host:port; `add_worker` starts a worker node and returns
    once the cluster counts it; `stop` kills every node it started."""

    def __init__(self) -> None:
        # Short: Ray's socket paths live under it and must fit in 107 characters.
        self.temp_dir = Path(tempfile.mkdtemp(prefix="amlab-ray-", dir="/tmp"))
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.nodes: list[RayNode] = []
        self.head = self._node(["--head", "--port", str(self.port), "--num-cpus", "0",
                                "--include-dashboard", "false",
                                "--temp-dir", str(self.temp_dir)], "head")
        self._wait_for_port()

    def _node(self, arguments: list[str], name: str) -> RayNode:
        node = RayNode(arguments, self.temp_dir / f"{name}.log")
        self.nodes.append(node)
        return node

    def _wait_for_port(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self.head.process.poll() is not None:
                raise RuntimeError(f"the Ray head stopped: {self.head.log.read_text()[-2000:]}")
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.2)
        raise RuntimeError(f"the Ray head did not listen within {START_TIMEOUT_SECONDS} s")

    def add_worker(self, cpus: int = 1) -> RayNode:
        """Needs this process connected to the cluster (`ray.init(address=...)`)."""
        before = self.alive_workers()
        node = self._node(["--address", self.address, "--num-cpus", str(cpus)],
                          f"worker{len(self.nodes)}")
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while self.alive_workers() <= before:
            if node.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"a Ray worker node did not join: "
                                   f"{node.log.read_text()[-2000:]}")
            time.sleep(0.2)
        return node

    def alive_workers(self) -> int:
        """Worker nodes the cluster counts as alive (the head has no CPU)."""
        import ray

        return sum(1 for n in ray.nodes()
                   if n["Alive"] and n["Resources"].get("CPU", 0) > 0)

    def stop(self) -> None:
        for node in reversed(self.nodes):
            node.kill()
        shutil.rmtree(self.temp_dir, ignore_errors=True)
