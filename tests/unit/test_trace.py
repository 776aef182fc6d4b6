"""The SQLite trace store: runs and events round trip, lookups, batching, odd values, errors."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from runtime.events import Event, EventBus
from runtime.trace import FLUSH_EVERY, SCHEMA_VERSION, TraceError, TraceStore

STARTED = 1_700_000_000.0
USAGE = {"prompt_tokens": 1000, "completion_tokens": 234, "cost_usd": 0.0012, "cost_known": True}


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "nested" / "runs.db"  # the folder does not exist yet


@pytest.fixture
def store(db: Path) -> Iterator[TraceStore]:
    with TraceStore(db) as opened:
        yield opened


def start(store: TraceStore, run_id: str, started: float = STARTED, **extra: Any) -> None:
    fields: dict[str, Any] = {"target": "Agent/helper", "kind": "agent", "inputs": {"q": 1}}
    fields.update(extra)
    store.start_run(run_id, started=started, **fields)


def stored_events(db: Path, run_id: str) -> int:
    """Events committed to the file, counted through a connection of its own."""
    with closing(sqlite3.connect(db)) as conn:
        row = conn.execute("SELECT count(*) FROM events WHERE run_id = ?", (run_id,)).fetchone()
    return int(row[0])


def test_a_run_and_its_events_round_trip(store: TraceStore, db: Path) -> None:
    store.start_run(
        "run-1",
        target="Crew/research",
        kind="crew",
        inputs={"topic": "bees"},
        started=STARTED,
        plan_hash="sha256:abc",
        model="local/smollm2-135m",
    )
    bus = EventBus("run-1", [store.sink("run-1")])
    sent = [
        bus.emit("run.start", target="Crew/research", kind="crew", inputs={"topic": "bees"}),
        bus.emit("task.start", task="find", agent="researcher", prompt="Find bees"),
        bus.emit("agent.action", step=1, task="find", agent="researcher", tool="t", input={}),
        bus.emit("tool.result", step=1, duration_ms=12.5, task="find", tool="t", output="ok"),
        bus.emit("run.complete", status="succeeded", output={"summary": "bees"}, usage=USAGE),
    ]
    store.finish_run(
        "run-1", status="succeeded", ended=STARTED + 3.5, output={"summary": "bees"}, usage=USAGE
    )

    run = store.get_run("run-1")
    assert (run.id, run.target, run.kind, run.status) == (
        "run-1",
        "Crew/research",
        "crew",
        "succeeded",
    )
    assert (run.inputs, run.output, run.usage) == ({"topic": "bees"}, {"summary": "bees"}, USAGE)
    assert (run.plan_hash, run.model, run.error) == ("sha256:abc", "local/smollm2-135m", None)
    assert run.duration_s == pytest.approx(3.5)
    assert (run.tokens, run.cost_usd) == (1234, 0.0012)
    events = store.events("run-1")
    assert [e.as_json() for e in events] == [e.as_json() for e in sent]
    assert [e.seq for e in events] == [1, 2, 3, 4, 5]


def test_list_runs_newest_first_with_filters_and_limit(store: TraceStore) -> None:
    start(store, "old", STARTED, target="Agent/a")
    start(store, "mid", STARTED + 10, target="Agent/b")
    start(store, "new", STARTED + 20, target="Agent/a")
    store.finish_run("mid", status="failed", ended=STARTED + 11, error="boom")

    assert [r.id for r in store.list_runs()] == ["new", "mid", "old"]
    assert [r.id for r in store.list_runs(limit=2)] == ["new", "mid"]
    assert [r.id for r in store.list_runs(status="failed")] == ["mid"]
    assert [r.id for r in store.list_runs(target="Agent/a")] == ["new", "old"]
    assert store.list_runs(status="running", target="Agent/b") == []


def test_a_started_run_is_visible_as_running_at_once(store: TraceStore, db: Path) -> None:
    start(store, "crashy")
    # Another process (here: another store) sees it before the run ends, as a crash leaves it.
    with TraceStore(db) as other:
        run = other.get_run("crashy")
    assert (run.status, run.ended, run.duration_s, run.output) == ("running", None, None, None)


def test_a_unique_prefix_of_four_characters_finds_a_run(store: TraceStore) -> None:
    start(store, "3f2a9c10aaaa")
    start(store, "3f2b0000bbbb")
    assert store.get_run("3f2a").id == "3f2a9c10aaaa"
    assert store.get_run("3f2b0000bbbb").id == "3f2b0000bbbb"


def test_an_ambiguous_prefix_lists_the_candidates(store: TraceStore) -> None:
    start(store, "abcd1111")
    start(store, "abcd2222")
    with pytest.raises(TraceError, match="ambiguous") as caught:
        store.get_run("abcd")
    assert "abcd1111" in str(caught.value) and "abcd2222" in str(caught.value)


def test_unknown_and_too_short_ids_are_errors(store: TraceStore) -> None:
    start(store, "abcd1111")
    with pytest.raises(TraceError, match="no run 'zzzz'"):
        store.get_run("zzzz")
    with pytest.raises(TraceError, match="at least 4"):
        store.get_run("abc")


def test_events_are_written_in_batches_of_256(store: TraceStore, db: Path) -> None:
    start(store, "r")
    bus = EventBus("r", [store.sink("r")])
    for _ in range(FLUSH_EVERY - 1):
        bus.emit("agent.thought", text="…")
    assert stored_events(db, "r") == 0
    bus.emit("agent.thought", text="the 256th")
    assert stored_events(db, "r") == FLUSH_EVERY
    for _ in range(10):
        bus.emit("agent.thought", text="after")
    assert stored_events(db, "r") == FLUSH_EVERY
    store.finish_run("r", status="succeeded", ended=STARTED + 1)
    assert stored_events(db, "r") == FLUSH_EVERY + 10
    assert bus.dropped == []


def test_flush_writes_what_is_buffered_and_events_reads_it_too(store: TraceStore, db: Path) -> None:
    start(store, "r")
    sink = store.sink("r")
    sink(Event("agent.thought", "r", 1, 1, STARTED, data={"text": "a"}))
    assert [e.data for e in store.events("r")] == [{"text": "a"}]  # read your own writes
    sink(Event("agent.thought", "r", 2, 1, STARTED, data={"text": "b"}))
    store.flush()
    assert stored_events(db, "r") == 2


def test_the_buffer_is_shared_by_every_run(store: TraceStore, db: Path) -> None:
    sinks = {}
    for n in range(4):
        start(store, f"run{n}")
        sinks[n] = store.sink(f"run{n}")
    for seq in range(1, FLUSH_EVERY // 4 + 1):
        for n, sink in sinks.items():
            sink(Event("agent.thought", f"run{n}", seq, 1, STARTED))
    assert [stored_events(db, f"run{n}") for n in range(4)] == [FLUSH_EVERY // 4] * 4


class _Unrepresentable:
    def __repr__(self) -> str:
        raise RuntimeError("no repr")


def test_values_json_cannot_hold_are_stored_as_their_repr(store: TraceStore) -> None:
    circular: dict[str, Any] = {}
    circular["self"] = circular
    start(store, "r", inputs={"when": set, "blob": b"\x00\x01"})
    sink = store.sink("r")
    sink(Event("tool.result", "r", 1, 1, STARTED, data={"output": b"bytes", "obj": object()}))
    sink(Event("agent.thought", "r", 2, 1, STARTED, data={"loop": circular}))
    sink(Event("agent.thought", "r", 3, 1, STARTED, data={"bad": _Unrepresentable()}))
    tuple_keyed: dict[Any, Any] = {(1, 2): "tuple key"}
    sink(Event("agent.thought", "r", 4, 1, STARTED, data=tuple_keyed))
    store.finish_run("r", status="succeeded", ended=STARTED + 1, output={"set": {3}})

    run = store.get_run("r")
    assert run.inputs == {"when": "<class 'set'>", "blob": "b'\\x00\\x01'"}
    assert run.output == {"set": "{3}"}
    first, loop, bad, tuple_key = (e.data for e in store.events("r"))
    assert first["output"] == "b'bytes'" and first["obj"].startswith("<object object at")
    assert "unserialisable" in loop and "{...}" in loop["unserialisable"]
    assert bad == {"bad": "<unrepresentable _Unrepresentable>"}
    assert tuple_key == {"unserialisable": "{(1, 2): 'tuple key'}"}


def test_values_sqlite_cannot_bind_do_not_poison_the_batch(store: TraceStore) -> None:
    start(store, "r", target="Agent/\udc80odd")
    sink = store.sink("r")
    sink(Event("agent.thought", "r", 1, 1, STARTED, task="\udcff", data={"text": "\udc80"}))
    sink(Event("agent.thought", "r", 2, 2**70, STARTED, agent=42, data={}))  # type: ignore[arg-type]
    store.finish_run("r", status="failed", ended=STARTED + 1, error="lone \ud800 surrogate")
    first, second = store.events("r")
    assert (first.task, first.data) == ("\\udcff", {"text": "\udc80"})
    assert (second.step, second.agent) == (0, "42")
    run = store.get_run("r")
    assert (run.target, run.error) == ("Agent/\\udc80odd", "lone \\ud800 surrogate")


def test_a_file_that_is_not_a_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    path.write_bytes(b"this is not a database, just some text\n" * 200)
    with pytest.raises(TraceError) as caught:
        TraceStore(path)
    assert str(caught.value) == f"{path}: not a kiln trace store (file is not a database)"
    assert path.read_bytes().startswith(b"this is not")  # left as it was


def test_another_sqlite_database_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("CREATE TABLE users (name TEXT)")
        conn.commit()
    with pytest.raises(TraceError, match=r"not a kiln trace store .*other tables: users"):
        TraceStore(path)
    with closing(sqlite3.connect(path)) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"


def test_a_newer_schema_version_is_refused(db: Path) -> None:
    TraceStore(db).close()
    with closing(sqlite3.connect(db)) as conn:
        conn.execute(
            "UPDATE meta SET value = ? WHERE key = 'schema_version'", (SCHEMA_VERSION + 1,)
        )
        conn.commit()
    with pytest.raises(TraceError, match=f"schema version {SCHEMA_VERSION + 1} is newer"):
        TraceStore(db)


def test_the_store_is_in_wal_mode_with_its_schema_version(store: TraceStore, db: Path) -> None:
    with closing(sqlite3.connect(db)) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        version = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    assert version == (str(SCHEMA_VERSION),)


def test_two_stores_on_one_file_both_write(db: Path) -> None:
    with TraceStore(db) as first, TraceStore(db) as second:
        for n in range(50):
            writer = first if n % 2 else second
            start(writer, f"run{n}", STARTED + n)
            sink = writer.sink(f"run{n}")
            for seq in range(1, 11):
                sink(Event("agent.thought", f"run{n}", seq, 1, STARTED))
            writer.finish_run(f"run{n}", status="succeeded", ended=STARTED + n + 1)
        assert len(first.list_runs(limit=None)) == 50
        assert all(len(second.events(f"run{n}")) == 10 for n in range(50))


def test_stores_in_concurrent_threads_wait_for_each_other(db: Path) -> None:
    TraceStore(db).close()
    failures: list[BaseException] = []

    def write(worker: int) -> None:
        try:
            with TraceStore(db) as own:  # one store per thread: a connection is not shared
                for n in range(40):
                    run_id = f"w{worker}-{n}"
                    start(own, run_id)
                    sink = own.sink(run_id)
                    for seq in range(1, 31):
                        sink(Event("agent.thought", run_id, seq, 1, STARTED, data={"n": seq}))
                    own.finish_run(run_id, status="succeeded", ended=STARTED + 1)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            failures.append(exc)

    threads = [threading.Thread(target=write, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    with TraceStore(db) as reader:
        assert len(reader.list_runs(limit=None)) == 160
        assert len(reader.events("w3-39")) == 30


def test_a_lock_held_too_long_is_a_trace_error(store: TraceStore, db: Path) -> None:
    with closing(sqlite3.connect(db, isolation_level=None)) as holder:
        holder.execute("BEGIN IMMEDIATE")
        with TraceStore(db, timeout_s=0.05) as impatient:
            with pytest.raises(TraceError, match="stayed locked for more than 0.05 s"):
                start(impatient, "r")
        holder.execute("ROLLBACK")


def test_a_store_used_from_another_thread_says_so(store: TraceStore) -> None:
    caught: list[BaseException] = []
    thread = threading.Thread(target=lambda: _capture(caught, lambda: start(store, "r")))
    thread.start()
    thread.join()
    assert len(caught) == 1 and isinstance(caught[0], TraceError)
    assert "used from the thread that opened it only" in str(caught[0])


def _capture(caught: list[BaseException], call: Any) -> None:
    try:
        call()
    except BaseException as exc:  # noqa: BLE001 - inspected by the test
        caught.append(exc)


def test_a_folder_that_cannot_be_made_is_a_trace_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(TraceError, match="cannot create its folder"):
        TraceStore(blocker / "runs.db")


def test_finishing_an_unknown_run_keeps_the_buffered_events(store: TraceStore, db: Path) -> None:
    start(store, "real")
    store.sink("real")(Event("agent.thought", "real", 1, 1, STARTED))
    with pytest.raises(TraceError, match="never started"):
        store.finish_run("ghost", status="succeeded", ended=STARTED)
    assert stored_events(db, "real") == 0
    store.flush()
    assert stored_events(db, "real") == 1


def test_starting_a_run_twice_is_an_error(store: TraceStore) -> None:
    start(store, "r")
    with pytest.raises(TraceError, match="run r is already in the store"):
        start(store, "r")


def test_a_closed_store_says_so_and_closing_twice_is_harmless(db: Path) -> None:
    store = TraceStore(db)
    start(store, "r")
    store.sink("r")(Event("agent.thought", "r", 1, 1, STARTED))
    store.close()
    store.close()
    assert stored_events(db, "r") == 1  # close flushed the buffer
    with pytest.raises(TraceError, match="closed"):
        store.list_runs()
