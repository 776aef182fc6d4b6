"""The real ``kiln serve`` application, started by uvicorn on a free loopback port in a
thread of the test process, for tests that talk to it with real HTTP clients."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from runtime.engine import Engine, Settings
from runtime.server.app import Limits, Server, create_app
from runtime.server.deploy import Deployer
from runtime.server.keys import KeyStore

__all__ = ["Served", "serve"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Served:
    """A running server: its base URL, its key store and the server object."""

    def __init__(self, url: str, keys: KeyStore | None, server: Server) -> None:
        self.url, self.keys, self.server = url, keys, server

    def key(self, tenant: str = "acme", *scopes: str) -> str:
        assert self.keys is not None
        return self.keys.create(tenant, scopes or ("run",))

    def client(self, key: str | None = None, **kwargs: Any) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60, **kwargs)


@contextmanager
def serve(
    paths: list[Path],
    tmp: Path,
    *,
    model: str | None = None,
    auth: bool = True,
    limits: Limits | None = None,
    source: Any = None,
    poll_s: float | None = None,
    webhook_secret: bytes | None = None,
    tracing: Any = None,
    **engine: Any,
) -> Iterator[Served]:
    """Serve ``paths`` (one engine, compiled now), or with ``source`` what it gives (a
    deployer compiles each revision)."""
    settings = Settings(model=model, memory_dir=tmp / "memory")
    if source is None:
        deployer = Deployer.of(Engine(paths, settings, runs_db=tmp / "runs.db", **engine))
    else:
        deployer = Deployer(
            source, lambda roots: Engine(roots, settings, runs_db=tmp / "runs.db", **engine)
        )
    keys = KeyStore(tmp / "keys.db") if auth else None
    server = Server(
        deployer=deployer, keys=keys, limits=limits or Limits(), poll_s=poll_s,
        webhook_secret=webhook_secret, tracing=tracing,
    )  # fmt: skip
    port = free_port()
    config = uvicorn.Config(
        create_app(server), host="127.0.0.1", port=port, log_level="warning", lifespan="on"
    )
    uv = uvicorn.Server(config)
    thread = threading.Thread(target=uv.run, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not uv.started:
        assert thread.is_alive(), "the server did not start"
        assert time.monotonic() < deadline, "the server did not start in 30 s"
        time.sleep(0.02)
    try:
        yield Served(f"http://127.0.0.1:{port}", keys, server)
    finally:
        uv.should_exit = True
        thread.join(timeout=30)
        if keys is not None:
            keys.close()
