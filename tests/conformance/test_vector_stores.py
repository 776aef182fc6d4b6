"""The VectorStore conformance suite: every backend passes it unedited.

Run against :class:`ChromaStore` in a temporary folder and :class:`ChromaServerStore` on a
real ``chroma run`` server (one for the session, see tests/conformance/chroma_server.py;
each test keeps its memories apart under a collection prefix of its own). Tests named
``test_embedded_*`` or ``test_server_*`` are about what only that backend has: a folder
reopened by another process, a server restarted or down.
"""

from __future__ import annotations

import itertools
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import pytest

from runtime.embed import Embedder, get_embedder
from runtime.memory.protocols import VectorStore
from runtime.memory.records import (
    EmbedderMismatch,
    Memory,
    MemoryStoreError,
    Namespace,
    StoreUnavailable,
)
from runtime.memory.registry import StoreSettings, open_store
from runtime.memory.vector import ChromaServerStore, ChromaStore
from runtime.memory.vector.chroma import NEVER, SCHEMA_VERSION, collection_name
from tests.conformance.chroma_server import ChromaServer, chroma_server, free_port  # noqa: F401

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[2]
HASHING = "hashing/384"


def key(tenant: str = "alice", owner: str = "researcher", policy: str = "notes") -> str:
    return Namespace(policy=policy, tenant=tenant, scope="agent", owner=owner).key


NS = key()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@dataclass(frozen=True, slots=True)
class Backend:
    name: str
    #: a new store over the same data each call (``hashing/384`` unless told otherwise)
    open: Callable[..., ChromaStore | ChromaServerStore]


