"""Vector memory on ChromaDB: a folder on this machine (:class:`ChromaStore`) or a Chroma
server (:class:`ChromaServerStore`). Both implement
:class:`~runtime.memory.protocols.VectorStore` the same way; only the client differs.

Layout. One collection per namespace, named from a hash of the namespace key
(:attr:`~runtime.memory.records.Namespace.slug`; with a ``collection`` prefix, the prefix
is folded into the name and the hash), cosine space. A filtered query over one shared
collection measured p95 69 ms at 100k memories; one collection per namespace 1.8 ms. The
collection's metadata records the namespace key, the embedder's name and dimension and
:data:`SCHEMA_VERSION`: adding to or searching a collection made with another embedder
raises :class:`~runtime.memory.records.EmbedderMismatch` naming both. ``get``, ``count``
and ``delete`` read no vectors, so they work whatever the embedder: that is how memories
are moved to a new embedder (read them, add them to a store that embeds with it).

Records and collection metadata are laid out by :mod:`._chroma_records`.

Writes. The Chroma client is synchronous, so every call runs in a worker thread. A Chroma
write costs ~7 ms a call plus ~0.5 ms a memory (about 130 single adds a second, 1,500
memories a second in batches), so writes are group-committed: ``add`` calls that arrive
while a commit runs join the next batch, which the committing caller embeds and writes
with one upsert per collection. Each caller returns once its batch is written (a returned
``add`` is durable); an error writing a namespace is raised to every caller that wrote to
it in that batch. Writers that share a namespace share upserts; writers to different
namespaces still cost one upsert each (one collection each). The embedded client holds the
GIL while it writes, so writes go in chunks of :data:`WRITE_CHUNK` records, between which
the event loop runs.

Searches ask Chroma for twice ``k`` without a metadata filter and drop expired memories
themselves: a filter costs Chroma time in proportion to the whole database.

chromadb (and httpx) are imported on first use, never with this module.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TypeVar
from urllib.parse import urlsplit

import anyio
import anyio.to_thread

import runtime.memory.vector._chroma_records as rec
from runtime.memory.records import EmbedderMismatch, Memory, MemoryStoreError, StoreUnavailable
from runtime.memory.vector._chroma_records import NEVER as NEVER
from runtime.memory.vector._chroma_records import SCHEMA_VERSION as SCHEMA_VERSION
from runtime.memory.vector._chroma_records import collection_name as collection_name
from runtime.private import private_dir

if TYPE_CHECKING:
    from chromadb.api import ClientAPI
    from chromadb.api.models.Collection import Collection

    from runtime.embed import Embedder
    from runtime.memory.registry import StoreSettings

__all__ = [
    "NEVER",
    "SCHEMA_VERSION",
    "WRITE_CHUNK",
    "ChromaServerStore",
    "ChromaStore",
    "collection_name",
]

T = TypeVar("T")

#: Records per Chroma write. The embedded client holds the GIL while it writes (~0.6 ms a
#: record), stalling the event loop: 5,000 records in one call stalled it 3 s, in calls of
#: 128 at most ~150 ms, at the same throughput (the per-call cost is ~7 ms).
WRITE_CHUNK: Final = 128


def _again(error: BaseException) -> BaseException:
    """``error`` for one more caller of a failed batch: a fresh exception of the same kind,
    so callers in different tasks never share (and extend) one traceback."""
    if isinstance(error, MemoryStoreError):
        copy = type(error)(str(error), retryable=error.retryable)
        copy.__cause__ = error
        return copy
    return error


@dataclass(slots=True, eq=False)
class _Batch:
    """One group commit: the memories of every ``add`` that joined before it was sealed,
    namespace -> id -> memory; a re-added id replaces the earlier one."""

    rows: dict[str, dict[str, Memory]] = field(default_factory=dict)
    errors: dict[str, BaseException] = field(default_factory=dict)
    done: anyio.Event = field(default_factory=anyio.Event)


class _ChromaVectorStore:
    """What both stores share: everything but how the client is made."""

    def __init__(self, embedder: Embedder | None, *, collection: str | None, where: str) -> None:
        if embedder is None:
            from runtime.embed import get_embedder

            embedder = get_embedder(None)
        self._embedder = embedder
        self._prefix = collection or ""
        self._where = where
        self._client_lock = threading.Lock()
        self._client_value: ClientAPI | None = None
        self._closed = False
        self._max_batch: int | None = None
        #: namespace key -> its collection, once opened and checked
        self._collections: dict[str, Collection] = {}
        self._commit_lock = anyio.Lock()
        #: the batch that ``add`` calls join until a committer seals it
        self._open: _Batch | None = None

    # --- the client ------------------------------------------------------------------

    def _connect(self) -> ClientAPI:
        raise NotImplementedError

    def _client(self) -> ClientAPI:
        with self._client_lock:
            if self._closed:
                raise StoreUnavailable(
                    f"the vector store at {self._where} is closed", retryable=False
                )
            if self._client_value is None:
                self._client_value = self._connect()
            return self._client_value

    async def _run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``fn(*args, **kwargs)`` in a worker thread, its chromadb errors translated."""
        call = partial(fn, *args, **kwargs)
        return await anyio.to_thread.run_sync(partial(self._translating, call))

    def _translating(self, call: Callable[[], T]) -> T:
        with rec.translated(self._where):
            return call()

    def _batch_size(self) -> int:
        """Records per Chroma write: at most :data:`WRITE_CHUNK`, at most Chroma's limit."""
        if self._max_batch is None:
            limit = self._client().get_max_batch_size()
            self._max_batch = max(1, min(WRITE_CHUNK, limit))
        return self._max_batch

    # --- collections -----------------------------------------------------------------

    def _collection_metadata(self, namespace: str) -> dict[str, rec.Scalar]:
        return {
            "hnsw:space": "cosine",
            rec.KEY_SCHEMA: rec.SCHEMA_VERSION,
            rec.KEY_NAMESPACE: namespace,
            rec.KEY_PREFIX: self._prefix,
            rec.KEY_EMBEDDER: self._embedder.name,
            rec.KEY_DIM: self._embedder.dim,
        }

    def _collection(self, namespace: str, *, create: bool) -> Collection | None:
        """The collection of ``namespace`` (created when ``create``), checked to be ours;
        ``None`` when it does not exist and ``create`` is false."""
        found = self._collections.get(namespace)
        if found is not None:
            return found
        from chromadb.errors import NotFoundError

        client = self._client()
        name = rec.collection_name(namespace, self._prefix)
        if create:
            found = client.get_or_create_collection(
                name, metadata=self._collection_metadata(namespace), embedding_function=None
            )
        else:
            try:
                found = client.get_collection(name, embedding_function=None)
            except NotFoundError:
                return None
        metadata = found.metadata or {}
        if (
            metadata.get(rec.KEY_NAMESPACE) != namespace
            or metadata.get(rec.KEY_PREFIX, "") != self._prefix
        ):
            raise MemoryStoreError(
                f"the Chroma collection {name!r} at {self._where} does not hold the memories "
                f"of {namespace!r}: it was made by something else"
            )
        schema = metadata.get(rec.KEY_SCHEMA)
        if not isinstance(schema, int) or schema > rec.SCHEMA_VERSION:
            raise MemoryStoreError(
                f"the Chroma collection {name!r} at {self._where} has layout {schema!r}; "
                f"this agentkiln reads {rec.SCHEMA_VERSION}: upgrade agentkiln"
            )
        self._collections[namespace] = found
        return found

    def _check_embedder(self, namespace: str, found: Collection) -> None:
        metadata = found.metadata or {}
        name, dim = metadata.get(rec.KEY_EMBEDDER), metadata.get(rec.KEY_DIM)
        if name != self._embedder.name or dim != self._embedder.dim:
            raise EmbedderMismatch(
                f"the memories of {namespace!r} at {self._where} were embedded with {name} "
                f"({dim} dimensions); this store embeds with {self._embedder.name} "
                f"({self._embedder.dim} dimensions), whose vectors cannot be compared with "
                "them: open the store with the same embedder, or move the memories to a "
                "new store (get() them and add() them there)"
            )

    def _on_collection(
        self, namespace: str, action: Callable[[Collection], T], empty: T, *, create: bool
    ) -> T:
        """``action`` on the collection of ``namespace``; ``empty`` when there is none.
        A handle whose collection was deleted meanwhile (by another client) is reopened."""
        from chromadb.errors import NotFoundError

        for attempt in range(2):
            found = self._collection(namespace, create=create)
            if found is None:
                return empty
            try:
                return action(found)
            except NotFoundError:
                self._collections.pop(namespace, None)
                if attempt:
                    raise
        raise AssertionError("unreachable")

    # --- writes ----------------------------------------------------------------------

    @property
    def embedder_name(self) -> str:
        """The vector space of this store's memories (its embedder's ``name``)."""
        return self._embedder.name

    async def add(self, namespace: str, memories: Sequence[Memory]) -> None:
        """Embed and store ``memories``, group-committed with concurrent calls; returns once
        they are written. An id that exists is replaced. A cancelled call may still have
        been written, if its batch was already being committed."""
        if not memories:
            return
        _check_namespace(namespace)
        strays = sorted({m.namespace for m in memories if m.namespace != namespace})
        if strays:
            raise ValueError(f"memories of {strays} cannot be added to namespace {namespace!r}")
        batch = self._open
        if batch is None:
            batch = self._open = _Batch()
        rows = batch.rows.setdefault(namespace, {})
        for memory in memories:
            rows[memory.id] = memory
        try:
            async with self._commit_lock:
                if not batch.done.is_set():
                    await self._commit(batch)
        except anyio.get_cancelled_exc_class():
            if self._open is batch:  # not sealed yet: take back what was not written
                for memory in memories:
                    if rows.get(memory.id) is memory:
                        del rows[memory.id]
            raise
        error = batch.errors.get(namespace)
        if error is not None:
            raise _again(error)

    async def _commit(self, batch: _Batch) -> None:
        """Write ``batch`` (the caller holds the commit lock)."""
        if self._open is batch:
            self._open = None  # sealed: adds from now on join the next batch
        try:
            batch.errors.update(await self._run(self._write, batch.rows))
        except Exception as exc:  # not one namespace's failure: every caller hears of it
            for namespace in batch.rows:
                batch.errors.setdefault(namespace, exc)
            raise
        finally:
            batch.done.set()

    def _write(self, rows: Mapping[str, Mapping[str, Memory]]) -> dict[str, Exception]:
        """Embed and upsert each namespace's rows (in a worker thread); the errors of the
        namespaces that failed."""
        from runtime.embed import EmbedderError

        errors: dict[str, Exception] = {}
        for namespace, by_id in rows.items():
            if not by_id:
                continue
            upsert = partial(self._upsert, list(by_id.values()))
            try:
                with rec.translated(self._where):
                    action = partial(self._checked, namespace, upsert)
                    self._on_collection(namespace, action, None, create=True)
            except (MemoryStoreError, EmbedderError) as exc:
                errors[namespace] = exc
        return errors

    def _upsert(self, memories: Sequence[Memory], found: Collection) -> None:
        # one embed call per batch: the commit thread embeds what every caller added, which
        # batches remote and model embedders well and costs callers no thread hop each
        vectors = self._embedder.embed([m.text for m in memories])
        size = self._batch_size()
        for start in range(0, len(memories), size):
            chunk = memories[start : start + size]
            found.upsert(
                ids=[m.id for m in chunk],
                embeddings=vectors[start : start + size],
                documents=[m.text for m in chunk],
                metadatas=[rec.record_metadata(m) for m in chunk],
            )

    def _checked(self, namespace: str, action: Callable[[Collection], T], found: Collection) -> T:
        self._check_embedder(namespace, found)
        return action(found)

    async def delete(
        self,
        namespace: str,
        *,
        ids: Sequence[str] | None = None,
        before: float | None = None,
        expired_at: float | None = None,
    ) -> int:
        """Forget the memories of ``ids``, those created before ``before`` and those expired
        at ``expired_at`` (any that match one of them), or with no argument the whole
        namespace. Returns how many were forgotten."""
        _check_namespace(namespace)
        everything = ids is None and before is None and expired_at is None
        async with self._commit_lock:  # ordered with group commits
            if everything:
                return await self._run(self._drop, namespace)
            action = partial(
                rec.delete_matching,
                ids=ids,
                before=before,
                expired_at=expired_at,
                size=self._batch_size,
            )
            return await self._run(self._on_collection, namespace, action, 0, create=False)

    def _drop(self, namespace: str) -> int:
        from chromadb.errors import NotFoundError

        held = self._on_collection(namespace, rec.count, None, create=False)
        if held is None:
            return 0
        self._collections.pop(namespace, None)
        try:
            self._client().delete_collection(rec.collection_name(namespace, self._prefix))
        except NotFoundError:  # another client dropped it first
            return 0
        return held

    # --- reads -----------------------------------------------------------------------

    async def search(
        self, namespace: str, query: str, k: int, *, now: float | None = None
    ) -> list[tuple[Memory, float]]:
        """Up to ``k`` memories nearest ``query`` not expired at ``now`` (default: the
        clock), best first, with relevance ``1 - cosine distance`` clamped to 0..1. A blank
        query, or one with nothing the embedder can represent, finds nothing."""
        _check_namespace(namespace)
        if k <= 0 or not query.strip():
            return []
        at = time.time() if now is None else now
        action = partial(
            self._checked, namespace, partial(self._query, namespace, query, k, at)
        )
        return await self._run(self._on_collection, namespace, action, [], create=False)

    def _query(
        self, namespace: str, query: str, k: int, now: float, found: Collection
    ) -> list[tuple[Memory, float]]:
        vector = self._embedder.embed([query])
        if not vector.any():
            return []
        # A metadata filter costs Chroma time in proportion to the whole database, not the
        # collection (measured: +0.7 ms at 1k memories, +4.6 ms at 10k; a query without one
        # takes 1.5 ms). Expired memories are few (they are purged), so ask for twice k
        # unfiltered and drop them here; only when that leaves fewer than k, and there may
        # be more, ask again with the filter.
        asked = 2 * k
        result = found.query(query_embeddings=vector, n_results=asked, include=rec.INCLUDE_ALL)
        hits = rec.hits(namespace, result)
        alive = [(memory, score) for memory, score in hits if not memory.expired(now)]
        if len(alive) < k and len(hits) == asked:  # fewer than asked: the namespace is all here
            live = rec.where("expires_at", "$gt", now)
            result = found.query(
                query_embeddings=vector, n_results=k, where=live, include=rec.INCLUDE_ALL
            )
            alive = [(m, score) for m, score in rec.hits(namespace, result) if not m.expired(now)]
        return alive[:k]

    async def get(self, namespace: str, *, limit: int = 100, offset: int = 0) -> list[Memory]:
        """Memories oldest first (by ``created_at``), expired ones included, without search."""
        _check_namespace(namespace)
        if limit <= 0:
            return []
        action = partial(rec.page, namespace, limit=limit, offset=max(0, offset))
        return await self._run(self._on_collection, namespace, action, [], create=False)

    async def count(self, namespace: str) -> int:
        """How many memories ``namespace`` holds, expired ones included."""
        _check_namespace(namespace)
        return await self._run(self._on_collection, namespace, rec.count, 0, create=False)

    async def namespaces(self) -> dict[str, int]:
        """Every namespace of this store (and ``collection`` prefix) with memories, and how
        many it holds."""
        return await self._run(self._namespaces)

    def _namespaces(self) -> dict[str, int]:
        from chromadb.errors import NotFoundError

        client = self._client()
        found: dict[str, int] = {}
        page, offset = 1000, 0
        while True:
            collections = client.list_collections(limit=page, offset=offset)
            for each in collections:
                metadata = each.metadata or {}
                namespace = metadata.get(rec.KEY_NAMESPACE)
                if (
                    metadata.get(rec.KEY_SCHEMA) is None
                    or metadata.get(rec.KEY_PREFIX, "") != self._prefix
                ):
                    continue
                try:
                    held = each.count()
                except NotFoundError:  # dropped since it was listed
                    continue
                if held and isinstance(namespace, str):
                    found[namespace] = held
            if len(collections) < page:
                return found
            offset += page

    async def close(self) -> None:
        """Write what is pending, then release the client. Further calls raise
        :class:`~runtime.memory.records.StoreUnavailable`."""
        async with self._commit_lock:
            pending = self._open
            if pending is not None and not self._closed:
                await self._commit(pending)
            await anyio.to_thread.run_sync(self._release)

    def _release(self) -> None:
        with self._client_lock:
            client, self._client_value = self._client_value, None
            self._closed = True
            self._collections.clear()
        if client is not None:
            rec.close_client(client)


