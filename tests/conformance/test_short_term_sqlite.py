"""The SQLite short-term store's own tests: what only a file shared by processes has.

The ShortTermStore conformance suite (test_short_term_stores.py) runs against it too; these
are about other processes (a restart, appenders and compactors at once), other threads,
expiry across reopening, foreign files, a locked file and the file's layout.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import sys
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import anyio
import pytest

from runtime.memory.records import MemoryStoreError, Namespace, StoreUnavailable, Turn
from runtime.memory.registry import StoreSettings, backend_class, open_store
from runtime.memory.short_term.sqlite import (
    APPLICATION_ID,
    FILENAME,
    SCHEMA_VERSION,
    SWEEP_S,
    SqliteShortTerm,
)

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[2]
NS = Namespace(policy="chat", tenant="alice", scope="session", owner="s1").key
OTHER = Namespace(policy="chat", tenant="alice", scope="session", owner="s2").key

# One process's part: open the store, optionally wait at a barrier until every party has
# opened it (so the processes' work really overlaps), append, compact, read; print what
# compact and read returned, as JSON.
CLIENT = """
import json, sys, time
from pathlib import Path
import anyio
from runtime.memory.records import Turn
from runtime.memory.short_term.sqlite import SqliteShortTerm

spec = json.loads(sys.argv[1])

async def main():
    store = SqliteShortTerm(spec["path"])
    try:
        await store.namespaces()  # opens (or creates) the file
        if spec.get("barrier"):
            folder = Path(spec["barrier"])
            (folder / f"ready-{spec['party']}").touch()
            deadline = time.monotonic() + 30
            while len(list(folder.glob("ready-*"))) < spec["parties"]:
                if time.monotonic() > deadline:
                    raise SystemExit("the other processes never got ready")
                await anyio.sleep(0.002)
        ns = spec["namespace"]
        for batch in spec.get("append", []):
            turns = [Turn.from_json(t) for t in batch]
            await store.append(ns, turns, ttl_s=spec.get("ttl_s"))
        out = {}
        if "compact" in spec:
            head, replacement = spec["compact"]
            out["compacted"] = await store.compact(
                ns, head, [Turn.from_json(t) for t in replacement]
            )
        if spec.get("read"):
            out["window"] = [t.as_json() for t in await store.window(ns)]
        print(json.dumps(out))
    finally:
        await store.close()

