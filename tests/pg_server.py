"""A throwaway PostgreSQL server for the tests: initdb and pg_ctl from Debian's
`postgresql` package, in a temporary folder, on 127.0.0.1 and a free port. As root (CI), it
runs as the unprivileged user `nobody` (PostgreSQL refuses root), its folder handed over."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path

# The superuser the server is made with; the tests connect as it, with trust on 127.0.0.1.
USER = "amlab"
UNPRIVILEGED = "nobody"


def binaries() -> Path | None:
    """The newest installed PostgreSQL's bin folder, None when none is installed."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(Path(p).parent.parent.name))
    return Path(found[-1]).parent if found else None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class PostgresServer:
    def __init__(self, bin_dir: Path) -> None:
        self.bin_dir = bin_dir
        self.root = Path(tempfile.mkdtemp(prefix="amlab-pg-"))
        self.data = self.root / "data"
        self.port = _free_port()
        self.as_root = os.geteuid() == 0

    def _run(self, *command: str) -> None:
        prefix = ["runuser", "-u", UNPRIVILEGED, "--"] if self.as_root else []
        subprocess.run([*prefix, *command], check=True, capture_output=True, text=True,
                       cwd=self.root)

    def start(self) -> None:
        if self.as_root:
            shutil.chown(self.root, UNPRIVILEGED)
        self._run(str(self.bin_dir / "initdb"), "-D", str(self.data), "-U", USER,
                  "--auth=trust", "--no-sync", "-E", "UTF8")
        self._run(str(self.bin_dir / "pg_ctl"), "-D", str(self.data), "-l",
                  str(self.root / "server.log"), "-w", "-o",
                  f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
                  f"-c fsync=off -c full_page_writes=off", "start")

    def stop(self) -> None:
        try:
            self._run(str(self.bin_dir / "pg_ctl"), "-D", str(self.data), "-m", "immediate",
                      "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{USER}@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        """A new empty database's URL."""
        import psycopg

        name = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.url(), autocommit=True) as admin:
            admin.execute(f"CREATE DATABASE {name}")
        return self.url(name)
