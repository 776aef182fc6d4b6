"""The GraphStore conformance suite: every graph backend passes it unedited.

Backends are opened the way a run opens them, by registry name with
:class:`~runtime.memory.registry.StoreSettings`. Here the suite runs against
``networkx`` on a temporary folder; ``tests/integration/test_neo4j_live.py`` runs the
same tests against a Neo4j server (when one is given), by overriding the ``backend`` and
``graph`` fixtures. Every test keeps to namespaces of its own :class:`Space`, so a shared
server's other data never matters.

The tests at the end are the networkx backend's own (its file, its cache).
"""

from __future__ import annotations

import json
import os
import sqlite3
import sys
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import anyio
import pytest

from runtime.memory.graph.nx import APPLICATION_ID, SCHEMA_VERSION, NetworkxGraph
from runtime.memory.protocols import GraphStore
from runtime.memory.records import Entity, MemoryStoreError, Namespace, Relation
from runtime.memory.registry import StoreSettings, open_store

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[2]
#: how a subprocess gets a backend's password: never on its command line
PASSWORD_ENV = "KILN_TEST_GRAPH_PASSWORD"

#: names that must reach every store as data and come back unchanged
HOSTILE = (
    'O\'Brien "the" `quoted`',
    "}) DETACH DELETE n //",
    "'); DROP TABLE entities; --",
    "Zoë Ångström 東京",
    "$namespace {key: 'x'}",
)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@dataclass(frozen=True, slots=True)
class Backend:
    """A graph backend by registry name, and what it is opened with."""

    name: str
    settings: StoreSettings

    def open(self) -> GraphStore:
        return cast(GraphStore, open_store("graph", self.name, self.settings))

    def spec(self) -> dict[str, Any]:
        """The settings a subprocess needs, without the password."""
        s = self.settings
        return {
            "backend": self.name,
            "root": str(s.root),
            "path": None if s.path is None else str(s.path),
            "uri": s.uri,
            "user": s.user,
        }


@dataclass(frozen=True, slots=True)
class Space:
    """Namespace keys unique to one test: its own policy name."""

    policy: str

    def __call__(self, tenant: str = "alice", owner: str = "") -> str:
        if owner:
            return Namespace(policy=self.policy, tenant=tenant, scope="agent", owner=owner).key
        return Namespace(policy=self.policy, tenant=tenant, scope="user", owner=tenant).key

    def owns(self, key: str) -> bool:
        return key.startswith(f"{self.policy}/")