def _check_namespace(namespace: str) -> None:
    if not namespace:
        raise ValueError("a memory namespace key cannot be empty")


class ChromaStore(_ChromaVectorStore):
    """Vector memory in a folder on this machine: ChromaDB's persistent client at ``path``.

    ``embedder`` defaults to the project's (:func:`runtime.embed.get_embedder`);
    ``collection`` keeps the memories of one policy apart from another's in one folder.
    Nothing is opened until the first call. One process at a time may use a folder: a
    server (:class:`ChromaServerStore`) is how several share memories.
    """

    def __init__(
        self, path: str | Path, embedder: Embedder | None = None, *, collection: str | None = None
    ) -> None:
        self.path = Path(path)
        super().__init__(embedder, collection=collection, where=str(self.path))

    @classmethod
    def from_settings(cls, settings: StoreSettings) -> ChromaStore:
        """The store of ``settings.path``, else ``<root>/chroma``."""
        return cls(
            settings.path or settings.root / "chroma",
            settings.embedder,
            collection=settings.collection,
        )

    def __repr__(self) -> str:
        return f"ChromaStore({str(self.path)!r}, embedder={self.embedder_name!r})"

    def _connect(self) -> ClientAPI:
        import chromadb

        private_dir(self.path)  # memories are their owner's alone
        return chromadb.PersistentClient(path=str(self.path), settings=rec.client_settings())