anyio.run(main)
"""


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "memory" / FILENAME


@pytest.fixture
async def store(path: Path) -> AsyncIterator[SqliteShortTerm]:
    opened = SqliteShortTerm(path)
    try:
        yield opened
    finally:
        await opened.close()


def turns(*contents: str, role: str = "user") -> list[Turn]:
    return [Turn(role=role, content=c) for c in contents]  # type: ignore[arg-type]


def as_json(window: list[Turn]) -> list[dict[str, Any]]:
    return [t.as_json() for t in window]


async def client(path: Path, **spec: Any) -> dict[str, Any]:
    """Run :data:`CLIENT` in a new Python process on the store at ``path``."""
    done = await anyio.run_process(
        [sys.executable, "-c", CLIENT, json.dumps({"path": str(path), **spec})],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()
    result: dict[str, Any] = json.loads(done.stdout)
    return result


async def clients_at_once(path: Path, folder: Path, specs: list[dict[str, Any]]) -> list[Any]:
    """Run one :data:`CLIENT` a spec, all started together: each opens the store, then
    waits until every one has (a barrier of files in the empty ``folder``), so their work
    overlaps."""
    results: list[Any] = [None] * len(specs)

    async def one(i: int) -> None:
        barrier = {"barrier": str(folder), "party": i, "parties": len(specs)}
        results[i] = await client(path, **barrier, **specs[i])

    with anyio.fail_after(60):
        async with anyio.create_task_group() as tg:
            for i in range(len(specs)):
                tg.start_soon(one, i)
    return results


def raw(path: Path, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    """Rows of ``sql`` read from the file directly, with the sqlite3 module."""
    db = sqlite3.connect(path)
    try:
        return db.execute(sql, params).fetchall()
    finally:
        db.close()


def write_file(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class Clock:
    """A wall clock the test moves."""

    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


# --- where the file is -----------------------------------------------------------------------


async def test_the_file_comes_from_the_settings(tmp_path: Path) -> None:
    assert backend_class("short_term", "sqlite") is SqliteShortTerm
    default = SqliteShortTerm.from_settings(StoreSettings(root=tmp_path))
    assert default.path == tmp_path / FILENAME
    own = tmp_path / "own" / "chat.sqlite"
    assert SqliteShortTerm.from_settings(StoreSettings(root=tmp_path, path=own)).path == own
    folder = tmp_path / "folder"
    folder.mkdir()
    settings = StoreSettings(root=tmp_path, path=folder)
    assert SqliteShortTerm.from_settings(settings).path == folder / FILENAME

    deep = tmp_path / "deep" / "er"
    store = open_store("short_term", "sqlite", StoreSettings(root=deep))
    assert isinstance(store, SqliteShortTerm)
    assert not deep.exists()  # nothing is created before the first call
    try:
        await store.append(NS, turns("hi"))
    finally:
        await store.close()
    assert (deep / FILENAME).is_file()


async def test_the_file_is_plain_sqlite(store: SqliteShortTerm, path: Path) -> None:
    window = turns("a", "b")
    await store.append(NS, window, ttl_s=60)
    await store.close()
    assert raw(path, "PRAGMA application_id") == [(APPLICATION_ID,)]
    assert raw(path, "PRAGMA user_version") == [(SCHEMA_VERSION,)]
    assert raw(path, "PRAGMA journal_mode") == [("wal",)]
    rows = raw(path, "SELECT namespace, seq, id, body FROM turns ORDER BY seq")
    assert [(ns, seq, bytes(i).decode()) for ns, seq, i, _ in rows] == [
        (NS, 1, window[0].id),
        (NS, 2, window[1].id),
    ]
    assert [json.loads(body) for *_, body in rows] == as_json(window)
    ((namespace, expires),) = raw(path, "SELECT namespace, expires FROM windows")
    assert namespace == NS and expires > 0


# --- other processes ----------------------------------------------------------------------------


async def test_data_survives_a_process_restart(path: Path) -> None:
    written = [
        Turn(role="user", content='quotes " and \\ and\nnew lines', agent="bot", ts=1.5),
        Turn(role="assistant", content="héllo 🌍 中文 \ud800 lone surrogate", ts=1e9 + 0.123),
        Turn(role="summary", content="", agent="a-b.c"),
    ]
    await client(path, namespace=NS, append=[as_json(written)], ttl_s=3600)
    store = SqliteShortTerm(path)
    try:
        assert await store.window(NS) == written
        assert await store.namespaces() == [NS]
        later = turns("after", "the", "restart")
        await store.append(NS, later)
    finally:
        await store.close()
    # and back: another process reads what this one wrote
    read = await client(path, namespace=NS, read=True)
    assert [Turn.from_json(t) for t in read["window"]] == written + later


async def test_two_processes_appending_at_once_lose_nothing(path: Path, tmp_path: Path) -> None:
    each = 200
    specs = [
        {
            "namespace": NS,
            "append": [
                [Turn(id=f"{p}-{n}", role="user", content=str(n)).as_json()] for n in range(each)
            ],
        }
        for p in ("a", "b")
    ]
    await clients_at_once(path, tmp_path, specs)  # both also create the file at once
    store = SqliteShortTerm(path)
    try:
        window = await store.window(NS)
    finally:
        await store.close()
    assert len(window) == 2 * each
    assert {t.id for t in window} == {f"{p}-{n}" for p in "ab" for n in range(each)}
    for p in "ab":  # each process's turns in the order it appended them
        assert [t.content for t in window if t.id.startswith(f"{p}-")] == [
            str(n) for n in range(each)
        ]
    seqs = raw(path, "SELECT seq FROM turns WHERE namespace = ? ORDER BY seq", NS)
    assert [s for (s,) in seqs] == list(range(1, 2 * each + 1))


async def test_processes_racing_to_compact_one_head_have_one_winner(
    store: SqliteShortTerm, path: Path, tmp_path: Path
) -> None:
    window = turns(*(str(i) for i in range(10)))
    await store.append(NS, window)
    head = [t.id for t in window[:5]]
    specs = [
        {
            "namespace": NS,
            "compact": [head, [Turn(role="summary", content=f"summary {p}").as_json()]],
            "append": [[Turn(role="assistant", content=f"late {p}").as_json()]],
        }
        for p in range(4)
    ]
    results = await clients_at_once(path, tmp_path, specs)
    wins = [p for p, result in enumerate(results) if result["compacted"]]
    assert len(wins) == 1
    after = [t.content for t in await store.window(NS)]
    assert after[:6] == [f"summary {wins[0]}", *map(str, range(5, 10))]
    assert sorted(after[6:]) == [f"late {p}" for p in range(4)]  # appends kept, whatever order


async def test_threads_with_their_own_event_loops_share_one_store(
    store: SqliteShortTerm,
) -> None:
    threads, each = 4, 100
    errors: list[BaseException] = []

    async def appender(thread: int) -> None:
        for n in range(each):
            await store.append(NS, [Turn(id=f"{thread}-{n}", role="user", content=str(n))])

    def run(thread: int) -> None:
        try:
            anyio.run(appender, thread)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    def run_all() -> None:
        workers = [threading.Thread(target=run, args=(t,)) for t in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()

    await anyio.to_thread.run_sync(run_all)
    assert errors == []
    window = await store.window(NS)
    assert len(window) == threads * each
    for thread in range(threads):
        mine = [t.content for t in window if t.id.startswith(f"{thread}-")]
        assert mine == [str(n) for n in range(each)]


async def test_two_stores_on_one_file_see_each_others_writes(path: Path) -> None:
    first, second = SqliteShortTerm(path), SqliteShortTerm(path)
    try:
        window = turns("1", "2", "3")
        await first.append(NS, window)
        assert await second.window(NS) == window
        summary = turns("1 and 2", role="summary")
        assert await second.compact(NS, [t.id for t in window[:2]], summary)
        assert await first.compact(NS, [t.id for t in window[:2]], []) is False
        assert await first.window(NS) == summary + window[2:]
        assert await first.clear(NS) == 2
        assert await second.namespaces() == []
    finally:
        await first.close()
        await second.close()


# --- expiry -------------------------------------------------------------------------------------


async def test_expiry_holds_across_reopening(path: Path) -> None:
    clock = Clock()
    window = turns("a", "b")
    first = SqliteShortTerm(path, clock=clock)
    await first.append(NS, window[:1], ttl_s=10)
    await first.close()

    clock.now += 6
    second = SqliteShortTerm(path, clock=clock)
    await second.append(NS, window[1:])  # no ttl_s: the expiry stays at +10
    assert await second.window(NS) == window
    await second.close()

    clock.now += 4
    third = SqliteShortTerm(path, clock=clock)
    try:
        assert await third.namespaces() == []
        assert raw(path, "SELECT count(*) FROM turns") == [(2,)]  # not read yet: still there
        assert await third.window(NS) == []
        assert raw(path, "SELECT count(*) FROM turns") == [(0,)]  # deleted by the read
        assert raw(path, "SELECT count(*) FROM windows") == [(0,)]
        fresh = turns("new")
        await third.append(NS, fresh)  # a new window, without the old expiry
        clock.now += 1000
        assert await third.window(NS) == fresh
    finally:
        await third.close()


async def test_a_sliding_expiry_survives_reopening(path: Path) -> None:
    clock = Clock()
    window = turns("a", "b")
    first = SqliteShortTerm(path, clock=clock)
    await first.append(NS, window[:1], ttl_s=10)
    await first.close()
    clock.now += 8
    second = SqliteShortTerm(path, clock=clock)
    await second.append(NS, window[1:], ttl_s=10)  # now ends at +18
    await second.close()
    clock.now += 8
    third = SqliteShortTerm(path, clock=clock)
    try:
        assert await third.window(NS) == window
        clock.now += 2
        assert await third.window(NS) == []
    finally:
        await third.close()


async def test_expired_windows_nobody_reads_are_swept(path: Path) -> None:
    clock = Clock()
    first = SqliteShortTerm(path, clock=clock)
    await first.append(NS, turns("gone"), ttl_s=5)
    await first.append(OTHER, turns("kept"))
    await first.close()
    clock.now += 10
    second = SqliteShortTerm(path, clock=clock)
    try:
        third = Namespace(policy="chat", tenant="bob", scope="session", owner="s").key
        await second.append(third, turns("new"))  # a new connection's first append sweeps
        assert sorted(ns for (ns,) in raw(path, "SELECT namespace FROM windows")) == sorted(
            [OTHER, third]
        )
        assert raw(path, "SELECT count(*) FROM turns WHERE namespace = ?", NS) == [(0,)]
        # and then only every SWEEP_S
        await second.append(NS, turns("again"), ttl_s=1)
        clock.now += 2
        await second.append(OTHER, turns("more"))
        assert raw(path, "SELECT count(*) FROM turns WHERE namespace = ?", NS) == [(1,)]
        clock.now += SWEEP_S
        await second.append(OTHER, turns("more"))
        assert raw(path, "SELECT count(*) FROM turns WHERE namespace = ?", NS) == [(0,)]
    finally:
        await second.close()


# --- compaction's seq values ----------------------------------------------------------------


async def test_repeated_compactions_keep_the_order(store: SqliteShortTerm, path: Path) -> None:
    window = turns("1", "2", "3")
    await store.append(NS, window)
    head = [window[0]]
    for n in range(5):
        replacement = turns(f"s{n}a", f"s{n}b", role="summary")
        assert await store.compact(NS, [t.id for t in head], replacement)
        head = replacement
    late = turns("4")
    await store.append(NS, late)
    assert [t.content for t in await store.window(NS)] == ["s4a", "s4b", "2", "3", "4"]
    (low,) = raw(path, "SELECT min(seq) FROM turns")[0]
    assert low < 1
    # compacting everything away, then appending, starts a fresh window
    assert await store.compact(NS, [t.id for t in await store.window(NS)], [])
    assert await store.namespaces() == []
    await store.append(NS, late)
    assert await store.window(NS) == late


# --- files that are not ours --------------------------------------------------------------------


def all_calls(store: SqliteShortTerm) -> dict[str, Callable[[], Any]]:
    return {
        "append": lambda: store.append(NS, turns("x"), ttl_s=5),
        "window": lambda: store.window(NS),
        "compact": lambda: store.compact(NS, ["x"], []),
        "clear": lambda: store.clear(NS),
        "namespaces": lambda: store.namespaces(),
    }


async def assert_refused(path: Path, *, match: str) -> None:
    before = digest(path)
    siblings = sorted(p.name for p in path.parent.iterdir())
    store = SqliteShortTerm(path)
    try:
        for name, call in all_calls(store).items():
            with pytest.raises(MemoryStoreError, match=match) as caught:
                await call()
            assert not isinstance(caught.value, StoreUnavailable), name
            assert caught.value.retryable is False, name
            assert str(path) in str(caught.value), name
    finally:
        await store.close()
    assert digest(path) == before
    assert sorted(p.name for p in path.parent.iterdir()) == siblings  # no -wal, no -journal


async def test_a_file_that_is_not_sqlite_is_refused_untouched(path: Path) -> None:
    write_file(path, b"- my notes\n- not a database at all\n" * 100)
    await assert_refused(path, match="not a SQLite database")
    tiny = path.parent / "tiny.db"
    write_file(tiny, b"hello")
    await assert_refused(tiny, match="not a SQLite database")


async def test_a_database_of_something_else_is_refused_untouched(path: Path) -> None:
    path.parent.mkdir(parents=True)
    db = sqlite3.connect(path)
    try:
        db.execute("CREATE TABLE notes (text TEXT)")
        db.execute("INSERT INTO notes VALUES ('precious')")
        db.commit()
    finally:
        db.close()
    await assert_refused(path, match="other tables: notes")
    assert raw(path, "PRAGMA journal_mode") == [("delete",)]
    assert raw(path, "SELECT text FROM notes") == [("precious",)]

    marked = path.parent / "marked.db"
    db = sqlite3.connect(marked)
    try:
        db.execute("PRAGMA application_id = 42")
        db.execute("PRAGMA user_version = 1")
    finally:
        db.close()
    await assert_refused(marked, match="another application")


async def test_a_newer_schema_is_refused(store: SqliteShortTerm, path: Path) -> None:
    await store.append(NS, turns("a"))
    await store.close()
    db = sqlite3.connect(path)
    try:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    finally:
        db.close()
    await assert_refused(path, match="newer than this kiln")


async def test_an_empty_file_becomes_a_store(path: Path) -> None:
    write_file(path, b"")
    store = SqliteShortTerm(path)
    try:
        await store.append(NS, turns("a"))
        assert len(await store.window(NS)) == 1
    finally:
        await store.close()


async def test_a_turn_that_is_not_json_is_named(store: SqliteShortTerm, path: Path) -> None:
    await store.append(NS, turns("a"))
    db = sqlite3.connect(path)
    try:
        db.execute("UPDATE turns SET body = x'7b6e6f'")  # "{no"
        db.commit()
    finally:
        db.close()
    with pytest.raises(MemoryStoreError, match="not a turn") as caught:
        await store.window(NS)
    assert str(path) in str(caught.value)


# --- locks, folders, closing ------------------------------------------------------------------


async def test_a_locked_file_is_retryable_and_reads_go_on(path: Path) -> None:
    store = SqliteShortTerm(path, timeout_s=0.2)
    window = turns("a")
    await store.append(NS, window)
    holder = sqlite3.connect(path, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")  # another process's long write transaction
        for name, call in all_calls(store).items():
            if name in ("window", "namespaces"):
                continue
            with pytest.raises(StoreUnavailable) as caught:
                await call()
            assert caught.value.retryable is True, name
            assert caught.value.code == "memory_unavailable"
            assert str(path) in str(caught.value), name
            assert "locked" in str(caught.value), name
        assert await store.window(NS) == window  # WAL: readers never wait for the writer
        assert await store.namespaces() == [NS]
        holder.execute("ROLLBACK")
        more = turns("b")
        await store.append(NS, more)  # the same store works again
        assert await store.window(NS) == window + more
    finally:
        holder.close()
        await store.close()


async def test_a_folder_that_cannot_be_made_says_where(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    store = SqliteShortTerm(blocker / "memory" / FILENAME)
    try:
        with pytest.raises(StoreUnavailable, match="file") as caught:
            await store.window(NS)
        assert caught.value.retryable is False
        assert str(blocker / "memory") in str(caught.value)
    finally:
        await store.close()


async def test_close_twice_is_fine_and_a_closed_store_reopens(path: Path) -> None:
    store = SqliteShortTerm(path)
    window = turns("a")
    await store.append(NS, window)
    await store.close()
    await store.close()
    try:
        assert await store.window(NS) == window  # as RedisShortTerm: the next call reopens
    finally:
        await store.close()
