"""Episodic memory over the trace store: episodes from events, search by meaning with time,
status, session and tenant filters, sync, re-indexing, reopening, embedders, foreign files."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Awaitable, Callable, Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import anyio
import pytest

from runtime.embed import get_embedder
from runtime.events import EventBus
from runtime.memory.episodes import MAX_STEPS, Episode, episodes_from_events
from runtime.memory.episodic import SCHEMA_VERSION, EpisodicStore
from runtime.memory.records import DEFAULT_TENANT, MemoryStoreError
from runtime.run import execute, prepare
from runtime.trace import TraceStore
from tests.helpers import WriteSpecs
from tests.runtime_kit import agent as agent_spec

T = TypeVar("T")
HOUR = 3600.0
T0 = 1_700_000_000.0
ROOT = Path(__file__).resolve().parents[2]


def run(fn: Callable[[], Awaitable[T]]) -> T:
    return anyio.run(fn)


@dataclass(frozen=True)
class Topic:
    question: str
    tool: str | None
    tool_input: dict[str, Any] | None
    tool_output: Any
    answer: str


TOPICS = {
    "math": Topic(
        "What is 12 times 7?",
        "calculator",
        {"expression": "12*7"},
        {"result": 84},
        "12 times 7 is 84",
    ),
    "weather": Topic(
        "Will it rain in Paris tomorrow?",
        "http_get",
        {"url": "https://weather.example/paris"},
        {"forecast": "rain, 14C"},
        "Yes, rain is forecast in Paris",
    ),
    "bees": Topic(
        "Summarise how honey bees communicate",
        "web_search",
        {"query": "honey bee waggle dance"},
        ["waggle dance", "round dance"],
        "Honey bees communicate by the waggle dance",
    ),
    "translate": Topic(
        "Translate 'good morning' into French",
        None,
        None,
        None,
        "Bonjour",
    ),
    "invoice": Topic(
        "Total the invoice lines 19.99 and 5.01",
        "calculator",
        {"expression": "19.99 + 5.01"},
        {"result": 25.0},
        "The invoice total is 25.00",
    ),
}


def record(
    trace: TraceStore,
    run_id: str,
    topic: Topic,
    *,
    started: float,
    agent: str = "helper",
    user: str | None = None,
    session: str | None = None,
    status: str = "succeeded",
    finish: bool = True,
) -> EventBus:
    """Record an agent run the way ``runtime.run`` and the executor do; the bus goes on
    numbering the run's events when ``finish`` is false."""
    inputs = {"question": topic.question}
    target = f"Agent/{agent}"
    trace.start_run(run_id, target=target, kind="agent", inputs=inputs, started=started)
    bus = EventBus(run_id, [trace.sink(run_id)])
    who: dict[str, Any] = {k: v for k, v in (("user", user), ("session", session)) if v}
    models = {agent: ["scripted"]}
    bus.emit(
        "run.start", ts=started, target=target, kind="agent", inputs=inputs, models=models, **who
    )
    usage = {"prompt_tokens": 10, "completion_tokens": 5}
    bus.emit("agent.thought", step=1, agent=agent, text="think", usage=usage, model="scripted")
    if topic.tool is not None:
        bus.emit(
            "agent.action",
            step=1,
            agent=agent,
            tool=topic.tool,
            input=topic.tool_input,
            call_id="call_1",
        )
        bus.emit(
            "tool.result",
            step=1,
            agent=agent,
            duration_ms=3.0,
            tool=topic.tool,
            call_id="call_1",
            status="ok",
            output=topic.tool_output,
        )
    if not finish:
        trace.flush()
        return bus
    finish_run(trace, bus, run_id, topic, status=status, ended=started + 5)
    return bus


def finish_run(
    trace: TraceStore, bus: EventBus, run_id: str, topic: Topic, *, status: str, ended: float
) -> None:
    output = topic.answer if status == "succeeded" else None
    error = None if status == "succeeded" else f"{status}: the model gave up"
    if status == "succeeded":
        bus.emit(
            "agent.answer",
            step=2,
            agent="helper",
            accepted=True,
            output=output,
            usage={},
            iterations=2,
        )
    else:
        bus.emit("run.error", status=status, error=error, limit=None)
    bus.emit("run.complete", duration_ms=5000.0, status=status, output=output, usage={})
    trace.finish_run(run_id, status=status, ended=ended, output=output, error=error, usage={})


