"""What one tool call costs through the ToolBox, by kind of tool, next to a no-op builtin.

Run: ``.venv/bin/python benchmarks/tools_bench.py [--calls 300]``

Every call goes through :class:`runtime.tools.ToolBox` (input and output validation,
approval check, cache lookup, retries), as an agent's calls do:

- ``builtin noop``: ``stdlib_tools.noop:run``, the floor;
- ``cache hit``: the same call answered from the in-process cache;
- ``http (local)``: an ``http`` tool GET against a local Starlette app served by uvicorn;
- ``mcp stdio`` / ``mcp http``: the ``echo`` tool of a real MCP server written with the
  SDK (tests/fixtures/mcp_echo_server.py), over stdio and over streamable HTTP.

Medians and p95 in microseconds, and each median as a ratio to the floor: compare ratios
within one run, never figures across machines. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:  # run as a script: make the repository's packages importable
    sys.path.insert(0, ROOT)

from runtime.tools import ToolBox, bind  # noqa: E402
from runtime.tools.box import BuiltinExecutor  # noqa: E402
from runtime.tools.cache import MemoryCache  # noqa: E402
from runtime.tools.http import HttpToolExecutor  # noqa: E402
from runtime.tools.mcp import McpHub, McpToolExecutor  # noqa: E402
from specs import Tool  # noqa: E402
from tests.fixtures.petstore_app import serve  # noqa: E402
from tests.mcp_servers import ECHO, free_port, start_echo_http, stop  # noqa: E402

OBJECT = {"type": "object"}


def tool(name: str, executor: dict[str, Any], **spec: Any) -> Tool:
    return Tool.model_validate(
        {
            "apiVersion": "kiln/v1",
            "kind": "Tool",
            "metadata": {"name": name},
            "spec": {"description": name, "executor": executor, **spec},
        }
    )


async def measure(call: Callable[[], Awaitable[Any]], calls: int) -> list[float]:
    for _ in range(min(20, calls)):  # warm: connections, servers, caches
        await call()
    times = []
    for _ in range(calls):
        started = time.perf_counter()
        outcome = await call()
        times.append((time.perf_counter() - started) * 1e6)
        if not outcome.ok:
            raise SystemExit(f"a call failed: {outcome.error}")
    return times


async def main(calls: int) -> None:
    builtin = BuiltinExecutor()
    noop = tool("noop", {"type": "builtin", "function": "stdlib_tools.noop:run"})
    cached = tool(
        "noop_cached",
        {"type": "builtin", "function": "stdlib_tools.noop:run"},
        cache={"ttl_s": 3600},
    )
    rows: list[tuple[str, list[float]]] = []
    box = ToolBox({"noop": bind(noop), "noop_cached": bind(cached)}, {"builtin": builtin},
                  cache=MemoryCache())  # fmt: skip
    rows.append(("builtin noop", await measure(lambda: box.call("noop", {}), calls)))
    rows.append(("cache hit", await measure(lambda: box.call("noop_cached", {}), calls)))

    with serve() as base:
        get = tool(
            "get_echo", {"type": "http", "url": f"{base}/echo", "allow_hosts": ["127.0.0.1"]}
        )
        http = HttpToolExecutor(folders={}, allow_hosts=())
        try:
            hbox = ToolBox({"get_echo": bind(get)}, {"http": http})
            rows.append(("http (local)", await measure(lambda: hbox.call("get_echo", {}), calls)))
        finally:
            await http.aclose()

    port = free_port()
    process = start_echo_http(port)
    try:
        async with McpHub() as hub:
            mcp = McpToolExecutor(hub, folders={})
            stdio = tool(
                "echo_stdio", {"type": "mcp", "tool": "echo", "server": {"command": list(ECHO)}}
            )
            remote = tool(
                "echo_http",
                {
                    "type": "mcp",
                    "tool": "echo",
                    "server": {"transport": "http", "url": f"http://127.0.0.1:{port}/mcp"},
                },
            )
            mbox = ToolBox({"stdio": bind(stdio), "http": bind(remote)}, {"mcp": mcp})
            rows.append(
                ("mcp stdio", await measure(lambda: mbox.call("stdio", {"text": "hi"}), calls))
            )
            rows.append(
                ("mcp http", await measure(lambda: mbox.call("http", {"text": "hi"}), calls))
            )
    finally:
        stop(process)

    floor = statistics.median(rows[0][1])
    print(f"{'tool call':<14} {'p50 µs':>9} {'p95 µs':>9} {'× floor':>9}")
    for name, times in rows:
        p50 = statistics.median(times)
        p95 = statistics.quantiles(times, n=20)[-1]
        print(f"{name:<14} {p50:>9.1f} {p95:>9.1f} {p50 / floor:>9.1f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300)
    args = parser.parse_args()
    Path(".kiln").mkdir(exist_ok=True)
    anyio.run(main, args.calls)
