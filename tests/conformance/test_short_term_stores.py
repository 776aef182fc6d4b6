"""The ShortTermStore conformance suite: every backend passes it unedited.

Run against the in-process store, :class:`SqliteShortTerm` on a file of the test's own and
:class:`RedisShortTerm` on a real ``redis-server`` (started per test, see
tests/redis_server.py). Tests named ``test_redis_*`` are about what only a server has: other
clients, outages, foreign values at a key. The SQLite store's own tests (other processes,
foreign files) are in test_short_term_sqlite.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import anyio
import pytest

from runtime.memory.protocols import ShortTermStore
from runtime.memory.records import MemoryStoreError, Namespace, StoreUnavailable, Turn
from runtime.memory.registry import StoreSettings, backend_class, open_store
from runtime.memory.short_term import InProcessShortTerm
from runtime.memory.short_term.redis import KEY_PREFIX, RedisShortTerm
from runtime.memory.short_term.sqlite import SqliteShortTerm
from tests.redis_server import RedisServer, redis_server  # noqa: F401 - a fixture

pytestmark = pytest.mark.anyio

NS = Namespace(policy="chat", tenant="alice", scope="session", owner="s1").key


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # redis.asyncio runs on asyncio only


@dataclass(frozen=True, slots=True)
class Backend:
    name: str
    #: a client of the backend's data: for Redis a new client each call, same server
    open: Callable[[], ShortTermStore]


@pytest.fixture(params=["inprocess", "sqlite", "redis"])
def backend(request: pytest.FixtureRequest) -> Backend:
    if request.param == "redis":
        server: RedisServer = request.getfixturevalue("redis_server")
        return Backend("redis", lambda: RedisShortTerm(server.url))
    if request.param == "sqlite":
        folder: Path = request.getfixturevalue("tmp_path")
        return Backend("sqlite", lambda: SqliteShortTerm(folder / "memory" / "short_term.db"))
    shared = InProcessShortTerm()
    return Backend("inprocess", lambda: shared)


@pytest.fixture
async def store(backend: Backend) -> AsyncIterator[ShortTermStore]:
    opened = backend.open()
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
async def redis_store(redis_server: RedisServer) -> AsyncIterator[RedisShortTerm]:  # noqa: F811
    opened = RedisShortTerm(redis_server.url)
    try:
        yield opened
    finally:
        await opened.close()


def turns(*contents: str, role: str = "user") -> list[Turn]:
    return [Turn(role=role, content=c) for c in contents]  # type: ignore[arg-type]


def ids(window: list[Turn]) -> list[str]:
    return [t.id for t in window]


async def test_is_a_short_term_store(store: ShortTermStore) -> None:
    assert isinstance(store, ShortTermStore)


async def test_append_and_window_keep_order(store: ShortTermStore) -> None:
    first, second = turns("a", "b", "c"), turns("d", "e", role="assistant")
    await store.append(NS, first)
    await store.append(NS, second)
    assert await store.window(NS) == first + second


async def test_turns_round_trip_whole(store: ShortTermStore) -> None:
    odd = [
        Turn(role="user", content='quotes " and \\ and\nnew lines', agent="bot", ts=1.5),
        Turn(role="assistant", content="héllo 🌍 中文 \ud800 lone surrogate", ts=1e9 + 0.123),
        Turn(role="summary", content="", agent="a-b.c"),
    ]
    await store.append(NS, odd)
    assert await store.window(NS) == odd


async def test_an_unknown_namespace_is_empty(store: ShortTermStore) -> None:
    assert await store.window(NS) == []
    assert await store.clear(NS) == 0
    assert await store.compact(NS, ["nope"], turns("s")) is False
    assert await store.namespaces() == []


async def test_appending_nothing_changes_nothing(store: ShortTermStore) -> None:
    await store.append(NS, [], ttl_s=5)
    assert await store.namespaces() == []


async def test_a_ttl_below_one_second_is_refused(store: ShortTermStore) -> None:
    with pytest.raises(ValueError, match="ttl_s"):
        await store.append(NS, turns("a"), ttl_s=0)


async def test_expiry_slides_with_each_append(store: ShortTermStore) -> None:
    other = Namespace(policy="chat", tenant="alice", scope="session", owner="s2").key
    a, b, x, y = turns("a", "b", "x", "y")
    await store.append(NS, [a], ttl_s=1)
    await store.append(other, [x], ttl_s=1)
    await anyio.sleep(0.6)
    await store.append(NS, [b], ttl_s=1)  # NS now lives until ~1.6 s
    await store.append(other, [y])  # no ttl_s: other still ends at ~1.0 s
    await anyio.sleep(0.6)
    assert await store.window(NS) == [a, b]
    assert await store.window(other) == []
    assert await store.namespaces() == [NS]
    await anyio.sleep(0.6)
    assert await store.window(NS) == []
    assert await store.namespaces() == []


async def test_compact_keeps_the_expiry_even_when_it_replaces_everything(
    store: ShortTermStore,
) -> None:
    window = turns("a", "b")
    await store.append(NS, window, ttl_s=1)
    assert await store.compact(NS, ids(window), turns("summary", role="summary"))
    await anyio.sleep(1.2)
    assert await store.window(NS) == []


async def test_a_window_without_ttl_stays(store: ShortTermStore) -> None:
    window = turns("a")
    await store.append(NS, window)
    await anyio.sleep(0.05)
    assert await store.window(NS) == window


async def test_compact_replaces_the_head(store: ShortTermStore) -> None:
    window = turns("1", "2", "3", "4", "5")
    await store.append(NS, window)
    summary = turns("1 to 3", role="summary")
    assert await store.compact(NS, ids(window[:3]), summary) is True
    assert await store.window(NS) == summary + window[3:]
    # a replacement of nothing drops the head
    assert await store.compact(NS, ids(summary), []) is True
    assert await store.window(NS) == window[3:]


async def test_compact_keeps_the_order_of_several_replacements(store: ShortTermStore) -> None:
    window = turns("1", "2", "3")
    await store.append(NS, window)
    replacement = turns("r1", "r2", "r3", role="summary")
    assert await store.compact(NS, ids(window[:1]), replacement)
    assert await store.window(NS) == replacement + window[1:]


async def test_compact_with_no_head_puts_turns_first(store: ShortTermStore) -> None:
    window = turns("a")
    await store.append(NS, window)
    summary = turns("before", role="summary")
    assert await store.compact(NS, [], summary) is True
    assert await store.window(NS) == summary + window


async def test_compact_is_refused_when_the_head_changed(store: ShortTermStore) -> None:
    window = turns("1", "2", "3", "4")
    await store.append(NS, window)
    seen = await store.window(NS)
    # another run compacted first
    assert await store.compact(NS, ids(seen[:2]), turns("theirs", role="summary"))
    after = await store.window(NS)
    assert await store.compact(NS, ids(seen[:3]), turns("mine", role="summary")) is False
    assert await store.window(NS) == after


async def test_compact_is_refused_for_a_wrong_or_too_long_head(store: ShortTermStore) -> None:
    window = turns("1", "2", "3")
    await store.append(NS, window)
    assert await store.compact(NS, [window[1].id, window[0].id], []) is False
    assert await store.compact(NS, [*ids(window), "more"], []) is False
    assert await store.compact(NS, [window[1].id], []) is False
    assert await store.window(NS) == window


async def test_turns_appended_between_read_and_compact_are_kept(store: ShortTermStore) -> None:
    window = turns("1", "2", "3")
    await store.append(NS, window)
    seen = await store.window(NS)
    late = turns("late 1", "late 2", role="assistant")
    await store.append(NS, late)
    summary = turns("1 and 2", role="summary")
    assert await store.compact(NS, ids(seen[:2]), summary)
    assert await store.window(NS) == summary + window[2:] + late


async def test_compacting_everything_away_leaves_no_window(store: ShortTermStore) -> None:
    window = turns("1", "2")
    await store.append(NS, window)
    assert await store.compact(NS, ids(window), [])
    assert await store.window(NS) == []
    assert await store.namespaces() == []
    assert await store.clear(NS) == 0


async def test_only_one_of_racing_compacts_wins(store: ShortTermStore) -> None:
    window = turns(*(str(i) for i in range(10)))
    await store.append(NS, window)
    wins: list[int] = []

    async def compact(n: int) -> None:
        if await store.compact(NS, ids(window[:5]), turns(f"summary {n}", role="summary")):
            wins.append(n)

    async with anyio.create_task_group() as tg:
        for n in range(10):
            tg.start_soon(compact, n)
    assert len(wins) == 1
    after = await store.window(NS)
    assert [t.content for t in after] == [f"summary {wins[0]}", *map(str, range(5, 10))]


async def test_clear_says_how_many_turns_went(store: ShortTermStore) -> None:
    await store.append(NS, turns("a", "b"))
    await store.append(NS, turns("c", "d"))
    assert await store.clear(NS) == 4
    assert await store.window(NS) == []
    assert await store.clear(NS) == 0


async def test_namespaces_lists_the_windows_that_exist(store: ShortTermStore) -> None:
    keys = sorted(
        {
            NS,
            Namespace(policy="chat", tenant="bob", scope="user", owner="bob").key,
            Namespace(policy="p*?[x]", tenant="a/b:c", scope="crew", owner="ü *").key,
            Namespace(policy="chat", tenant="alice", scope="agent", owner="").key,
        }
    )
    for key in keys:
        await store.append(key, turns("hi"))
    assert await store.namespaces() == keys
    await store.clear(keys[0])
    assert await store.namespaces() == keys[1:]


async def test_a_tenant_never_sees_another_tenants_window(store: ShortTermStore) -> None:
    alice = Namespace(policy="chat", tenant="alice", scope="session", owner="s1").key
    bob = Namespace(policy="chat", tenant="bob", scope="session", owner="s1").key
    # a tenant id crafted to look like a path into alice's part must not reach it
    forged = Namespace(policy="chat", tenant="bob/alice/session:s1", scope="user", owner="").key
    window = turns("alice's secret")
    await store.append(alice, window)
    assert await store.window(bob) == []
    assert await store.window(forged) == []
    assert await store.compact(bob, ids(window), []) is False
    assert await store.clear(bob) == 0
    assert await store.clear(forged) == 0
    assert await store.window(alice) == window


async def test_concurrent_appenders_lose_nothing(store: ShortTermStore) -> None:
    tasks, each = 20, 50

    async def appender(task: int) -> None:
        for n in range(each):
            await store.append(NS, [Turn(id=f"{task}-{n}", role="user", content=str(n))])

    async with anyio.create_task_group() as tg:
        for task in range(tasks):
            tg.start_soon(appender, task)
    window = await store.window(NS)
    assert len(window) == tasks * each
    assert {t.id for t in window} == {f"{t}-{n}" for t in range(tasks) for n in range(each)}
    for task in range(tasks):  # each appender's turns in the order it appended them
        mine = [t.content for t in window if t.id.startswith(f"{task}-")]
        assert mine == [str(n) for n in range(each)]


async def test_another_client_sees_the_same_windows(backend: Backend) -> None:
    # in-process: the same store; SQLite, Redis: a new client of the same file or server,
    # as after a restart
    first = backend.open()
    window = turns("kept", "across", "clients")
    try:
        await first.append(NS, window, ttl_s=60)
    finally:
        await first.close()
    second = backend.open()
    try:
        assert await second.window(NS) == window
        assert await second.namespaces() == [NS]
    finally:
        await second.close()


async def test_inprocess_from_settings_is_one_store_per_process(tmp_path: Path) -> None:
    settings = StoreSettings(root=tmp_path)
    first = open_store("short_term", "inprocess", settings)
    assert isinstance(first, InProcessShortTerm)
    assert open_store("short_term", "inprocess", settings) is first
    assert backend_class("short_term", "inprocess") is InProcessShortTerm


async def test_redis_from_settings_uses_the_url(
    redis_server: RedisServer,  # noqa: F811
    tmp_path: Path,
) -> None:
    assert backend_class("short_term", "redis") is RedisShortTerm
    assert RedisShortTerm.from_settings(StoreSettings(root=tmp_path)).url == (
        "redis://127.0.0.1:6379/0"
    )
    store = open_store("short_term", "redis", StoreSettings(root=tmp_path, url=redis_server.url))
    try:
        await store.append(NS, turns("hi"))
        assert redis_server.command("LLEN", KEY_PREFIX + NS).strip() == b":1"
    finally:
        await store.close()


async def test_redis_data_survives_a_client_restart(
    redis_server: RedisServer,  # noqa: F811
) -> None:
    window = turns("before", "the", "restart")
    first = RedisShortTerm(redis_server.url)
    await first.append(NS, window)
    await first.close()
    second = RedisShortTerm(redis_server.url)
    try:
        assert await second.window(NS) == window
        await second.append(NS, turns("after"))
        assert len(await second.window(NS)) == 4
    finally:
        await second.close()


async def test_redis_server_down_is_retryable_and_names_the_url(
    redis_server: RedisServer,  # noqa: F811
    redis_store: RedisShortTerm,
) -> None:
    await redis_store.append(NS, turns("a"))  # a pooled connection now exists
    redis_server.stop()
    calls: dict[str, Callable[[], Awaitable[object]]] = {
        "append": lambda: redis_store.append(NS, turns("b"), ttl_s=5),
        "window": lambda: redis_store.window(NS),
        "compact": lambda: redis_store.compact(NS, ["x"], []),
        "clear": lambda: redis_store.clear(NS),
        "namespaces": lambda: redis_store.namespaces(),
    }
    for name, call in calls.items():
        with pytest.raises(StoreUnavailable) as caught:
            await call()
        assert caught.value.retryable is True, name
        assert caught.value.code == "memory_unavailable"
        assert f"127.0.0.1:{redis_server.port}" in str(caught.value), name
    redis_server.start()  # the same port: the same store works again
    await redis_store.append(NS, turns("back"))
    assert [t.content for t in await redis_store.window(NS)] == ["back"]


async def test_redis_messages_hide_the_password() -> None:
    store = RedisShortTerm("redis://user:s3cret@127.0.0.1:1/0", timeout_s=0.5)
    try:
        with pytest.raises(StoreUnavailable) as caught:
            await store.window(NS)
    finally:
        await store.close()
    assert "s3cret" not in str(caught.value)
    assert "user:***@127.0.0.1:1" in str(caught.value)


async def test_redis_a_foreign_value_at_the_key_is_named_not_touched(
    redis_server: RedisServer,  # noqa: F811
    redis_store: RedisShortTerm,
) -> None:
    key = KEY_PREFIX + NS
    redis_server.command("SET", key, "not-a-list")
    for call in (
        lambda: redis_store.window(NS),
        lambda: redis_store.compact(NS, ["x"], []),
        lambda: redis_store.clear(NS),
    ):
        with pytest.raises(MemoryStoreError) as caught:
            await call()
        assert not isinstance(caught.value, StoreUnavailable)
        assert caught.value.retryable is False
        assert key in str(caught.value)
    assert redis_server.command("GET", key).endswith(b"not-a-list\r\n")  # not deleted

    redis_server.command("DEL", key)
    redis_server.command("RPUSH", key, "not-json")
    for call in (lambda: redis_store.window(NS), lambda: redis_store.compact(NS, ["x"], [])):
        with pytest.raises(MemoryStoreError, match="not a conversation window") as caught:
            await call()
        assert key in str(caught.value)