# 30 runs: (run id, topic, tenant, session, status), an hour apart in this order.
# Cycles of coprime lengths (7 statuses, 3 users, 5 topics): each user has every status
# and every topic.
STATUSES = (
    "succeeded",
    "succeeded",
    "failed",
    "succeeded",
    "limit_exceeded",
    "cancelled",
    "succeeded",
)
USERS = ("alice", "bob", None)
CORPUS = [
    (
        f"run-{i:02d}",
        list(TOPICS)[i % len(TOPICS)],
        USERS[i % 3],
        f"s{i % 2}",
        STATUSES[i % len(STATUSES)],
    )
    for i in range(30)
]


def tenant_of(user: str | None) -> str:
    return user or DEFAULT_TENANT


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / ".kiln" / "runs.db"


@pytest.fixture
def recorded(db: Path) -> Path:
    with TraceStore(db) as trace:
        for i, (run_id, topic, user, session, status) in enumerate(CORPUS):
            record(
                trace,
                run_id,
                TOPICS[topic],
                started=T0 + i * HOUR,
                user=user,
                session=session,
                status=status,
            )
    return db


@pytest.fixture
def synced(recorded: Path) -> Iterator[EpisodicStore]:
    store = EpisodicStore(recorded)
    try:
        assert run(store.sync) == len(CORPUS)
        yield store
    finally:
        run(store.close)


def ids(results: list[tuple[Episode, float]]) -> list[str]:
    return [e.run_id for e, _ in results]


def search(store: EpisodicStore, **kwargs: Any) -> list[tuple[Episode, float]]:
    kwargs.setdefault("agent", "helper")

    async def go() -> list[tuple[Episode, float]]:
        return await store.search(**kwargs)

    return run(go)


def corpus_ids(*, topic: str | None = None, user: str | None = "", **match: Any) -> set[str]:
    out = set()
    for i, (run_id, t, u, s, status) in enumerate(CORPUS):
        row = {"session": s, "status": status, "started": T0 + i * HOUR}
        if topic not in (None, t) or user != "" and u != user:
            continue
        if all(row[k] == v for k, v in match.items()):
            out.add(run_id)
    return out


# -- episodes from events --------------------------------------------------------------------


def test_an_agent_run_becomes_one_episode_with_steps_outcome_and_text(db: Path) -> None:
    with TraceStore(db) as trace:
        record(trace, "r1", TOPICS["math"], started=T0, user="alice", session="chat-9")
        episodes = episodes_from_events(trace.get_run("r1"), trace.events("r1"))
    [episode] = episodes
    assert (episode.run_id, episode.agent, episode.target) == ("r1", "helper", "Agent/helper")
    assert (episode.tenant, episode.session, episode.status) == ("alice", "chat-9", "succeeded")
    assert (episode.started, episode.ended) == (T0, T0 + 5)
    assert episode.inputs == {"question": "What is 12 times 7?"}
    assert episode.steps == ('called calculator({"expression": "12*7"}) → {"result": 84}',)
    assert episode.outcome == "12 times 7 is 84"
    assert episode.text.splitlines() == [
        "question: What is 12 times 7?",
        'steps: called calculator({"expression": "12*7"}) → {"result": 84}',
        "outcome (succeeded): 12 times 7 is 84",
    ]
    assert episode.as_json()["steps"] == list(episode.steps)
    assert json.loads(json.dumps(episode.as_json()))["tenant"] == "alice"


def test_a_failed_run_without_user_is_the_default_tenants_and_says_its_error(db: Path) -> None:
    with TraceStore(db) as trace:
        record(trace, "r1", TOPICS["translate"], started=T0, status="failed")
        [episode] = episodes_from_events(trace.get_run("r1"), trace.events("r1"))
    assert (episode.tenant, episode.session, episode.steps) == (DEFAULT_TENANT, None, ())
    assert episode.outcome == "error: failed: the model gave up"
    assert "outcome (failed): error: failed: the model gave up" in episode.text


def test_an_agent_runs_message_comes_from_its_memory_query_never_what_was_recalled(
    db: Path,
) -> None:
    message = "Book a table for two at the harbour restaurant on Friday"
    with TraceStore(db) as trace:
        trace.start_run("r1", target="Agent/helper", kind="agent", inputs={}, started=T0)
        bus = EventBus("r1", [trace.sink("r1")])
        bus.emit("run.start", target="Agent/helper", kind="agent", inputs={}, models={})
        recalled = [{"store": "episodic", "text": "an older run about the opera"}]
        for policy in ("personal", "team"):  # two policies query with the same message
            bus.emit("memory.read", agent="helper", policy=policy, query=message, items=recalled)
        finish_run(trace, bus, "r1", TOPICS["translate"], status="succeeded", ended=T0 + 1)
        [episode] = episodes_from_events(trace.get_run("r1"), trace.events("r1"))
    assert episode.prompt == message
    assert episode.text.splitlines()[0] == message
    assert "opera" not in episode.text


