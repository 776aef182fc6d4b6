"""Tool-result caching in the ToolBox call path, on the in-process cache."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import anyio
import pytest

from runtime.redact import redact
from runtime.tools.box import BuiltinExecutor, ToolBox, ToolError, ToolOutcome, bind
from runtime.tools.cache import (
    MemoryCache,
    RedisCache,
    cache_from_url,
    cache_key,
    canonical_json,
)
from specs import Tool


def make_tool(
    name: str = "count",
    *,
    version: str = "1",
    ttl_s: int | None = 60,
    side_effects: bool = False,
) -> Tool:
    spec: dict[str, Any] = {
        "description": "Count words.",
        "version": version,
        "input_schema": {"type": "object", "properties": {"text": {"type": "string"}}},
        "executor": {"type": "builtin", "function": "stdlib_tools.word_count:run"},
        "side_effects": side_effects,
    }
    if ttl_s is not None:
        spec["cache"] = {"ttl_s": ttl_s}
    return Tool.model_validate(
        {"apiVersion": "kiln/v1", "kind": "Tool", "metadata": {"name": name}, "spec": spec}
    )


class Counting:
    """The real builtin executor (stdlib word_count), counting the calls that reach it;
    ``fail`` makes calls fail instead."""

    def __init__(self) -> None:
        self.builtin = BuiltinExecutor()
        self.calls = 0
        self.fail: ToolError | None = None

    async def call(
        self, tool: Tool, arguments: Mapping[str, Any], target: str | None = None
    ) -> Any:
        self.calls += 1
        if self.fail is not None:
            raise self.fail
        return await self.builtin.call(tool, arguments, target)


def box_of(*tools: Tool, cache: Any, executor: Counting) -> ToolBox:
    return ToolBox({t.metadata.name: bind(t) for t in tools}, {"builtin": executor}, cache=cache)


def calls(box: ToolBox, *requests: tuple[str, Any]) -> list[ToolOutcome]:
    async def go() -> list[ToolOutcome]:
        return [await box.call(name, arguments) for name, arguments in requests]

    return anyio.run(go)


# -- keys -----------------------------------------------------------------------------------


def test_the_key_ignores_key_order_and_spacing_but_not_values() -> None:
    a = cache_key("t", "1", {"b": [1, 2], "a": {"y": 1, "x": "é"}})
    b = cache_key("t", "1", {"a": {"x": "é", "y": 1}, "b": [1, 2]})
    assert a == b and len(a) == 64
    assert cache_key("t", "1", {"b": [2, 1], "a": {"y": 1, "x": "é"}}) != a
    assert cache_key("t", "2", {"b": [1, 2], "a": {"y": 1, "x": "é"}}) != a
    assert cache_key("u", "1", {"b": [1, 2], "a": {"y": 1, "x": "é"}}) != a


def test_canonical_json_is_compact_sorted_and_keeps_non_ascii() -> None:
    assert canonical_json({"b": 1, "a": ["é", None]}) == '{"a":["é",null],"b":1}'
    # a lone surrogate cannot be UTF-8, yet it still has a stable key
    assert cache_key("t", "1", {"s": "\ud800"}) == cache_key("t", "1", {"s": "\ud800"})


# -- the memory cache -----------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_memory_entries_expire_on_the_monotonic_clock() -> None:
    clock = Clock()
    cache = MemoryCache(clock=clock)

    async def go() -> list[str | None]:
        await cache.set("k", "v", 10)
        seen = [await cache.get("k")]
        clock.now += 9.9
        seen.append(await cache.get("k"))
        clock.now += 0.1
        seen.append(await cache.get("k"))
        return seen

    assert anyio.run(go) == ["v", "v", None]
    assert len(cache) == 0  # the expired entry is gone, not just hidden


def test_memory_cache_drops_the_least_recently_used_entry() -> None:
    cache = MemoryCache(max_entries=2)

    async def go() -> list[str | None]:
        await cache.set("a", "1", 60)
        await cache.set("b", "2", 60)
        await cache.get("a")  # a is now the most recent
        await cache.set("c", "3", 60)
        return [await cache.get(k) for k in "abc"]

    assert anyio.run(go) == ["1", None, "3"]
    assert len(cache) == 2


def test_a_memory_cache_holds_something() -> None:
    with pytest.raises(ValueError, match="at least one entry"):
        MemoryCache(max_entries=0)


# -- the box --------------------------------------------------------------------------------


def test_a_second_identical_call_is_served_from_the_cache() -> None:
    executor = Counting()
    box = box_of(make_tool(), cache=MemoryCache(), executor=executor)
    first, second, reordered = calls(
        box,
        ("count", {"text": "a b c"}),
        ("count", {"text": "a b c"}),
        ("count", dict(reversed(list({"text": "a b c"}.items())))),
    )
    assert executor.calls == 1
    assert first.ok and not first.cached and first.attempts == 1
    assert second.ok and second.cached and second.attempts == 0
    assert second.output == first.output == {"words": 3, "characters": 5, "lines": 1}
    assert reordered.cached


def test_other_input_and_a_new_version_miss() -> None:
    executor = Counting()
    cache = MemoryCache()
    old = box_of(make_tool(version="1"), cache=cache, executor=executor)
    new = box_of(make_tool(version="2"), cache=cache, executor=executor)
    outcomes = calls(old, ("count", {"text": "a"}), ("count", {"text": "a b"}))
    outcomes += calls(new, ("count", {"text": "a"}))
    assert [o.cached for o in outcomes] == [False, False, False]
    assert executor.calls == 3


def test_two_boxes_sharing_a_cache_share_results() -> None:
    executor = Counting()
    cache = MemoryCache()
    (first,) = calls(box_of(make_tool(), cache=cache, executor=executor), ("count", {"text": "x"}))
    (second,) = calls(box_of(make_tool(), cache=cache, executor=executor), ("count", {"text": "x"}))
    assert not first.cached and second.cached and executor.calls == 1


def test_side_effecting_tools_are_never_cached() -> None:
    executor = Counting()
    box = box_of(make_tool(side_effects=True), cache=MemoryCache(), executor=executor)
    outcomes = calls(box, ("count", {"text": "a"}), ("count", {"text": "a"}))
    assert [o.cached for o in outcomes] == [False, False]
    assert executor.calls == 2


def test_tools_without_a_cache_policy_or_a_box_without_a_cache_always_run() -> None:
    executor = Counting()
    no_policy = box_of(make_tool(ttl_s=None), cache=MemoryCache(), executor=executor)
    no_cache = box_of(make_tool(), cache=None, executor=executor)
    outcomes = calls(no_policy, ("count", {"text": "a"}), ("count", {"text": "a"}))
    outcomes += calls(no_cache, ("count", {"text": "a"}), ("count", {"text": "a"}))
    assert not any(o.cached for o in outcomes)
    assert executor.calls == 4


def test_failures_are_not_cached() -> None:
    executor = Counting()
    executor.fail = ToolError("the service said no")
    box = box_of(make_tool(), cache=MemoryCache(), executor=executor)
    (failed,) = calls(box, ("count", {"text": "a"}))
    executor.fail = None
    ok, again = calls(box, ("count", {"text": "a"}), ("count", {"text": "a"}))
    assert failed.status == "error" and not failed.cached
    assert ok.ok and not ok.cached and again.cached
    assert executor.calls == 2


def test_invalid_input_never_reaches_the_cache() -> None:
    class Spy(MemoryCache):
        asked = 0

        async def get(self, key: str) -> str | None:
            Spy.asked += 1
            return await super().get(key)

    box = box_of(make_tool(), cache=Spy(), executor=Counting())
    (outcome,) = calls(box, ("count", {"text": 5}))
    assert outcome.status == "invalid_input" and Spy.asked == 0


def test_a_cache_that_fails_or_holds_junk_is_a_miss_never_an_error() -> None:
    class Broken:
        async def get(self, key: str) -> str | None:
            raise RuntimeError("store on fire")

        async def set(self, key: str, value: str, ttl_s: float) -> None:
            raise RuntimeError("store on fire")

    class Junk:
        async def get(self, key: str) -> str | None:
            return '{"not": "ours"}'

        async def set(self, key: str, value: str, ttl_s: float) -> None:
            return None

    for cache in (Broken(), Junk()):
        executor = Counting()
        box = box_of(make_tool(), cache=cache, executor=executor)
        outcomes = calls(box, ("count", {"text": "a"}), ("count", {"text": "a"}))
        assert [o.status for o in outcomes] == ["ok", "ok"]
        assert executor.calls == 2 and not any(o.cached for o in outcomes)


def test_a_cached_output_is_a_copy() -> None:
    box = box_of(make_tool(), cache=MemoryCache(), executor=Counting())
    first, second = calls(box, ("count", {"text": "a"}), ("count", {"text": "a"}))
    second.output["words"] = 99
    (third,) = calls(box, ("count", {"text": "a"}))
    assert third.cached and third.output["words"] == 1


def test_the_entry_is_kept_for_the_spec_ttl() -> None:
    clock = Clock()
    executor = Counting()
    box = box_of(make_tool(ttl_s=30), cache=MemoryCache(clock=clock), executor=executor)
    calls(box, ("count", {"text": "a"}))
    clock.now += 29
    (hit,) = calls(box, ("count", {"text": "a"}))
    clock.now += 1
    (miss,) = calls(box, ("count", {"text": "a"}))
    assert hit.cached and not miss.cached and executor.calls == 2


# -- choosing a cache -----------------------------------------------------------------------


def test_cache_from_url() -> None:
    assert isinstance(cache_from_url(None), MemoryCache)
    assert isinstance(cache_from_url("memory"), MemoryCache)
    redis = cache_from_url("redis://localhost:6379/0")
    assert isinstance(redis, RedisCache) and redis.prefix == "kiln:tool:"
    with pytest.raises(ValueError, match="unknown tool cache 'memcached://x'"):
        cache_from_url("memcached://x")


def test_passwords_stay_out_of_messages() -> None:
    assert redact("redis://user:s3cret@host:6379/0") == "redis://user:***@host:6379/0"
    assert redact("redis://:s3cret@host/0") == "redis://:***@host/0"
    assert redact("redis://host:6379/0") == "redis://host:6379/0"
    with pytest.raises(ValueError) as caught:
        cache_from_url("mem://:s3cret@host")
    assert "s3cret" not in str(caught.value)