class ChromaServerStore(_ChromaVectorStore):
    """Vector memory on a Chroma server at ``url`` (``http://host:port``; ``https`` too).

    Nothing is connected until the first call; a server that cannot be reached raises
    :class:`~runtime.memory.records.StoreUnavailable` (retryable), naming the URL.
    """

    def __init__(
        self, url: str, embedder: Embedder | None = None, *, collection: str | None = None
    ) -> None:
        parts = urlsplit(url)
        try:
            port = parts.port
        except ValueError:
            port = -1
        if parts.scheme not in ("http", "https") or not parts.hostname or port == -1:
            raise StoreUnavailable(
                f"not a Chroma server URL: {url!r} (expected http://host:port)", retryable=False
            )
        self.url = url
        self._host = parts.hostname
        self._ssl = parts.scheme == "https"
        self._port = port if port is not None else 8000
        super().__init__(embedder, collection=collection, where=url)

    @classmethod
    def from_settings(cls, settings: StoreSettings) -> ChromaServerStore:
        """The store at ``settings.url``."""
        if not settings.url:
            raise StoreUnavailable(
                "the chroma-server memory backend needs a url (http://host:port)",
                retryable=False,
            )
        return cls(settings.url, settings.embedder, collection=settings.collection)

    def __repr__(self) -> str:
        return f"ChromaServerStore({self.url!r}, embedder={self.embedder_name!r})"

    def _connect(self) -> ClientAPI:
        import chromadb

        return chromadb.HttpClient(
            host=self._host, port=self._port, ssl=self._ssl, settings=rec.client_settings()
        )