def test_tool_errors_long_values_and_many_calls_are_kept_short(db: Path) -> None:
    with TraceStore(db) as trace:
        trace.start_run("r1", target="Agent/helper", kind="agent", inputs={}, started=T0)
        bus = EventBus("r1", [trace.sink("r1")])
        bus.emit("run.start", target="Agent/helper", kind="agent", inputs={}, models={})
        for n in range(MAX_STEPS + 3):
            bus.emit(
                "agent.action",
                step=n,
                agent="helper",
                tool="http_get",
                input={"url": "x" * 500},
                call_id=f"call_{n}",
            )
            bus.emit(
                "tool.result",
                step=n,
                agent="helper",
                tool="http_get",
                call_id=f"call_{n}",
                status="error",
                error="timed out after 5 s",
            )
        finish_run(trace, bus, "r1", TOPICS["math"], status="succeeded", ended=T0 + 1)
        [episode] = episodes_from_events(trace.get_run("r1"), trace.events("r1"))
    assert len(episode.steps) == MAX_STEPS
    assert episode.steps[-1] == "… and 4 more calls"
    assert episode.steps[0].endswith("…) → error: timed out after 5 s")
    assert all(len(step) < 300 for step in episode.steps)
    assert len(episode.text) <= 2000


def test_lone_surrogates_from_a_model_are_stored_and_found(db: Path) -> None:
    odd = Topic("Spell \ud800 the odd one", "echo", {"text": "\udcff"}, "\ud800!", "odd \ud800")

    async def main() -> list[tuple[Episode, float]]:
        with TraceStore(db) as trace:
            record(trace, "r1", odd, started=T0, user="alice\ud800")
        async with EpisodicStore(db) as store:
            await store.sync()
            return await store.search(agent="helper", tenant="alice\ud800", query="odd one")

    [(episode, score)] = run(main)
    assert episode.tenant == "alice\\ud800"  # as the trace store keeps such ids
    assert episode.outcome == "odd \\ud800" and score > 0
    assert episode.steps == ('called echo({"text": "\\udcff"}) → \\ud800!',)


def test_a_crew_run_gives_each_agent_an_episode_of_its_own_part(
    write_specs: WriteSpecs, tmp_path: Path, db: Path
) -> None:
    """A real crew run through the runtime, recorded by the real trace store."""
    crew = textwrap.dedent(
        """\
        apiVersion: kiln/v1
        kind: Crew
        metadata: {name: team}
        spec:
          process: sequential
          inputs: {topic: {type: string}}
          tasks:
            - {name: count, agent: counter, prompt: "Multiply the {{ inputs.topic }}"}
            - {name: write, agent: writer, prompt: "Write up {{ tasks.count.output }}"}
        """
    )
    folder = write_specs(
        **{"a.yaml": agent_spec("counter"), "b.yaml": agent_spec("writer"), "c.yaml": crew}
    )
    script = tmp_path / "crew.script.yaml"
    script.write_text(
        "count:\n"
        "  - {thought: t, tool: calculator, input: {expression: '6 * 7'}}\n"
        "  - {thought: done, final: '42 apples'}\n"
        "write:\n"
        "  - {thought: w, final: 'A report on 42 apples'}\n"
    )
    prepared = prepare(
        [folder], crew="team", inputs={"topic": "apples"}, model=f"scripted:{script}"
    )

    async def main() -> list[Episode]:
        with TraceStore(db) as trace:
            result = await execute(prepared, store=trace, run_id="crew-1")
            assert result.status == "succeeded"
        async with EpisodicStore(db) as store:
            return await store.index("crew-1")

    counter, writer = run(main)
    assert (counter.agent, writer.agent) == ("counter", "writer")
    assert counter.target == writer.target == "Crew/team"
    assert counter.prompt == "Multiply the apples"
    assert counter.steps == ('called calculator({"expression": "6 * 7"}) → {"result": 42}',)
    assert counter.outcome == "42 apples"
    assert (writer.prompt, writer.steps, writer.outcome) == (
        "Write up 42 apples",
        (),
        "A report on 42 apples",
    )
    assert counter.inputs == {"topic": "apples"} and counter.tenant == DEFAULT_TENANT