@pytest.fixture(params=["networkx"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    return Backend(request.param, StoreSettings(root=tmp_path / "memory"))


@pytest.fixture
def space() -> Space:
    return Space(f"conformance-{uuid.uuid4().hex[:12]}")


@pytest.fixture
async def graph(backend: Backend) -> AsyncIterator[GraphStore]:
    store = backend.open()
    try:
        yield store
    finally:
        await store.close()


def rel(source: str, relation: str, target: str, ts: float = 0.0, agent: str = "") -> Relation:
    return Relation(source=source, relation=relation, target=target, ts=ts, agent=agent)


def triples(relations: Sequence[Relation]) -> list[tuple[str, str, str]]:
    return [(r.source, r.relation, r.target) for r in relations]


# --- merging ---------------------------------------------------------------------------


async def test_the_store_is_a_graph_store(graph: GraphStore) -> None:
    assert isinstance(graph, GraphStore)


async def test_entities_merge_by_normalised_name(graph: GraphStore, space: Space) -> None:
    ns = space()
    await graph.merge(ns, [Entity(name="The Eiffel Tower", type="landmark")], [])
    await graph.merge(
        ns,
        [Entity(name="eiffel-tower"), Entity(name="EIFFEL TOWER.")],
        [rel("eiffel tower", "is in", "Paris")],
    )
    assert await graph.counts(ns) == (2, 1)
    # the first display name stays, whatever spelling later merges use
    found = await graph.neighbourhood(ns, ["Eiffel Tower"])
    assert triples(found) == [("The Eiffel Tower", "is_in", "Paris")]
    assert await graph.match(ns, "Is the eiffel tower tall?") == ["The Eiffel Tower"]


async def test_a_relation_merged_again_is_counted_not_duplicated(
    graph: GraphStore, space: Space
) -> None:
    ns = space()
    await graph.merge(ns, [], [rel("Ana", "lives in", "Porto", ts=100.0, agent="a1")])
    await graph.merge(ns, [], [rel("ana", "LIVES_IN", "porto", ts=300.0, agent="a2")])
    await graph.merge(ns, [], [rel("Ana.", "lives-in", "Porto", ts=200.0, agent="a3")])
    assert await graph.counts(ns) == (2, 1)
    (only,) = await graph.neighbourhood(ns, ["Ana"])
    assert (only.source, only.relation, only.target) == ("Ana", "lives_in", "Porto")
    assert only.ts == 300.0  # the latest assertion's time, whatever order they came in
    assert only.agent == "a3"  # who asserted it last
    # another relation between the same two is another edge
    await graph.merge(ns, [], [rel("Ana", "was born in", "Porto")])
    assert await graph.counts(ns) == (2, 2)


async def test_a_relation_creates_its_ends_and_unstamped_ones_get_now(
    graph: GraphStore, space: Space
) -> None:
    ns = space()
    await graph.merge(ns, [], [rel("Rex", "is a", "dog")])
    assert await graph.counts(ns) == (2, 1)
    (only,) = await graph.neighbourhood(ns, ["dog"])
    assert only.ts > 1_000_000_000  # stamped at merge time


async def test_names_that_normalise_to_nothing_are_dropped(graph: GraphStore, space: Space) -> None:
    ns = space()
    await graph.merge(ns, [], [])
    await graph.merge(
        ns,
        [Entity(name=""), Entity(name=" -- "), Entity(name="Lisbon")],
        [rel("", "near", "Lisbon"), rel("Lisbon", "...", "Porto"), rel("Lisbon", "near", "!")],
    )
    assert await graph.counts(ns) == (1, 0)


async def test_hostile_names_are_data(graph: GraphStore, space: Space) -> None:
    ns = space()
    await graph.merge(
        ns, [Entity(name=name) for name in HOSTILE], [rel(HOSTILE[0], "knows", HOSTILE[1])]
    )
    await graph.merge(ns, [], [rel(HOSTILE[2], "it's `odd`", HOSTILE[3])])
    assert await graph.counts(ns) == (len(HOSTILE), 2)
    found = await graph.neighbourhood(ns, list(HOSTILE))
    assert sorted(triples(found)) == sorted(
        [(HOSTILE[0], "knows", HOSTILE[1]), (HOSTILE[2], "it_s_odd", HOSTILE[3])]
    )
    assert await graph.match(ns, f"about {HOSTILE[3]} today") == [HOSTILE[3]]
    assert await graph.delete(ns, [HOSTILE[1]]) == 1
    assert await graph.counts(ns) == (len(HOSTILE) - 1, 1)


# --- reading -----------------------------------------------------------------------------


async def chain(graph: GraphStore, ns: str) -> None:
    """E -> A -> B -> C -> D, and F alone."""
    await graph.merge(
        ns,
        [Entity(name="F")],
        [
            rel("A", "r1", "B", ts=10.0),
            rel("B", "r2", "C", ts=20.0),
            rel("C", "r3", "D", ts=30.0),
            rel("E", "r4", "A", ts=40.0),
        ],
    )


async def test_neighbourhood_grows_with_depth(graph: GraphStore, space: Space) -> None:
    ns = space()
    await chain(graph, ns)
    one = await graph.neighbourhood(ns, ["A"], depth=1)
    assert sorted(triples(one)) == [("A", "r1", "B"), ("E", "r4", "A")]
    two = await graph.neighbourhood(ns, ["a"], depth=2)
    assert len(two) == 3
    assert sorted(triples(two[:2])) == sorted(triples(one))  # nearest first
    assert triples(two[2:]) == [("B", "r2", "C")]
    three = await graph.neighbourhood(ns, ["A"], depth=3)
    assert triples(three[3:]) == [("C", "r3", "D")]
    assert len(await graph.neighbourhood(ns, ["A"], depth=9)) == 4


async def test_neighbourhood_within_a_hop_is_most_recent_first(
    graph: GraphStore, space: Space
) -> None:
    ns = space()
    await chain(graph, ns)
    one = await graph.neighbourhood(ns, ["A"], depth=1)
    assert triples(one) == [("E", "r4", "A"), ("A", "r1", "B")]


async def test_neighbourhood_stops_at_limit(graph: GraphStore, space: Space) -> None:
    ns = space()
    await chain(graph, ns)
    assert len(await graph.neighbourhood(ns, ["A"], depth=3, limit=2)) == 2
    assert triples(await graph.neighbourhood(ns, ["A"], depth=3, limit=1)) == [("E", "r4", "A")]
    assert triples((await graph.neighbourhood(ns, ["A"], depth=3, limit=3))[2:]) == [
        ("B", "r2", "C")
    ]


async def test_neighbourhood_of_several_names_and_edge_cases(
    graph: GraphStore, space: Space
) -> None:
    ns = space()
    await chain(graph, ns)
    # both ends of r2 are seeds: it comes once
    both = await graph.neighbourhood(ns, ["B", "C", "b"], depth=1)
    assert sorted(triples(both)) == [("A", "r1", "B"), ("B", "r2", "C"), ("C", "r3", "D")]
    assert await graph.neighbourhood(ns, ["F"]) == []
    assert await graph.neighbourhood(ns, ["nobody"]) == []
    assert await graph.neighbourhood(ns, []) == []
    assert await graph.neighbourhood(ns, ["A"], depth=0) == []
    assert await graph.neighbourhood(ns, ["A"], limit=0) == []


async def test_a_hub_is_cut_at_limit(graph: GraphStore, space: Space) -> None:
    ns = space()
    await graph.merge(
        ns, [], [rel("Hub", "links", f"leaf {i}", ts=float(i + 1)) for i in range(300)]
    )
    found = await graph.neighbourhood(ns, ["hub"], depth=2, limit=50)
    assert len(found) == 50
    assert [r.ts for r in found] == [float(i) for i in range(300, 250, -1)]


async def test_match_finds_known_names_as_whole_words(graph: GraphStore, space: Space) -> None:
    ns = space()
    await graph.merge(
        ns,
        [
            Entity(name="Paris"),
            Entity(name="The Eiffel Tower"),
            Entity(name="New York"),
            Entity(name="New York City"),
            Entity(name="York"),
            Entity(name="Par"),
            Entity(name="Ana"),
        ],
        [],
    )
    text = "Ana flew from NEW YORK CITY to paris, to see the Eiffel-Tower; then back to Paris."
    assert await graph.match(ns, text) == ["Ana", "New York City", "Paris", "The Eiffel Tower"]
    assert await graph.match(ns, "york and new york") == ["York", "New York"]
    assert await graph.match(ns, "Banana parsley") == []
    assert await graph.match(ns, "") == []


async def test_match_among_thousands_of_entities(graph: GraphStore, space: Space) -> None:
    ns = space()
    names = [f"Person {i} Of Place {i % 97}" for i in range(3000)]
    await graph.merge(ns, [Entity(name=n) for n in names], [])
    text = "Yesterday person 1234 of place 70 met Person 7 of Place 7 and person 12."
    assert await graph.match(ns, text) == ["Person 1234 Of Place 70", "Person 7 Of Place 7"]


# --- forgetting, counting ----------------------------------------------------------------


async def test_delete_names_takes_their_relations(graph: GraphStore, space: Space) -> None:
    ns = space()
    await chain(graph, ns)
    assert await graph.counts(ns) == (6, 4)
    assert await graph.delete(ns, ["b", "the B", "nobody"]) == 1
    assert await graph.counts(ns) == (5, 2)
    assert await graph.neighbourhood(ns, ["A"], depth=3) == [rel("E", "r4", "A", ts=40.0)]
    assert await graph.match(ns, "A and B") == ["A"]
    assert await graph.delete(ns, ["nobody"]) == 0
    assert await graph.delete(ns, []) == 0


async def test_delete_a_whole_namespace(graph: GraphStore, space: Space) -> None:
    ns, other = space("alice"), space("bob")
    await chain(graph, ns)
    await chain(graph, other)
    assert await graph.delete(ns) == 6
    assert await graph.counts(ns) == (0, 0)
    assert await graph.match(ns, "A B C") == []
    assert await graph.delete(ns) == 0
    namespaces = {k: v for k, v in (await graph.namespaces()).items() if space.owns(k)}
    assert namespaces == {other: 6}
    # and it can be filled again
    await graph.merge(ns, [], [rel("A", "r1", "B")])
    assert await graph.counts(ns) == (2, 1)


async def test_counts_and_namespaces(graph: GraphStore, space: Space) -> None:
    a, b = space("alice"), space("alice", owner="researcher")
    assert await graph.counts(a) == (0, 0)
    await chain(graph, a)
    await graph.merge(b, [Entity(name="Lisbon")], [])
    assert await graph.counts(a) == (6, 4)
    assert await graph.counts(b) == (1, 0)
    mine = {k: v for k, v in (await graph.namespaces()).items() if space.owns(k)}
    assert mine == {a: 6, b: 1}


async def test_tenants_never_see_each_other(graph: GraphStore, space: Space) -> None:
    alice, bob = space("alice"), space("bob")
    await graph.merge(
        alice, [Entity(name="Secret Project")], [rel("Alice", "works on", "Secret Project")]
    )
    assert await graph.match(bob, "Tell me about the Secret Project and Alice") == []
    assert await graph.neighbourhood(bob, ["Secret Project", "Alice"], depth=3) == []
    assert await graph.counts(bob) == (0, 0)
    assert await graph.delete(bob) == 0
    assert await graph.delete(bob, ["Secret Project"]) == 0
    # the same names in bob's namespace are bob's own nodes
    await graph.merge(bob, [], [rel("Alice", "works on", "Secret Project")])
    await graph.merge(bob, [], [rel("Alice", "works on", "Secret Project")])
    assert await graph.counts(alice) == (2, 1)
    assert await graph.counts(bob) == (2, 1)
    assert await graph.delete(bob) == 2
    assert await graph.match(alice, "the secret project") == ["Secret Project"]


# --- concurrency and durability ----------------------------------------------------------

WRITER = """
import json, os, sys
from pathlib import Path
import anyio
from runtime.memory.records import Relation
from runtime.memory.registry import StoreSettings, open_store

spec = json.loads(sys.argv[1])
settings = StoreSettings(
    root=Path(spec["root"]),
    path=None if spec["path"] is None else Path(spec["path"]),
    uri=spec["uri"],
    user=spec["user"],
    password=os.environ.get(spec["password_env"]),
)

async def main():
    store = open_store("graph", spec["backend"], settings)
    try:
        for source, relation, target in spec["relations"]:
            await store.merge(spec["namespace"], [], [Relation(
                source=source, relation=relation, target=target)])
    finally:
        await store.close()

anyio.run(main)
"""


async def write_in_subprocess(
    backend: Backend, namespace: str, relations: Sequence[tuple[str, str, str]]
) -> None:
    spec = {
        **backend.spec(),
        "password_env": PASSWORD_ENV,
        "namespace": namespace,
        "relations": list(relations),
    }
    env = {**os.environ, PASSWORD_ENV: backend.settings.password or ""}
    done = await anyio.run_process(
        [sys.executable, "-c", WRITER, json.dumps(spec)], cwd=ROOT, env=env, check=False
    )
    assert done.returncode == 0, done.stderr.decode()


def ring(start: int, count: int, size: int = 60) -> list[tuple[str, str, str]]:
    return [
        (f"node {i % size}", "next", f"node {(i + 1) % size}") for i in range(start, start + count)
    ]


async def test_data_survives_a_process_restart(backend: Backend, space: Space) -> None:
    ns = space()
    await write_in_subprocess(
        backend, ns, [("Ana", "lives in", "Porto"), ("Ana", "works at", "Acme")]
    )
    store = backend.open()
    try:
        assert await store.counts(ns) == (3, 2)
        assert await store.match(ns, "Where does Ana work?") == ["Ana"]
        found = await store.neighbourhood(ns, ["Ana"])
        assert sorted(triples(found)) == [("Ana", "lives_in", "Porto"), ("Ana", "works_at", "Acme")]
    finally:
        await store.close()


async def test_concurrent_merges_from_many_tasks_are_exact(graph: GraphStore, space: Space) -> None:
    ns = space()

    async def writer(start: int) -> None:
        for source, relation, target in ring(start, 15):
            await graph.merge(ns, [Entity(name=source)], [rel(source, relation, target)])

    async with anyio.create_task_group() as tg:
        for start in range(0, 60, 3):  # 20 writers, overlapping stretches of one ring
            tg.start_soon(writer, start)
    assert await graph.counts(ns) == (60, 60)
    assert len(await graph.neighbourhood(ns, ["node 0"], depth=30, limit=500)) == 60


async def test_concurrent_processes_write_one_store_exactly(backend: Backend, space: Space) -> None:
    ns = space()
    async with anyio.create_task_group() as tg:
        for start in (0, 20, 40, 10):
            tg.start_soon(write_in_subprocess, backend, ns, ring(start, 30))
    store = backend.open()
    try:
        assert await store.counts(ns) == (60, 60)
    finally:
        await store.close()


async def test_two_stores_on_one_place_see_each_others_writes(
    backend: Backend, space: Space
) -> None:
    ns = space()
    first, second = backend.open(), backend.open()
    try:
        await first.merge(ns, [], [rel("Ana", "lives in", "Porto")])
        assert await second.match(ns, "ana") == ["Ana"]  # second loads it now
        await first.merge(ns, [], [rel("Ana", "works at", "Acme")])
        assert len(await second.neighbourhood(ns, ["Ana"])) == 2
        await second.merge(ns, [], [rel("Tom", "knows", "Ana")])
        assert await first.counts(ns) == (4, 3)
        assert await first.match(ns, "tom and ana") == ["Tom", "Ana"]
        assert await second.delete(ns, ["Porto"]) == 1
        assert await first.match(ns, "porto") == []
        assert len(await first.neighbourhood(ns, ["Ana"])) == 2
        # writes in both at once
        async with anyio.create_task_group() as tg:
            for store, start in ((first, 0), (second, 30), (first, 15), (second, 45)):
                tg.start_soon(merge_ring, store, ns, start)
        assert await first.counts(ns) == await second.counts(ns) == (60 + 3, 60 + 2)
    finally:
        await first.close()
        await second.close()


async def merge_ring(store: GraphStore, ns: str, start: int) -> None:
    for source, relation, target in ring(start, 20):
        await store.merge(ns, [], [rel(source, relation, target)])


async def test_close_twice_is_fine(backend: Backend) -> None:
    store = backend.open()
    await store.close()
    await store.close()


# --- the networkx backend's own ------------------------------------------------------------


async def test_networkx_file_comes_from_the_settings(tmp_path: Path) -> None:
    assert NetworkxGraph.from_settings(StoreSettings(root=tmp_path)).path == tmp_path / "graph.db"
    own = tmp_path / "own" / "g.sqlite"
    assert NetworkxGraph.from_settings(StoreSettings(root=tmp_path, path=own)).path == own
    folder = tmp_path / "folder"
    folder.mkdir()
    settings = StoreSettings(root=tmp_path, path=folder)
    assert NetworkxGraph.from_settings(settings).path == folder / "graph.db"
    store = open_store("graph", "networkx", StoreSettings(root=tmp_path / "deep" / "er"))
    assert isinstance(store, NetworkxGraph)
    await store.merge("n", [Entity(name="x")], [])
    await store.close()
    assert (tmp_path / "deep" / "er" / "graph.db").is_file()


async def test_networkx_file_is_plain_sqlite(tmp_path: Path) -> None:
    store = NetworkxGraph(tmp_path / "g.db")
    await store.merge("ns", [], [rel("Ana", "lives in", "Porto")])
    await store.merge("ns", [], [rel("Ana", "lives in", "Porto")])
    await store.close()
    with sqlite3.connect(tmp_path / "g.db") as db:
        rows = db.execute(
            "SELECT source_key, relation, target_key, count FROM relations"
        ).fetchall()
    db.close()
    assert rows == [("ana", "lives_in", "porto", 2)]


async def test_networkx_evicts_namespaces_beyond_max_loaded(tmp_path: Path) -> None:
    store = NetworkxGraph(tmp_path / "g.db", max_loaded=2)
    try:
        for i in range(5):
            await store.merge(f"ns{i}", [], [rel(f"a{i}", "to", f"b{i}")])
        for _ in range(2):
            for i in range(5):
                assert await store.match(f"ns{i}", f"a{i}") == [f"a{i}"]
                await store.merge(f"ns{i}", [], [rel(f"a{i}", "to", f"c{i}")])
        for i in range(5):
            assert await store.counts(f"ns{i}") == (3, 2)
            assert len(await store.neighbourhood(f"ns{i}", [f"a{i}"])) == 2
    finally:
        await store.close()


async def test_networkx_refuses_calls_once_closed(tmp_path: Path) -> None:
    store = NetworkxGraph(tmp_path / "g.db")
    await store.close()
    with pytest.raises(MemoryStoreError, match="closed"):
        await store.counts("ns")


async def test_networkx_store_that_cannot_be_opened_says_where(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    store = NetworkxGraph(blocker / "graph.db")
    with pytest.raises(MemoryStoreError, match="file") as caught:
        await store.counts("ns")
    assert caught.value.retryable is False
    await store.close()


def stamp(path: Path) -> tuple[int, int]:
    """(application_id, user_version) of the SQLite file at ``path``."""
    with closing(sqlite3.connect(path)) as db:
        (application_id,) = db.execute("PRAGMA application_id").fetchone()
        (version,) = db.execute("PRAGMA user_version").fetchone()
    return int(application_id), int(version)


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file in ``folder``, byte for byte."""
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


async def test_networkx_file_says_it_is_a_kiln_graph_store(tmp_path: Path) -> None:
    store = NetworkxGraph(tmp_path / "g.db")
    await store.counts("ns")
    await store.close()
    assert stamp(tmp_path / "g.db") == (APPLICATION_ID, SCHEMA_VERSION)
    assert APPLICATION_ID.to_bytes(4, "big") == b"ksgr"


FOREIGN = {
    "other tables": ["CREATE TABLE people (name TEXT)", "INSERT INTO people VALUES ('ana')"],
    # the name of one of the store's tables, not its columns
    "an entities table": [
        "CREATE TABLE entities (id INTEGER PRIMARY KEY, label TEXT)",
        "INSERT INTO entities (label) VALUES ('x')",
    ],
    "the store's tables and one more": [
        "CREATE TABLE entities (namespace, key, name, type, updated)",
        "CREATE TABLE relations (namespace, source_key, relation, target_key, agent, run_id,"
        " ts, count)",
        "CREATE TABLE versions (namespace, version)",
        "CREATE TABLE people (name TEXT)",
    ],
    "another application's id": ["PRAGMA application_id = 1234"],
    "the short-term store's id": [f"PRAGMA application_id = {0x6B737473}"],  # "ksts"
}


@pytest.mark.parametrize("statements", FOREIGN.values(), ids=FOREIGN.keys())
async def test_networkx_refuses_a_foreign_database_and_leaves_it_as_it_is(
    tmp_path: Path, statements: list[str]
) -> None:
    path = tmp_path / "app.db"
    with closing(sqlite3.connect(path)) as db:
        for statement in statements:
            db.execute(statement)
        db.commit()
    before = snapshot(tmp_path)
    store = NetworkxGraph(path)
    try:
        for _ in range(2):  # and again: a refused file is checked anew, never half-made
            with pytest.raises(MemoryStoreError) as caught:
                await store.merge("ns", [], [rel("Ana", "lives in", "Porto")])
            message = str(caught.value)
            assert message.startswith(f"{path} is not a kiln graph store (a SQLite database")
            assert "left as it is" in message and "policy's graph another path" in message
            assert caught.value.retryable is False
    finally:
        await store.close()
    assert snapshot(tmp_path) == before  # byte for byte, and no journal beside it


@pytest.mark.parametrize(
    "content", [b"this is not a database at all\n" * 100, b"hello", b"\x00garbage" * 512]
)
async def test_networkx_refuses_a_file_that_is_not_sqlite(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "graph.db"
    path.write_bytes(content)
    store = NetworkxGraph(path)
    try:
        with pytest.raises(MemoryStoreError) as caught:
            await store.counts("ns")
    finally:
        await store.close()
    assert str(caught.value) == (
        f"{path} is not a kiln graph store (not a SQLite database); it was left as it is: "
        "give the policy's graph another path"
    )
    assert snapshot(tmp_path) == {"graph.db": content}


async def test_networkx_refuses_a_graph_store_from_a_newer_kiln(tmp_path: Path) -> None:
    path = tmp_path / "graph.db"
    with closing(sqlite3.connect(path)) as db:
        db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    before = snapshot(tmp_path)
    store = NetworkxGraph(path)
    with pytest.raises(MemoryStoreError, match="newer than this kiln understands"):
        await store.counts("ns")
    await store.close()
    assert snapshot(tmp_path) == before


#: the schema graph.db files were written with before the header was stamped
UNSTAMPED_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS entities (
        namespace TEXT NOT NULL,
        key TEXT NOT NULL,
        name TEXT NOT NULL,
        type TEXT NOT NULL,
        updated REAL NOT NULL,
        PRIMARY KEY (namespace, key)
    ) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS relations (
        namespace TEXT NOT NULL,
        source_key TEXT NOT NULL,
        relation TEXT NOT NULL,
        target_key TEXT NOT NULL,
        agent TEXT NOT NULL,
        run_id TEXT NOT NULL,
        ts REAL NOT NULL,
        count INTEGER NOT NULL,
        PRIMARY KEY (namespace, source_key, relation, target_key)
    ) WITHOUT ROWID""",
    "CREATE INDEX IF NOT EXISTS relations_by_target ON relations (namespace, target_key)",
    """CREATE TABLE IF NOT EXISTS versions (
        namespace TEXT PRIMARY KEY,
        version INTEGER NOT NULL
    ) WITHOUT ROWID""",
)


async def test_networkx_opens_a_graph_store_written_before_the_header(tmp_path: Path) -> None:
    path = tmp_path / "graph.db"
    with closing(sqlite3.connect(path, isolation_level=None)) as db:
        db.execute("PRAGMA journal_mode = WAL")
        for statement in UNSTAMPED_SCHEMA:
            db.execute(statement)
        db.execute("INSERT INTO entities VALUES ('ns', 'ana', 'Ana', 'person', 1.0)")
        db.execute("INSERT INTO entities VALUES ('ns', 'porto', 'Porto', 'thing', 1.0)")
        db.execute(
            "INSERT INTO relations VALUES ('ns', 'ana', 'lives_in', 'porto', 'a1', 'r1', 5.0, 2)"
        )
        db.execute("INSERT INTO versions VALUES ('ns', 3)")
    assert stamp(path) == (0, 0)
    store = NetworkxGraph(path)
    try:
        assert await store.counts("ns") == (2, 1)
        assert await store.match("ns", "where is ana?") == ["Ana"]
        assert await store.neighbourhood("ns", ["Ana"]) == [
            Relation(
                source="Ana", relation="lives_in", target="Porto", agent="a1", run_id="r1", ts=5.0
            )
        ]
        await store.merge("ns", [], [rel("Ana", "works at", "Acme")])
        assert await store.counts("ns") == (3, 2)
    finally:
        await store.close()
    assert stamp(path) == (APPLICATION_ID, SCHEMA_VERSION)
    # and it opens as a stamped one from then on
    again = NetworkxGraph(path)
    try:
        assert await again.counts("ns") == (3, 2)
    finally:
        await again.close()
