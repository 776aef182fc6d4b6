"""A real Chroma server for tests: ``chroma run`` on a free loopback port, its data in a
temporary folder, stopped at the end.

    with ChromaServer.started(tmp_path) as server:
        store = ChromaServerStore(server.url)

or the session-wide ``chroma_server`` fixture (import it into a test module). The ``chroma``
command comes with chromadb (``pip install 'agentkiln[memory]'``); without it, or when the
server does not answer, the tests fail, saying so.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

STARTUP_S = 30.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _chroma_command() -> str:
    beside = Path(sys.executable).parent / "chroma"  # the venv's, even when not on PATH
    found = str(beside) if beside.exists() else shutil.which("chroma")
    if found is None:
        raise RuntimeError(
            "the chroma command is not installed (pip install 'agentkiln[memory]'); "
            "the Chroma server tests run against a real server"
        )
    return found


class ChromaServer:
    """One ``chroma run`` process; :meth:`stop` and :meth:`start` may be called again (same
    port, same data), to test an outage or a restart."""

    def __init__(self, folder: Path) -> None:
        self.command = _chroma_command()
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self.data = folder / "data"
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.log = folder / "chroma.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @classmethod
    @contextmanager
    def started(cls, folder: Path) -> Iterator[ChromaServer]:
        server = cls(folder)
        server.start()
        try:
            yield server
        finally:
            server.stop()

    def start(self, *, same_port: bool = False) -> None:
        """Start the server; a fresh port is tried when the chosen one was taken, unless
        ``same_port`` (a restart that clients must find where they left it)."""
        for _ in range(3):
            if self._start_once():
                return
            if same_port:
                time.sleep(0.5)
            else:
                self.port = free_port()
        raise RuntimeError(
            f"the Chroma server did not start on port {self.port}; its log: {self._log_tail()}"
        )

    def _start_once(self) -> bool:
        argv = [
            self.command, "run",
            "--path", str(self.data),
            "--host", "127.0.0.1",
            "--port", str(self.port),
        ]  # fmt: skip
        env = {**os.environ, "ANONYMIZED_TELEMETRY": "False"}
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env
            )
        deadline = time.monotonic() + STARTUP_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.process = None
                return False
            if self.heartbeat():
                return True
            time.sleep(0.05)
        self.stop()
        return False

    def heartbeat(self) -> bool:
        """True when the server answers its heartbeat."""
        try:
            with urllib.request.urlopen(f"{self.url}/api/v2/heartbeat", timeout=1) as reply:
                return bool(reply.status == 200)
        except OSError:
            return False

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def _log_tail(self) -> str:
        try:
            return self.log.read_text(errors="replace")[-2000:] or "(empty)"
        except OSError:
            return "(none)"


@pytest.fixture(scope="session")
def chroma_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChromaServer]:
    """A running Chroma server shared by the session's tests (each test keeps its memories
    apart under a collection prefix of its own), stopped at the end."""
    with ChromaServer.started(tmp_path_factory.mktemp("chroma-server")) as server:
        yield server
