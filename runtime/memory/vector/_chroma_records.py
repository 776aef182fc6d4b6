"""How memories, queries and errors look to ChromaDB: the record layout behind
:mod:`runtime.memory.vector.chroma`, apart from its stores and their concurrency.

A memory is one record: its text as the document, its embedding, and its fields as scalar
metadata: ``kind``, ``agent``, ``run_id``, ``created_at``, ``expires_at`` (:data:`NEVER`
when it never expires, since Chroma metadata holds no ``None``), ``importance`` and each
``meta`` item under ``meta.<key>``. Chroma keeps floats to 16 significant digits (a time to
the microsecond). A collection's metadata says whose it is (``kiln:namespace``,
``kiln:collection``), how its vectors were made (``kiln:embedder``, ``kiln:dim``) and in
which layout (``kiln:schema``).

The functions run in the worker thread that makes the Chroma call; chromadb and httpx are
imported inside them only.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Final, cast

from runtime.memory.records import Memory, MemoryStoreError, StoreUnavailable

if TYPE_CHECKING:
    from chromadb.api import ClientAPI
    from chromadb.api.models.Collection import Collection
    from chromadb.api.types import Include, QueryResult, Where

Scalar = str | int | float | bool

#: the layout of records and collection metadata; a newer one is refused, never misread
SCHEMA_VERSION: Final = 1
#: ``expires_at`` of a memory that never expires: far past any time, so "not expired at
#: ``now``" is one comparison (``expires_at > now``)
NEVER: Final = 1e300

KEY_SCHEMA: Final = "kiln:schema"
KEY_NAMESPACE: Final = "kiln:namespace"
KEY_PREFIX: Final = "kiln:collection"
KEY_EMBEDDER: Final = "kiln:embedder"
KEY_DIM: Final = "kiln:dim"
META: Final = "meta."
_UNSAFE: Final = re.compile(r"[^A-Za-z0-9_-]+")
INCLUDE_ALL: Final[Include] = ["documents", "metadatas", "distances"]


def collection_name(namespace: str, prefix: str | None = None) -> str:
    """The Chroma collection of ``namespace``: its :attr:`Namespace.slug`, or with a
    ``prefix`` (a policy's ``collection``), the prefix (made safe) and a hash of both."""
    if not prefix:
        return f"kiln-{hashlib.sha256(namespace.encode()).hexdigest()[:24]}"
    digest = hashlib.sha256(f"{prefix}\0{namespace}".encode()).hexdigest()[:24]
    safe = _UNSAFE.sub("-", prefix).strip("-")[:40]
    return f"kiln-{safe}-{digest}" if safe else f"kiln-{digest}"


def record_metadata(memory: Memory) -> dict[str, Scalar]:
    """The metadata of ``memory``'s record."""
    metadata: dict[str, Scalar] = {
        "kind": memory.kind,
        "agent": memory.agent,
        "run_id": memory.run_id,
        "created_at": float(memory.created_at),
        "expires_at": NEVER if memory.expires_at is None else float(memory.expires_at),
        "importance": float(memory.importance),
    }
    for key, value in memory.meta.items():
        metadata[META + key] = value
    return metadata


def to_memory(namespace: str, id: str, text: str | None, metadata: Mapping[str, Any]) -> Memory:
    """The memory a record holds."""
    expires = float(metadata.get("expires_at", NEVER))
    return Memory(
        id=id,
        text=text or "",
        kind=metadata.get("kind", "note"),
        namespace=namespace,
        agent=str(metadata.get("agent", "")),
        run_id=str(metadata.get("run_id", "")),
        created_at=float(metadata.get("created_at", 0.0)),
        expires_at=None if expires >= NEVER else expires,
        importance=float(metadata.get("importance", 0.5)),
        meta={k[len(META) :]: v for k, v in metadata.items() if k.startswith(META)},
    )


def relevance(distance: float) -> float:
    """Cosine distance to similarity, clamped to 0..1 (NaN, from a zero vector, is 0)."""
    similarity = 1.0 - distance
    return 0.0 if math.isnan(similarity) else min(1.0, max(0.0, similarity))


def translate(exc: Exception, location: str) -> MemoryStoreError | None:
    """The :class:`MemoryStoreError` that ``exc``, raised by chromadb or its HTTP client,
    stands for; ``None`` for anything else (a bug: it propagates as it is)."""
    if isinstance(exc, MemoryStoreError):
        return exc
    import httpx
    from chromadb.errors import ChromaError

    if isinstance(exc, httpx.TransportError):
        return StoreUnavailable(f"cannot reach the Chroma server at {location}: {exc!r}")
    if isinstance(exc, httpx.HTTPStatusError):
        status = exc.response.status_code
        return MemoryStoreError(
            f"the Chroma server at {location} answered {status}: {exc.response.text[:200]}",
            retryable=status == 429 or status >= 500,
        )
    if isinstance(exc, ChromaError):
        code = exc.code()
        return MemoryStoreError(
            f"Chroma at {location}: {exc.name()}: {exc.message()}",
            retryable=code == 429 or code >= 500,
        )
    if isinstance(exc, OSError):
        return StoreUnavailable(f"cannot open Chroma at {location}: {exc}", retryable=False)
    if isinstance(exc, ValueError) and str(exc).startswith("Could not connect to a Chroma"):
        # how chromadb.HttpClient reports a refused connection (the httpx error is context)
        return StoreUnavailable(
            f"cannot reach the Chroma server at {location}: {exc.__context__!r}"
        )
    return None


@contextmanager
def translated(location: str) -> Iterator[None]:
    """Raise chromadb's and httpx's exceptions as :class:`MemoryStoreError` (one place)."""
    try:
        yield
    except Exception as exc:
        error = translate(exc, location)
        if error is None or error is exc:
            raise
        raise error from exc


def hits(namespace: str, result: QueryResult) -> list[tuple[Memory, float]]:
    """The memories of a one-query result, with their relevance, in Chroma's order."""
    ids = result["ids"][0]
    documents = (result["documents"] or [[]])[0]
    metadatas = (result["metadatas"] or [[]])[0]
    distances = (result["distances"] or [[]])[0]
    return [
        (to_memory(namespace, id, documents[i], metadatas[i] or {}), relevance(distances[i]))
        for i, id in enumerate(ids)
    ]


def page(namespace: str, found: Collection, *, limit: int, offset: int) -> list[Memory]:
    """A page of the namespace in ``created_at`` order. Chroma lists in its own order, so
    every record's metadata is read to sort, then only the page's documents."""
    listing = found.get(include=["metadatas"])
    metadatas = listing["metadatas"] or []
    order = sorted(
        zip(listing["ids"], metadatas, strict=True),
        key=lambda pair: (cast(float, pair[1].get("created_at", 0.0)), pair[0]),
    )
    wanted = [id for id, _ in order[offset : offset + limit]]
    if not wanted:
        return []
    chosen = found.get(ids=wanted, include=["documents", "metadatas"])
    documents = chosen["documents"] or []
    metadatas = chosen["metadatas"] or []
    by_id = {
        id: to_memory(namespace, id, documents[i], metadatas[i] or {})
        for i, id in enumerate(chosen["ids"])
    }
    return [by_id[id] for id in wanted if id in by_id]


def where(key: str, operator: str, value: float) -> Where:
    """A one-comparison metadata filter: ``{key: {operator: value}}``."""
    return cast("Where", {key: {operator: float(value)}})


def count(found: Collection) -> int:
    return found.count()


def delete_matching(
    found: Collection,
    *,
    ids: Sequence[str] | None,
    before: float | None,
    expired_at: float | None,
    size: Callable[[], int],
) -> int:
    """Delete the records of ``ids``, or created before ``before``, or expired at
    ``expired_at``, ``size()`` at a time; how many there were."""
    doomed: set[str] = set()
    if ids:
        doomed.update(found.get(ids=list(dict.fromkeys(ids)), include=[])["ids"])
    if before is not None:
        older = where("created_at", "$lt", before)
        doomed.update(found.get(where=older, include=[])["ids"])
    if expired_at is not None:
        expired = where("expires_at", "$lte", expired_at)
        doomed.update(found.get(where=expired, include=[])["ids"])
    listed = sorted(doomed)
    step = size()
    for start in range(0, len(listed), step):
        found.delete(ids=listed[start : start + step])
    return len(listed)


def close_client(client: ClientAPI) -> None:
    """Release ``client`` and what chromadb forgets to."""
    # chromadb 1.5's HTTP API never closes its httpx sessions, and an HttpClient has two: its
    # own and its internal admin client's (a System of its own, made to check the tenant).
    # Once a session's System is stopped (no client shares it), close it here, or its pooled
    # sockets leak (ResourceWarning).
    servers = [
        getattr(c, "_server", None) for c in (client, getattr(client, "_admin_client", None))
    ]
    cast(Any, client).close()  # chromadb.Client has it; its ClientAPI type does not say so
    for server in servers:
        session = getattr(server, "_session", None)
        if session is not None and not getattr(server, "_running", True):
            session.close()


def client_settings() -> Any:
    """chromadb's settings for our clients: no telemetry."""
    from chromadb.config import Settings

    return Settings(anonymized_telemetry=False)
