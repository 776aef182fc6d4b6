"""The Redis tool cache against a real ``redis-server`` (started by the test)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import anyio

from runtime.tools.box import BuiltinExecutor, ToolBox, ToolOutcome, bind, result_key
from runtime.tools.cache import RedisCache, cache_from_url
from specs import Tool
from tests.redis_server import RedisServer, redis_server  # noqa: F401 - a fixture


def make_tool(ttl_s: int = 60) -> Tool:
    return Tool.model_validate(
        {
            "apiVersion": "kiln/v1",
            "kind": "Tool",
            "metadata": {"name": "count"},
            "spec": {
                "description": "Count words.",
                "input_schema": {"type": "object", "properties": {"text": {"type": "string"}}},
                "executor": {"type": "builtin", "function": "stdlib_tools.word_count:run"},
                "cache": {"ttl_s": ttl_s},
            },
        }
    )


class Counting:
    def __init__(self) -> None:
        self.builtin = BuiltinExecutor()
        self.calls = 0

    async def call(
        self, tool: Tool, arguments: Mapping[str, Any], target: str | None = None
    ) -> Any:
        self.calls += 1
        return await self.builtin.call(tool, arguments, target)


def box(cache: RedisCache, executor: Counting, ttl_s: int = 60) -> ToolBox:
    return ToolBox({"count": bind(make_tool(ttl_s))}, {"builtin": executor}, cache=cache)


def test_two_boxes_share_results_through_redis(redis_server: RedisServer) -> None:  # noqa: F811
    warnings: list[str] = []
    executor = Counting()

    async def go() -> list[ToolOutcome]:
        # two caches, as two processes would have: only Redis is shared
        first, second = (RedisCache(redis_server.url, warn=warnings.append) for _ in range(2))
        try:
            return [
                await box(first, executor).call("count", {"text": "a b c"}),
                await box(second, executor).call("count", {"text": "a b c"}),
                await box(second, executor).call("count", {"text": "other"}),
            ]
        finally:
            await first.aclose()
            await second.aclose()

    made, shared, other = anyio.run(go)
    assert made.ok and not made.cached
    assert shared.cached and shared.output == made.output == {
        "words": 3,
        "characters": 5,
        "lines": 1,
    }
    assert not other.cached and executor.calls == 2
    assert warnings == []
    key = "kiln:tool:" + result_key(make_tool(), None, {"text": "a b c"})
    reply = redis_server.command("TTL", key)
    assert reply.startswith(b":") and 0 < int(reply[1:]) <= 60  # SET ... EX, from the spec


def test_entries_expire_in_redis(redis_server: RedisServer) -> None:  # noqa: F811
    executor = Counting()
    key = "kiln:tool:" + result_key(make_tool(ttl_s=1), None, {"text": "soon gone"})

    async def call() -> ToolOutcome:
        cache = RedisCache(redis_server.url)
        try:
            return await box(cache, executor, ttl_s=1).call("count", {"text": "soon gone"})
        finally:
            await cache.aclose()

    first = anyio.run(call)
    assert not first.cached and redis_server.command("EXISTS", key) == b":1\r\n"
    deadline = time.monotonic() + 10  # Redis expires it; we only wait to see that
    while redis_server.command("EXISTS", key) != b":0\r\n":
        assert time.monotonic() < deadline, "the entry never expired"
        time.sleep(0.05)
    again = anyio.run(call)
    assert not again.cached and executor.calls == 2


def test_an_outage_degrades_to_no_cache_with_one_warning(tmp_path: Path) -> None:
    with RedisServer.started(tmp_path / "redis") as server:
        warnings: list[str] = []
        executor = Counting()
        cache = cache_from_url(server.url, warn=warnings.append, retry_s=0.0)
        assert isinstance(cache, RedisCache)

        async def calls(n: int) -> list[ToolOutcome]:
            return [await box(cache, executor).call("count", {"text": "x y"}) for _ in range(n)]

        async def go() -> tuple[list[ToolOutcome], list[ToolOutcome], list[ToolOutcome]]:
            try:
                before = await calls(2)
                server.stop()
                during = await calls(3)
                server.start()  # same port, empty: nothing was saved
                after = await calls(2)
                return before, during, after
            finally:
                await cache.aclose()

        before, during, after = anyio.run(go)
    assert [o.cached for o in before] == [False, True]
    assert [o.status for o in during] == ["ok"] * 3 and not any(o.cached for o in during)
    assert [o.cached for o in after] == [False, True]
    assert executor.calls == 1 + 3 + 1
    outage = [w for w in warnings if "is not answering" in w]
    assert len(outage) == 1, warnings
    assert outage[0].startswith(f"tool cache {server.url} is not answering (")
    assert "tool results are not cached until it is back" in outage[0]
    assert warnings[-1] == f"tool cache {server.url} is back"


def test_while_down_redis_is_left_alone_until_the_retry_time(tmp_path: Path) -> None:
    with RedisServer.started(tmp_path / "redis") as server:
        url = server.url
    # the server is gone: the first call notices, the next ones do not even try
    now = [0.0]
    warnings: list[str] = []
    cache = RedisCache(url, warn=warnings.append, retry_s=30, clock=lambda: now[0])

    async def go() -> list[bool]:
        try:
            seen = [await cache.get("k") is None, cache.available]
            await cache.set("k", "v", 5)
            seen.append(cache.available)
            return seen
        finally:
            await cache.aclose()

    assert anyio.run(go) == [True, False, False]
    assert len(warnings) == 1