# -- search ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "topic"),
    [
        ("twelve times 7, i.e. 12 times 7", "math"),
        ("rain forecast for Paris", "weather"),
        ("how do bees dance", "bees"),
        ("French translation", "translate"),
        ("invoice total", "invoice"),
    ],
)
def test_search_by_meaning_finds_runs_about_the_query_first(
    synced: EpisodicStore, query: str, topic: str
) -> None:
    found = search(synced, tenant="alice", query=query, k=3)
    expected = corpus_ids(topic=topic, user="alice")
    assert found and found[0][0].run_id in expected
    assert found[0][1] > 0.1
    scores = [score for _, score in found]
    assert scores == sorted(scores, reverse=True)
    assert all(0.0 <= score <= 1.0 for score in scores)
    assert len(found) == 3  # k episodes even when fewer are relevant


def test_runs_on_the_topic_come_before_all_others(synced: EpisodicStore) -> None:
    found = search(synced, tenant="bob", query="What is 12 times 7?", k=10)
    math = corpus_ids(topic="math", user="bob")
    assert set(ids(found)[: len(math)]) == math
    assert min(s for e, s in found if e.run_id in math) > max(
        s for e, s in found if e.run_id not in math
    )


def test_equal_relevance_goes_newest_first(synced: EpisodicStore) -> None:
    found = search(synced, tenant="bob", query="the", k=30)  # a stopword: nothing to match
    assert {s for _, s in found} == {0.0}
    assert ids(found) == sorted(corpus_ids(user="bob"), reverse=True)


def test_a_time_window_keeps_runs_started_within_it(synced: EpisodicStore) -> None:
    since, until = T0 + 6 * HOUR, T0 + 18 * HOUR
    found = search(synced, tenant="alice", query="calculator", k=30, since=since, until=until)
    assert found
    assert all(since <= e.started < until for e, _ in found)
    in_window = {r for r in corpus_ids(user="alice") if since <= T0 + int(r[4:]) * HOUR < until}
    assert set(ids(found)) == in_window


def test_a_status_filter_takes_one_status_or_several(synced: EpisodicStore) -> None:
    failed = search(synced, tenant="bob", query="anything at all", k=30, status="failed")
    assert {e.status for e, _ in failed} == {"failed"}
    assert set(ids(failed)) == corpus_ids(user="bob", status="failed")
    several = search(synced, tenant="bob", query="x", k=30, status=["failed", "cancelled"])
    wanted = corpus_ids(user="bob", status="failed") | corpus_ids(user="bob", status="cancelled")
    assert set(ids(several)) == wanted
    assert search(synced, tenant="bob", query="x", k=30, status=[]) == []


def test_a_session_filter_keeps_that_conversation(synced: EpisodicStore) -> None:
    found = search(synced, tenant=DEFAULT_TENANT, query="bees", k=30, session="s1")
    assert set(ids(found)) == corpus_ids(user=None, session="s1")


def test_a_blank_query_gives_the_newest_episodes_with_relevance_zero(
    synced: EpisodicStore,
) -> None:
    found = search(synced, tenant="alice", query="   ", k=4)
    newest = sorted(corpus_ids(user="alice"), reverse=True)[:4]
    assert ids(found) == newest and {score for _, score in found} == {0.0}
    assert search(synced, tenant="alice", query="bees", k=0) == []

    async def recent() -> list[Episode]:
        return await synced.recent(agent="helper", tenant="alice", limit=4)

    assert [e.run_id for e in run(recent)] == newest


def test_one_tenant_never_sees_another_tenants_runs(synced: EpisodicStore) -> None:
    for user in USERS:
        tenant = tenant_of(user)
        own = corpus_ids(user=user)
        for topic in TOPICS.values():
            for query in (topic.question, topic.answer, "", "alice bob local"):
                found = search(synced, tenant=tenant, query=query, k=30)
                assert set(ids(found)) == own
                assert {e.tenant for e, _ in found} == {tenant}
    assert search(synced, tenant="mallory", query="12 times 7", k=30) == []
    assert search(synced, agent="other", tenant="alice", query="12 times 7") == []

    async def counts() -> tuple[int, int, int]:
        return (
            await synced.count(tenant="alice"),
            await synced.count(tenant="mallory"),
            await synced.count(),
        )

    assert run(counts) == (10, 0, 30)