@pytest.fixture(params=["embedded", "server"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "server":
        server: ChromaServer = request.getfixturevalue("chroma_server")
        prefix = f"t{uuid.uuid4().hex[:12]}"

        def remote(embedder: Embedder | None = None) -> ChromaServerStore:
            return ChromaServerStore(
                server.url, embedder or get_embedder(HASHING), collection=prefix
            )

        return Backend("server", remote)

    def embedded(embedder: Embedder | None = None) -> ChromaStore:
        return ChromaStore(tmp_path / "chroma", embedder or get_embedder(HASHING))

    return Backend("embedded", embedded)


@pytest.fixture
async def store(backend: Backend) -> AsyncIterator[VectorStore]:
    opened = backend.open()
    try:
        yield opened
    finally:
        await opened.close()


def memory(text: str, namespace: str = NS, **fields: Any) -> Memory:
    return Memory(text=text, namespace=namespace, **fields)


FACTS = (
    "The user prefers green tea in the morning",
    "Paris is the capital of France",
    "The quarterly report is due on Friday",
    "Invoices are stored in the finance folder",
)


# --- the protocol ---------------------------------------------------------------------


async def test_is_a_vector_store(store: VectorStore) -> None:
    assert isinstance(store, VectorStore)
    assert store.embedder_name == get_embedder(HASHING).name


async def test_a_query_sharing_words_with_a_memory_finds_it_first(store: VectorStore) -> None:
    await store.add(NS, [memory(text) for text in FACTS])
    for query, expected in [
        ("which tea does the user prefer", FACTS[0]),
        ("capital of France", FACTS[1]),
        ("when is the quarterly report due", FACTS[2]),
        ("where are invoices stored", FACTS[3]),
    ]:
        found = await store.search(NS, query, 2)
        assert found[0][0].text == expected, query
        assert found[0][1] > found[1][1]


async def test_search_gives_whole_memories_best_first_with_relevance(store: VectorStore) -> None:
    written = memory(
        "The deploy key lives in the vault",
        kind="fact",
        agent="ops",
        run_id="run-7",
        created_at=1_700_000_000.5,
        # chroma keeps 16 significant digits: a time with fewer round-trips exactly
        expires_at=round(time.time()) + 3600.25,
        importance=0.9,
        meta={"source": "wiki", "page": 12, "score": 0.25, "pinned": True},
    )
    await store.add(NS, [written, *(memory(text) for text in FACTS)])
    found = await store.search(NS, "The deploy key lives in the vault", 5)
    assert found[0][0] == written
    assert found[0][1] == pytest.approx(1.0, abs=1e-5)
    relevances = [r for _, r in found]
    assert relevances == sorted(relevances, reverse=True)
    assert all(0.0 <= r <= 1.0 for r in relevances)
    assert len(found) == 5


async def test_memories_that_never_expire_come_back_with_no_expiry(store: VectorStore) -> None:
    await store.add(NS, [memory("kept forever", expires_at=None)])
    [(found, _)] = await store.search(NS, "kept forever", 1)
    assert found.expires_at is None
    [listed] = await store.get(NS)
    assert listed.expires_at is None


async def test_k_limits_the_results(store: VectorStore) -> None:
    await store.add(NS, [memory(f"note {i} about the garden") for i in range(6)])
    assert len(await store.search(NS, "garden", 3)) == 3
    assert len(await store.search(NS, "garden", 50)) == 6


async def test_a_blank_query_or_no_k_finds_nothing(store: VectorStore) -> None:
    await store.add(NS, [memory(text) for text in FACTS])
    assert await store.search(NS, "", 5) == []
    assert await store.search(NS, "   \n", 5) == []
    assert await store.search(NS, "tea", 0) == []
    assert await store.search(NS, "tea", -1) == []


async def test_an_unknown_namespace_is_empty(store: VectorStore) -> None:
    other = key(owner="nobody")
    assert await store.search(other, "tea", 5) == []
    assert await store.get(other) == []
    assert await store.count(other) == 0
    assert await store.delete(other) == 0
    assert await store.delete(other, ids=["x"]) == 0
    assert await store.namespaces() == {}


async def test_adding_nothing_changes_nothing(store: VectorStore) -> None:
    await store.add(NS, [])
    assert await store.namespaces() == {}


async def test_re_adding_an_id_replaces_it(store: VectorStore) -> None:
    await store.add(NS, [memory("the meeting is on Monday", id="m1")])
    await store.add(NS, [memory("the meeting moved to Thursday", id="m1", kind="fact")])
    assert await store.count(NS) == 1
    [(found, _)] = await store.search(NS, "meeting", 5)
    assert (found.id, found.text, found.kind) == ("m1", "the meeting moved to Thursday", "fact")


async def test_an_id_twice_in_one_add_keeps_the_last(store: VectorStore) -> None:
    await store.add(NS, [memory("first", id="dup"), memory("second", id="dup")])
    assert [m.text for m in await store.get(NS)] == ["second"]


async def test_expired_memories_are_never_found(store: VectorStore) -> None:
    now = time.time()
    await store.add(
        NS,
        [
            memory("the old password was swordfish", id="gone", expires_at=now - 1),
            memory("the new password policy needs twelve characters", id="live",
                   expires_at=now + 3600),
        ],
    )  # fmt: skip
    found = await store.search(NS, "password", 5)
    assert [m.id for m, _ in found] == ["live"]
    # still stored until deleted: get and count see it
    assert await store.count(NS) == 2
    # expiry is judged at the caller's time when it gives one (a run's clock, a replay)
    earlier = await store.search(NS, "password", 5, now=now - 60)
    assert sorted(m.id for m, _ in earlier) == ["gone", "live"]
    later = await store.search(NS, "password", 5, now=now + 7200)
    assert later == []


async def test_many_expired_near_the_query_still_leave_k_live_ones(store: VectorStore) -> None:
    now = time.time()
    expired = [memory(f"password rotation note {i}", expires_at=now - 10) for i in range(12)]
    live = [memory(f"password policy {word}", id=word) for word in ("alpha", "beta", "gamma")]
    other = memory("an unrelated remark about sandwiches", id="lunch")
    await store.add(NS, [*expired, *live, other])
    found = await store.search(NS, "password rotation note", 3)
    assert sorted(m.id for m, _ in found) == ["alpha", "beta", "gamma"]
    assert len(await store.search(NS, "password rotation note", 10)) == 4


async def test_get_is_oldest_first_with_limit_and_offset(store: VectorStore) -> None:
    base = 1_700_000_000.0
    order = [3, 0, 4, 1, 2]  # added out of order: get sorts by created_at
    await store.add(NS, [memory(f"memory {i}", id=f"m{i}", created_at=base + i) for i in order])
    assert [m.id for m in await store.get(NS)] == ["m0", "m1", "m2", "m3", "m4"]
    assert [m.id for m in await store.get(NS, limit=2)] == ["m0", "m1"]
    assert [m.id for m in await store.get(NS, limit=2, offset=3)] == ["m3", "m4"]
    assert await store.get(NS, offset=5) == []
    assert await store.get(NS, limit=0) == []


async def test_delete_by_ids_counts_what_existed(store: VectorStore) -> None:
    await store.add(NS, [memory(f"memory {i}", id=f"m{i}") for i in range(4)])
    assert await store.delete(NS, ids=["m1", "m3", "missing", "m1"]) == 2
    assert sorted(m.id for m in await store.get(NS)) == ["m0", "m2"]
    assert await store.delete(NS, ids=[]) == 0
    assert await store.count(NS) == 2


async def test_delete_before_a_time(store: VectorStore) -> None:
    await store.add(NS, [memory(f"memory {i}", id=f"m{i}", created_at=100.0 + i) for i in range(5)])
    assert await store.delete(NS, before=102.0) == 2
    assert [m.id for m in await store.get(NS)] == ["m2", "m3", "m4"]


async def test_delete_expired_at_a_time(store: VectorStore) -> None:
    await store.add(
        NS,
        [
            memory("a", id="early", expires_at=100.0),
            memory("b", id="on-time", expires_at=200.0),
            memory("c", id="later", expires_at=300.0),
            memory("d", id="never"),
        ],
    )
    assert await store.delete(NS, expired_at=200.0) == 2
    assert sorted(m.id for m in await store.get(NS)) == ["later", "never"]


async def test_delete_criteria_add_up_without_counting_twice(store: VectorStore) -> None:
    await store.add(
        NS,
        [
            memory("a", id="old", created_at=10.0),
            memory("b", id="old-and-expired", created_at=10.0, expires_at=50.0),
            memory("c", id="named", created_at=500.0),
            memory("d", id="kept", created_at=500.0),
        ],
    )
    assert await store.delete(NS, ids=["named", "old"], before=100.0, expired_at=60.0) == 3
    assert [m.id for m in await store.get(NS)] == ["kept"]


async def test_delete_everything_forgets_the_namespace(store: VectorStore) -> None:
    other = key(owner="writer")
    await store.add(NS, [memory(text) for text in FACTS])
    await store.add(other, [memory("kept", namespace=other)])
    assert await store.delete(NS) == len(FACTS)
    assert await store.count(NS) == 0
    assert await store.search(NS, "tea", 5) == []
    assert await store.namespaces() == {other: 1}
    await store.add(NS, [memory("a fresh start")])  # the namespace can be written again
    assert await store.count(NS) == 1


async def test_namespaces_lists_each_with_its_count(store: VectorStore) -> None:
    names = [key(owner=f"agent-{i}") for i in range(3)]
    for i, name in enumerate(names):
        await store.add(name, [memory(f"memory {j}", namespace=name) for j in range(i + 1)])
    assert await store.namespaces() == {names[0]: 1, names[1]: 2, names[2]: 3}


async def test_memories_of_another_namespace_are_refused(store: VectorStore) -> None:
    with pytest.raises(ValueError, match="cannot be added"):
        await store.add(NS, [memory("stray", namespace=key(tenant="mallory"))])
    assert await store.namespaces() == {}


async def test_a_tenant_never_sees_another_tenants_memories(store: VectorStore) -> None:
    alice = key(tenant="alice")
    bob = key(tenant="bob")
    # a tenant id that tries to forge alice's key is escaped into a key of its own
    forger = Namespace(policy="notes", tenant="alice/agent:researcher", scope="agent",
                       owner="researcher").key  # fmt: skip
    await store.add(alice, [memory(text, namespace=alice) for text in FACTS])
    for other in (bob, forger):
        assert other != alice
        assert await store.search(other, "tea", 10) == []
        assert await store.search(other, FACTS[0], 10) == []
        assert await store.get(other) == []
        assert await store.count(other) == 0
        assert await store.delete(other) == 0
    await store.add(bob, [memory("bob's own note about tea", namespace=bob)])
    assert [m.text for m, _ in await store.search(bob, "tea", 10)] == ["bob's own note about tea"]
    assert all(m.namespace == alice for m, _ in await store.search(alice, "tea", 10))
    assert await store.namespaces() == {alice: len(FACTS), bob: 1}
    assert await store.count(alice) == len(FACTS)


async def test_another_client_sees_the_same_memories(backend: Backend) -> None:
    first, second = backend.open(), backend.open()
    try:
        await first.add(NS, [memory(text) for text in FACTS])
        assert await second.count(NS) == len(FACTS)
        assert (await second.search(NS, "capital of France", 1))[0][0].text == FACTS[1]
        assert await second.delete(NS) == len(FACTS)
        # the first client's handle on the dropped collection is reopened, not stale
        assert await first.count(NS) == 0
        await first.add(NS, [memory("again")])
        assert await second.count(NS) == 1
    finally:
        await first.close()
        await second.close()


# --- embedders ------------------------------------------------------------------------


async def test_another_embedder_is_refused_naming_both(backend: Backend) -> None:
    wide = backend.open(get_embedder("hashing/384"))
    await wide.add(NS, [memory(text) for text in FACTS])
    await wide.close()
    narrow = backend.open(get_embedder("hashing/128"))
    try:
        with pytest.raises(EmbedderMismatch) as refused:
            await narrow.search(NS, "tea", 3)
        assert "hashing-v1-384" in str(refused.value)
        assert "hashing-v1-128" in str(refused.value)
        assert refused.value.code == "embedder_mismatch"
        assert refused.value.retryable is False
        with pytest.raises(EmbedderMismatch):
            await narrow.add(NS, [memory("with the wrong vectors")])
        # text and metadata need no vectors: they can still be read (to move them) and cut
        assert len(await narrow.get(NS)) == len(FACTS)
        assert await narrow.count(NS) == len(FACTS)
        # a namespace it made itself is fine
        await narrow.add(key(owner="fresh"), [memory("new", namespace=key(owner="fresh"))])
    finally:
        await narrow.close()


async def test_a_failed_namespace_fails_every_caller_of_it_and_no_other(backend: Backend) -> None:
    wide = backend.open(get_embedder("hashing/384"))
    await wide.add(NS, [memory("made with 384 dimensions")])
    await wide.close()
    narrow = backend.open(get_embedder("hashing/128"))
    fine = key(owner="fine")
    outcomes: dict[str, list[str]] = {NS: [], fine: []}

    async def write(namespace: str, i: int) -> None:
        try:
            await narrow.add(namespace, [memory(f"note {i}", namespace=namespace)])
            outcomes[namespace].append("ok")
        except EmbedderMismatch:
            outcomes[namespace].append("refused")

    try:
        async with anyio.create_task_group() as group:
            for i in range(10):
                group.start_soon(write, NS, i)
                group.start_soon(write, fine, i)
        assert outcomes == {NS: ["refused"] * 10, fine: ["ok"] * 10}
        assert await narrow.count(fine) == 10
        assert await narrow.count(NS) == 1
    finally:
        await narrow.close()


# --- concurrency ----------------------------------------------------------------------


@pytest.fixture
def upserts(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """The size of every Chroma upsert made during the test."""
    from chromadb.api.models.Collection import Collection

    sizes: list[int] = []
    original = Collection.upsert

    def counted(self: Collection, **kwargs: Any) -> None:
        sizes.append(len(kwargs["ids"]))
        original(self, **kwargs)

    monkeypatch.setattr(Collection, "upsert", counted)
    yield sizes


async def test_concurrent_writers_lose_nothing_and_share_commits(
    store: VectorStore, upserts: list[int]
) -> None:
    writers, each = 20, 15

    async def write(w: int) -> None:
        for i in range(each):
            await store.add(NS, [memory(f"writer note w{w}x{i}", id=f"w{w}-{i}")])

    async with anyio.create_task_group() as group:
        for w in range(writers):
            group.start_soon(write, w)
    assert await store.count(NS) == writers * each
    listed = {m.id for m in await store.get(NS, limit=writers * each)}
    assert listed == {f"w{w}-{i}" for w in range(writers) for i in range(each)}
    assert sum(upserts) == writers * each
    assert len(upserts) < writers * each  # writes were grouped
    [(found, _)] = await store.search(NS, "w7x11", 1)
    assert found.id == "w7-11"


async def test_concurrent_writers_to_many_namespaces(store: VectorStore) -> None:
    names = [key(owner=f"agent-{i}") for i in range(8)]

    async def write(name: str, w: int) -> None:
        for i in range(5):
            await store.add(name, [memory(f"note {w}.{i}", namespace=name, id=f"{w}.{i}")])

    async with anyio.create_task_group() as group:
        for name, w in itertools.product(names, range(3)):
            group.start_soon(write, name, w)
    assert await store.namespaces() == {name: 15 for name in names}


async def test_an_add_cancelled_before_its_commit_writes_nothing(store: VectorStore) -> None:
    assert isinstance(store, ChromaStore | ChromaServerStore)
    async with store._commit_lock:  # as if a commit were running: the add waits its turn
        async with anyio.create_task_group() as group:
            group.start_soon(store.add, NS, [memory("never written", id="cancelled")])
            await anyio.wait_all_tasks_blocked()
            group.cancel_scope.cancel()
    await store.add(NS, [memory("written", id="kept")])
    assert [m.id for m in await store.get(NS)] == ["kept"]


async def test_a_batch_larger_than_chromas_limit_is_split(store: VectorStore) -> None:
    assert isinstance(store, ChromaStore | ChromaServerStore)
    store._max_batch = 7  # chroma's real limit is thousands: a small one shows the split
    await store.add(NS, [memory(f"note {i}", id=f"m{i}") for i in range(30)])
    assert await store.count(NS) == 30
    assert await store.delete(NS, ids=[f"m{i}" for i in range(20)]) == 20
    assert await store.count(NS) == 10


async def test_a_closed_store_refuses_calls(backend: Backend) -> None:
    opened = backend.open()
    await opened.add(NS, [memory("written before close")])
    await opened.close()
    await opened.close()  # twice is fine
    with pytest.raises(StoreUnavailable, match="closed"):
        await opened.count(NS)
    with pytest.raises(StoreUnavailable, match="closed"):
        await opened.add(NS, [memory("too late")])
    reopened = backend.open()
    try:
        assert await reopened.count(NS) == 1
    finally:
        await reopened.close()


# --- the embedded store ---------------------------------------------------------------


async def test_embedded_collections_are_namespace_slugs_with_their_embedder(
    tmp_path: Path,
) -> None:
    import chromadb
    from chromadb.api.client import Client

    namespace = Namespace(policy="notes", tenant="alice", scope="user", owner="alice")
    store = ChromaStore(tmp_path / "chroma", get_embedder(HASHING))
    await store.add(namespace.key, [memory("hello there", namespace=namespace.key)])
    await store.close()
    assert collection_name(namespace.key) == namespace.slug
    client = chromadb.PersistentClient(path=str(tmp_path / "chroma"))
    assert isinstance(client, Client)
    try:
        [found] = client.list_collections()
        assert found.name == namespace.slug
        assert found.metadata is not None
        assert found.metadata["kiln:namespace"] == namespace.key
        assert found.metadata["kiln:embedder"] == "hashing-v1-384"
        assert found.metadata["kiln:dim"] == 384
        assert found.metadata["kiln:schema"] == SCHEMA_VERSION
        assert found.configuration["hnsw"]["space"] == "cosine"  # type: ignore[index]
        record = found.get(include=["metadatas", "documents"])
        assert record["documents"] == ["hello there"]
        assert (record["metadatas"] or [{}])[0]["expires_at"] == NEVER
    finally:
        client.close()


async def test_embedded_collection_prefixes_keep_policies_apart(tmp_path: Path) -> None:
    embedder = get_embedder(HASHING)
    first = ChromaStore(tmp_path / "chroma", embedder, collection="research")
    second = ChromaStore(tmp_path / "chroma", embedder, collection="support team")
    plain = ChromaStore(tmp_path / "chroma", embedder)
    try:
        await first.add(NS, [memory("from research")])
        await second.add(NS, [memory("from support"), memory("and more")])
        assert await first.namespaces() == {NS: 1}
        assert await second.namespaces() == {NS: 2}
        assert await plain.namespaces() == {}
        assert [m.text for m in await first.get(NS)] == ["from research"]
        assert collection_name(NS, "support team").startswith("kiln-support-team-")
    finally:
        for each in (first, second, plain):
            await each.close()


async def test_embedded_data_survives_a_process_restart(tmp_path: Path) -> None:
    folder = tmp_path / "chroma"
    script = textwrap.dedent(
        """
        import sys

        import anyio

        from runtime.embed import get_embedder
        from runtime.memory.records import Memory
        from runtime.memory.vector import ChromaStore

        async def main() -> None:
            folder, namespace = sys.argv[1], sys.argv[2]
            store = ChromaStore(folder, get_embedder("hashing/384"))
            texts = ["the cat sleeps on the red sofa", "the invoice total was 420 euros"]
            await store.add(namespace, [
                Memory(id=f"m{i}", text=t, namespace=namespace, created_at=100.0 + i)
                for i, t in enumerate(texts)
            ])
            await store.close()

        anyio.run(main)
        """
    )
    with anyio.fail_after(120):
        written = await anyio.run_process(
            [sys.executable, "-c", script, str(folder), NS], cwd=ROOT, check=False
        )
    assert written.returncode == 0, written.stderr.decode()
    store = ChromaStore(folder, get_embedder(HASHING))
    try:
        assert await store.count(NS) == 2
        [(found, _)] = await store.search(NS, "red sofa", 1)
        assert found.id == "m0"
        assert [m.id for m in await store.get(NS)] == ["m0", "m1"]
    finally:
        await store.close()


async def test_embedded_from_settings_uses_the_root_or_the_path(tmp_path: Path) -> None:
    embedder = get_embedder(HASHING)
    by_root = open_store("vector", "chroma", StoreSettings(root=tmp_path, embedder=embedder))
    by_path = open_store(
        "vector",
        "chroma",
        StoreSettings(root=tmp_path, path=tmp_path / "own", collection="p", embedder=embedder),
    )
    assert isinstance(by_root, ChromaStore) and isinstance(by_path, ChromaStore)
    assert by_root.path == tmp_path / "chroma"
    assert by_path.path == tmp_path / "own"
    await by_path.add(NS, [memory("kept in its own folder")])
    assert await by_path.namespaces() == {NS: 1}
    assert await by_root.namespaces() == {}
    await by_root.close()
    await by_path.close()


async def test_embedded_store_defaults_to_the_projects_embedder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KILN_EMBEDDER", "hashing/64")
    store = ChromaStore.from_settings(StoreSettings(root=tmp_path))
    assert store.embedder_name == "hashing-v1-64"
    await store.close()


def test_importing_the_stores_imports_no_chromadb() -> None:
    probe = "import sys, runtime.memory.vector; print('chromadb' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"


# --- the server store -----------------------------------------------------------------


async def test_server_data_survives_a_server_restart(tmp_path: Path) -> None:
    with ChromaServer.started(tmp_path / "server") as server:
        store = ChromaServerStore(server.url, get_embedder(HASHING))
        try:
            await store.add(NS, [memory(text, id=f"m{i}") for i, text in enumerate(FACTS)])
            await anyio.to_thread.run_sync(server.stop)
            with pytest.raises(StoreUnavailable) as down:
                await store.count(NS)
            assert down.value.retryable is True
            assert server.url in str(down.value)
            await anyio.to_thread.run_sync(lambda: server.start(same_port=True))
            fresh = ChromaServerStore(server.url, get_embedder(HASHING))
            try:
                assert await fresh.count(NS) == len(FACTS)
                [(found, _)] = await fresh.search(NS, "capital of France", 1)
                assert found.id == "m1"
            finally:
                await fresh.close()
            # the client that saw the outage works again: retrying was the right advice
            assert await store.count(NS) == len(FACTS)
        finally:
            await store.close()


async def test_server_unreachable_is_retryable_and_names_the_url() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    store = ChromaServerStore(url, get_embedder(HASHING))
    try:
        for call in (
            lambda: store.count(NS),
            lambda: store.search(NS, "tea", 3),
            lambda: store.add(NS, [memory("lost")]),
            lambda: store.namespaces(),
        ):
            with pytest.raises(StoreUnavailable) as down:
                await call()
            assert down.value.retryable is True
            assert down.value.code == "memory_unavailable"
            assert url in str(down.value)
    finally:
        await store.close()


async def test_server_from_settings_needs_a_good_url() -> None:
    store = open_store(
        "vector",
        "chroma-server",
        StoreSettings(root=Path("."), url="http://127.0.0.1:9", collection="c"),
    )
    assert isinstance(store, ChromaServerStore)
    assert store.url == "http://127.0.0.1:9"
    await store.close()
    for url in (None, "", "ftp://host:1", "http://:80", "http://host:notaport"):
        with pytest.raises(StoreUnavailable) as refused:
            open_store("vector", "chroma-server", StoreSettings(root=Path("."), url=url))
        assert refused.value.retryable is False


async def test_errors_are_memory_store_errors(backend: Backend) -> None:
    opened = backend.open()
    try:
        with pytest.raises(MemoryStoreError):  # chroma refuses an empty id
            await opened.add(NS, [memory("no id", id="")])
    finally:
        await opened.close()


def test_the_public_api_is_pinned() -> None:
    import runtime.memory.vector as package
    import runtime.memory.vector.chroma as module

    assert package.__all__ == ["ChromaServerStore", "ChromaStore"]
    assert module.__all__ == [
        "NEVER",
        "SCHEMA_VERSION",
        "WRITE_CHUNK",
        "ChromaServerStore",
        "ChromaStore",
        "collection_name",
    ]
