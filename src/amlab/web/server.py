"""Serving the viewer on 127.0.0.1 only: a socket bound before the server starts, so the
URL printed is the one that answers, and a port already taken is a clear error."""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass
from pathlib import Path

import uvicorn

from amlab.errors import AmlabError
from amlab.web.app import create_app

HOST = "127.0.0.1"


def bind(port: int = 0) -> socket.socket:
    """A listening socket on 127.0.0.1 (port 0: any free port)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind((HOST, port))
    except OSError:
        sock.close()
        raise AmlabError(f"--port {port}: port {port} on {HOST} is in use or not allowed; "
                         f"choose another port, or omit --port for a free one.") from None
    sock.listen(128)
    return sock


def url_of(sock: socket.socket) -> str:
    return f"http://{HOST}:{sock.getsockname()[1]}/"


def make_server(db: Path | str) -> uvicorn.Server:
    return uvicorn.Server(uvicorn.Config(create_app(db), log_level="warning",
                                         access_log=False, server_header=False))


@dataclass
class BackgroundViewer:
    """The viewer running in a thread (for tests and notebooks); `stop()` ends it."""

    url: str
    server: uvicorn.Server
    thread: threading.Thread

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def start_in_background(db: Path | str, port: int = 0) -> BackgroundViewer:
    server = make_server(db)
    sock = bind(port)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started and thread.is_alive():
        threading.Event().wait(0.02)
    return BackgroundViewer(url_of(sock), server, thread)