# -- sync, re-indexing, deleting -------------------------------------------------------------


def test_sync_is_idempotent_and_picks_up_new_runs(recorded: Path) -> None:
    async def main() -> tuple[int, int, int, int, int]:
        async with EpisodicStore(recorded) as store:
            first, again = await store.sync(), await store.sync()
            with TraceStore(recorded) as trace:
                record(trace, "new-1", TOPICS["bees"], started=T0 + 99 * HOUR, user="alice")
                record(trace, "new-2", TOPICS["math"], started=T0 + 98 * HOUR, finish=False)
            later, total = await store.sync(), await store.count()
            return first, again, later, total, await store.sync()

    assert run(main) == (30, 0, 1, 31, 0)  # the running run waits for its end


def test_concurrent_syncs_index_each_run_once(recorded: Path) -> None:
    async def main() -> list[int]:
        done: list[int] = []

        async def sync(store: EpisodicStore) -> None:
            done.append(await store.sync())

        async with EpisodicStore(recorded) as one, EpisodicStore(recorded) as two:
            async with anyio.create_task_group() as tg:
                for store in (one, two, one, two):
                    tg.start_soon(sync, store)
            return [*done, await one.count()]

    *counts, total = run(main)
    assert sum(counts) == 30 and total == 30


def test_a_run_indexed_while_running_is_indexed_again_once_it_ends(db: Path) -> None:
    async def main() -> tuple[list[str], int, list[str]]:
        async with EpisodicStore(db) as store:
            with TraceStore(db) as trace:
                bus = record(trace, "r1", TOPICS["math"], started=T0, user="alice", finish=False)
                [early] = await store.index("r1")
                finish_run(trace, bus, "r1", TOPICS["math"], status="succeeded", ended=T0 + 9)
            synced = await store.sync()
            found = await store.search(agent="helper", tenant="alice", query="12 times 7")
            return [early.status, early.outcome], synced, [found[0][0].status, found[0][0].outcome]

    early, synced, late = run(main)
    assert early == ["running", ""]
    assert synced == 1
    assert late == ["succeeded", "12 times 7 is 84"]


def test_indexing_an_unknown_run_is_an_error(db: Path) -> None:
    async def main() -> None:
        async with EpisodicStore(db) as store:
            await store.index("nope")

    with pytest.raises(MemoryStoreError, match="no run 'nope' to index"):
        run(main)


def test_delete_forgets_episodes_and_sync_does_not_bring_them_back(
    synced: EpisodicStore,
) -> None:
    async def main() -> tuple[int, int, int, int, int]:
        gone = await synced.delete(tenant="bob")
        old = await synced.delete(before=T0 + 10 * HOUR)
        resynced = await synced.sync()
        return gone, old, resynced, await synced.count(tenant="bob"), await synced.count()

    bob = len(corpus_ids(user="bob"))
    early_others = len([r for r in corpus_ids(user="") if int(r[4:]) < 10]) - 3  # 3 were bob's
    assert run(main) == (bob, early_others, 0, 0, 30 - bob - early_others)


# -- files, processes, embedders -------------------------------------------------------------


