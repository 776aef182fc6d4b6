"""A real ``redis-server`` for tests: on a free loopback port, in a temporary folder, with
nothing saved to disk, stopped at the end.

    with RedisServer.started(tmp_path) as server:
        cache = RedisCache(server.url)

or the ``redis_server`` fixture (import it into a test module). ``redis-server`` must be on
PATH (Debian: ``apt-get install redis-server``); without it the tests fail, saying so.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

STARTUP_S = 10.0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class RedisServer:
    """One ``redis-server`` process; :meth:`start` and :meth:`stop` may be called again
    (same port), to test what an outage does."""

    def __init__(self, folder: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError(
                "redis-server is not installed (Debian: apt-get install redis-server); "
                "the Redis tests run against a real server"
            )
        self.binary = binary
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self.port = _free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.log = folder / "redis.log"

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @classmethod
    @contextmanager
    def started(cls, folder: Path) -> Iterator[RedisServer]:
        server = cls(folder)
        server.start()
        try:
            yield server
        finally:
            server.stop()

    def start(self) -> None:
        for _ in range(3):  # the port may be taken between choosing and binding it
            if self._start_once():
                return
            self.port = _free_port()
        raise RuntimeError(f"redis-server did not start; its log: {self._log_tail()}")

    def _start_once(self) -> bool:
        argv = [
            self.binary,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.folder),
            "--save", "",
            "--appendonly", "no",
            "--daemonize", "no",
            "--logfile", str(self.log),
        ]  # fmt: skip
        self.process = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + STARTUP_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.process = None
                return False
            if self.ping():
                return True
            time.sleep(0.02)
        self.stop()
        return False

    def ping(self) -> bool:
        """True when the server answers PING."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as conn:
                conn.sendall(b"PING\r\n")
                return conn.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def command(self, *words: str) -> bytes:
        """One command in the inline protocol; the raw reply (for checks from the outside)."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=2) as conn:
            conn.sendall(" ".join(words).encode() + b"\r\n")
            return conn.recv(65536)

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def _log_tail(self) -> str:
        try:
            return self.log.read_text(errors="replace")[-2000:] or "(empty)"
        except OSError:
            return "(none)"


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A running ``redis-server``, stopped after the test."""
    with RedisServer.started(tmp_path / "redis") as server:
        yield server