def test_the_trace_store_keeps_working_on_the_shared_file(db: Path) -> None:
    def table_sql() -> dict[str, str]:
        with closing(sqlite3.connect(db)) as conn:
            return dict(conn.execute("SELECT name, sql FROM sqlite_master"))

    async def main() -> None:
        with TraceStore(db) as trace:
            async with EpisodicStore(db) as store:
                record(trace, "r1", TOPICS["math"], started=T0, user="alice")
                await store.sync()
                record(trace, "r2", TOPICS["bees"], started=T0 + 1, user="alice")  # after
                await store.index("r2")
            record(trace, "r3", TOPICS["weather"], started=T0 + 2)

    with TraceStore(db):
        pass
    before = table_sql()
    run(main)
    after = table_sql()
    assert {name: after[name] for name in before} == before  # the trace's schema untouched
    assert {"episodes", "episode_runs", "episodic_meta"} <= set(after)
    with TraceStore(db) as trace:
        assert [r.id for r in trace.list_runs()] == ["r3", "r2", "r1"]
        assert [e.type for e in trace.events("r1")][0] == "run.start"
        assert trace.get_run("r2").output == TOPICS["bees"].answer
    with closing(sqlite3.connect(db)) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_episodes_survive_a_process_restart(recorded: Path) -> None:
    """Index and search in another process; this one finds the same without re-indexing."""
    script = textwrap.dedent(
        """
        import anyio, json, sys
        from runtime.memory.episodic import EpisodicStore

        async def main():
            async with EpisodicStore(sys.argv[1]) as store:
                count = await store.sync()
                found = await store.search(agent="helper", tenant="bob", query="bees dance")
                print(json.dumps([count, [[e.run_id, s] for e, s in found]]))

        anyio.run(main)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(recorded)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    count, there = json.loads(done.stdout)
    assert count == 30

    async def main() -> tuple[int, list[list[Any]]]:
        async with EpisodicStore(recorded) as store:
            found = await store.search(agent="helper", tenant="bob", query="bees dance")
            return await store.sync(), [[e.run_id, s] for e, s in found]

    again, here = run(main)
    assert again == 0
    assert [r for r, _ in here] == [r for r, _ in there]
    assert [s for _, s in here] == pytest.approx([s for _, s in there])


def test_rows_of_another_embedder_are_re_embedded_never_compared(recorded: Path) -> None:
    def embedders() -> set[tuple[str, int, int]]:
        with closing(sqlite3.connect(recorded)) as conn:
            rows = conn.execute("SELECT embedder, dim, length(vector) FROM episodes")
            return set(rows)

    async def with_embedder(spec: str, tenant: str) -> list[tuple[Episode, float]]:
        async with EpisodicStore(recorded, get_embedder(spec)) as store:
            await store.sync()
            return await store.search(agent="helper", tenant=tenant, query="12 times 7")

    run(lambda: with_embedder("hashing", "nobody"))
    assert embedders() == {("hashing-v1-384", 384, 384 * 4)}
    small = run(lambda: with_embedder("hashing/128", "alice"))
    assert small[0][0].run_id in corpus_ids(topic="math", user="alice") and small[0][1] > 0.3
    # Only the searched scope (alice's) was re-embedded; the rest waits for its own search.
    assert embedders() == {("hashing-v1-384", 384, 1536), ("hashing-v1-128", 128, 512)}
    again = run(lambda: with_embedder("hashing/128", "alice"))
    assert [(e.run_id, s) for e, s in again] == [(e.run_id, s) for e, s in small]
    back = run(lambda: with_embedder("hashing", "alice"))
    assert back[0][0].run_id == small[0][0].run_id


def test_a_foreign_sqlite_file_is_refused(tmp_path: Path) -> None:
    foreign = tmp_path / "app.db"
    with closing(sqlite3.connect(foreign)) as conn:
        conn.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
        conn.commit()
    with pytest.raises(MemoryStoreError, match="not a kiln trace store.*users"):
        EpisodicStore(foreign)
    with closing(sqlite3.connect(foreign)) as conn:  # and nothing was added to it
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master")]
    assert tables == ["users"]
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not a database at all" * 100)
    with pytest.raises(MemoryStoreError, match="not a kiln trace store"):
        EpisodicStore(garbage)


def test_a_newer_episodic_schema_is_refused_and_a_closed_store_says_so(db: Path) -> None:
    store = EpisodicStore(db)
    run(store.close)
    run(store.close)  # twice is harmless
    with pytest.raises(MemoryStoreError, match="closed"):
        run(store.sync)
    with closing(sqlite3.connect(db)) as conn:
        conn.execute("UPDATE episodic_meta SET value = ?", (str(SCHEMA_VERSION + 1),))
        conn.commit()
    with pytest.raises(MemoryStoreError, match="upgrade kiln"):
        EpisodicStore(db)


def test_concurrent_indexing_and_searching_on_one_store(recorded: Path) -> None:
    async def look(store: EpisodicStore, tenant: str) -> None:
        found = await store.search(agent="helper", tenant=tenant, query="bees")
        assert {e.tenant for e, _ in found} <= {tenant}

    async def main() -> tuple[int, int]:
        async with EpisodicStore(recorded) as store:
            async with anyio.create_task_group() as tg:
                for run_id, *_ in CORPUS:
                    tg.start_soon(store.index, run_id)
                    tg.start_soon(store.sync)
                for user in USERS:
                    tg.start_soon(look, store, tenant_of(user))
            return await store.count(), await store.sync()

    assert run(main) == (30, 0)


def test_importing_episodic_memory_leaves_numpy_unloaded() -> None:
    code = "import sys, runtime.memory.episodic; print('numpy' in sys.modules)"
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "False"
