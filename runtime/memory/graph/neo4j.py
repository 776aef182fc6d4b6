"""The graph store on a Neo4j server, through the official async driver.

Every value reaches Cypher as a query parameter, never as text: the queries are the
module's constants (:data:`QUERIES`), and a test checks that nothing else is ever sent.
Cypher cannot take a relationship type or a label as a parameter, so neither comes from
data: entities are ``:KilnEntity`` nodes keyed by ``(namespace, key)`` (a uniqueness
constraint, created once per store), relations are ``:KILN_REL`` relationships whose
``name`` property holds the relation (``lives_in``).

Merges are ``UNWIND`` batches in one write transaction. Reads that walk the graph
(:meth:`Neo4jGraph.neighbourhood`) take one query per hop, so the depth, which Cypher cannot
take as a parameter either, never enters the query text.

Errors are translated here, once: a server that cannot be reached is
:class:`~runtime.memory.records.StoreUnavailable` (retryable) naming the URI, refused
credentials are not retryable, anything else is a
:class:`~runtime.memory.records.MemoryStoreError`. No message carries the password.

The driver retries a failed transaction itself, waiting about 1 s before its first retry
and twice as long before each next one, for as long as the store's ``retry_s`` allows
(:data:`RETRY_S` by default: one retry, so a server that is not there fails in about a
second rather than the driver's 30 s). Its own warnings about those retries are silenced
(see :func:`_quiet_driver_logs`): the error that ends them is reported, once, by kiln.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Final, TypeVar
from urllib.parse import urlsplit, urlunsplit

import anyio
import neo4j
import neo4j.exceptions

from runtime.memory.graph import (
    DEFAULT_TYPE,
    MentionIndex,
    merge_rows,
    name_tokens,
)
from runtime.memory.records import (
    Entity,
    MemoryStoreError,
    Relation,
    StoreUnavailable,
    normalise_name,
)
from runtime.memory.registry import StoreSettings

__all__ = ["MAX_NAME_WORDS", "QUERIES", "RETRY_S", "SCHEMA", "SCHEMES", "Neo4jGraph"]

T = TypeVar("T")

#: the URI schemes of the Bolt protocol (the driver's HTTP support is a preview)
SCHEMES: Final = ("bolt", "bolt+s", "bolt+ssc", "neo4j", "neo4j+s", "neo4j+ssc")

#: how long (seconds) the driver goes on retrying a failed transaction by default. The
#: driver waits about 1 s (±20 %) before its first retry and doubles that each time, and
#: stops once this much time has passed since the first failure: 0.5 s makes that exactly
#: one retry, and a server that cannot be reached fails after about a second.
RETRY_S: Final = 0.5

#: the logger the driver logs under (its modules log to children of it)
DRIVER_LOGGER: Final = "neo4j"

#: :meth:`Neo4jGraph.match` finds entity names of at most this many words
MAX_NAME_WORDS: Final = 8

SCHEMA: Final = (
    "CREATE CONSTRAINT kiln_entity_key IF NOT EXISTS"
    " FOR (n:KilnEntity) REQUIRE (n.namespace, n.key) IS UNIQUE",
    "CREATE INDEX kiln_entity_namespace IF NOT EXISTS FOR (n:KilnEntity) ON (n.namespace)",
)

# A type given later wins over the default one; the first display name stays.
MERGE_ENTITIES: Final = """
UNWIND $entities AS e
MERGE (n:KilnEntity {namespace: $namespace, key: e.key})
ON CREATE SET n.name = e.name, n.type = e.type, n.updated = $now
ON MATCH SET n.updated = $now,
    n.type = CASE WHEN e.type <> $default_type THEN e.type ELSE n.type END
"""

MERGE_RELATIONS: Final = """
UNWIND $relations AS r
MATCH (s:KilnEntity {namespace: $namespace, key: r.source_key})
MATCH (t:KilnEntity {namespace: $namespace, key: r.target_key})
MERGE (s)-[x:KILN_REL {name: r.relation}]->(t)
ON CREATE SET x.count = 1, x.ts = r.ts, x.agent = r.agent, x.run_id = r.run_id
ON MATCH SET x.count = x.count + 1,
    x.ts = CASE WHEN r.ts > x.ts THEN r.ts ELSE x.ts END,
    x.agent = r.agent, x.run_id = r.run_id
"""

KNOWN: Final = """
MATCH (n:KilnEntity {namespace: $namespace})
WHERE n.key IN $keys
RETURN n.key AS key, n.name AS name
"""

# One hop: the relations touching ``$frontier`` whose other end is not in an earlier hop
# (those were returned already), most recent first.
HOP: Final = """
MATCH (n:KilnEntity {namespace: $namespace})-[r:KILN_REL]-(m:KilnEntity {namespace: $namespace})
WHERE n.key IN $frontier AND NOT m.key IN $earlier
WITH DISTINCT r, startNode(r) AS s, endNode(r) AS t
RETURN s.key AS source_key, s.name AS source, r.name AS relation,
    t.key AS target_key, t.name AS target, r.agent AS agent, r.run_id AS run_id, r.ts AS ts
ORDER BY r.ts DESC, r.count DESC, s.key, r.name, t.key
LIMIT $limit
"""

DELETE_ENTITIES: Final = """
MATCH (n:KilnEntity {namespace: $namespace})
WHERE n.key IN $keys
DETACH DELETE n
RETURN count(*) AS deleted
"""

DELETE_NAMESPACE: Final = """
MATCH (n:KilnEntity {namespace: $namespace})
DETACH DELETE n
RETURN count(*) AS deleted
"""

COUNTS: Final = """
MATCH (n:KilnEntity {namespace: $namespace})
OPTIONAL MATCH (n)-[r:KILN_REL]->()
RETURN count(DISTINCT n) AS entities, count(r) AS relations
"""

NAMESPACES: Final = """
MATCH (n:KilnEntity)
RETURN n.namespace AS namespace, count(n) AS entities
"""

#: every query this module sends, and nothing else is ever sent
QUERIES: Final = (
    *SCHEMA,
    MERGE_ENTITIES,
    MERGE_RELATIONS,
    KNOWN,
    HOP,
    DELETE_ENTITIES,
    DELETE_NAMESPACE,
    COUNTS,
    NAMESPACES,
)

_Work = Callable[[Any], Awaitable[T]]


class Neo4jGraph:
    """A :class:`~runtime.memory.protocols.GraphStore` on the Neo4j server at ``uri``.

    The driver is made, and the constraint and index are created, on first use. ``driver``
    replaces the real one (tests pass a fake that records what is sent); ``retry_s``
    bounds how long the driver retries a transaction on a transient failure (an
    unreachable server included) before the error comes back as
    :class:`~runtime.memory.records.StoreUnavailable` (see :data:`RETRY_S`; ``0``: no
    retry).
    """

    def __init__(
        self,
        uri: str,
        user: str,
        password: str,
        *,
        database: str | None = None,
        retry_s: float = RETRY_S,
        connect_timeout_s: float = 5.0,
        driver: Any = None,
    ) -> None:
        self._uri = uri
        self._where = _redacted(uri)
        self._user = user
        self._password = password
        self._database = database
        self._retry_s = retry_s
        self._connect_timeout_s = connect_timeout_s
        self._driver: Any = driver
        self._ready = False
        self._closed = False
        self._lock = anyio.Lock()

    @classmethod
    def from_settings(cls, settings: StoreSettings) -> Neo4jGraph:
        """``settings.uri`` (required), ``user`` (``neo4j`` by default), ``password``."""
        if not settings.uri:
            raise StoreUnavailable("the neo4j graph backend needs a uri", retryable=False)
        return cls(settings.uri, settings.user or "neo4j", settings.password or "")

    @property
    def uri(self) -> str:
        """The server's URI, without credentials."""
        return self._where

    async def merge(
        self, namespace: str, entities: Sequence[Entity], relations: Sequence[Relation]
    ) -> None:
        rows, edges = merge_rows(entities, relations, now=time.time())
        if not rows:
            return
        entity_params = {
            "namespace": namespace,
            "now": time.time(),
            "default_type": DEFAULT_TYPE,
            # Sorted, so that concurrent merges lock their nodes in one order (no deadlock).
            "entities": [
                {"key": r.key, "name": r.name, "type": r.type}
                for r in sorted(rows, key=lambda r: r.key)
            ],
        }
        relation_params = {
            "namespace": namespace,
            "relations": [
                {
                    "source_key": e.source_key,
                    "relation": e.relation,
                    "target_key": e.target_key,
                    "agent": e.agent,
                    "run_id": e.run_id,
                    "ts": e.ts,
                }
                for e in edges
            ],
        }

        async def work(tx: Any) -> None:
            # Every end of every relation is among the entities, so this write locks them
            # all until commit: two transactions merging one relation take turns, and
            # MERGE never makes it twice.
            await _rows(tx, MERGE_ENTITIES, entity_params)
            if edges:
                await _rows(tx, MERGE_RELATIONS, relation_params)

        await self._write(work)

    async def match(self, namespace: str, text: str) -> list[str]:
        words = name_tokens(text)
        grams = {
            " ".join(words[i : i + size])
            for i in range(len(words))
            for size in range(1, min(MAX_NAME_WORDS, len(words) - i) + 1)
        }
        if not grams:
            return []
        params = {"namespace": namespace, "keys": sorted(grams)}
        found = await self._read(lambda tx: _rows(tx, KNOWN, params))
        names = {str(row["key"]): str(row["name"]) for row in found}
        return [names[key] for key in MentionIndex(names).find(words)]

    async def neighbourhood(
        self, namespace: str, names: Sequence[str], *, depth: int = 1, limit: int = 50
    ) -> list[Relation]:
        seeds = [key for key in dict.fromkeys(normalise_name(n) for n in names) if key]
        if not seeds or depth < 1 or limit < 1:
            return []

        async def work(tx: Any) -> list[Relation]:
            out: list[Relation] = []
            earlier: list[str] = []
            frontier = seeds
            for _ in range(depth):
                room = limit - len(out)
                params = {
                    "namespace": namespace,
                    "frontier": frontier,
                    "earlier": earlier,
                    # one more than there is room for says whether the hop was cut short
                    "limit": room + 1,
                }
                found = await _rows(tx, HOP, params)
                out.extend(_relation(row) for row in found[:room])
                if len(found) > room or not found:
                    break
                earlier = [*earlier, *frontier]
                seen = set(earlier)
                frontier = [
                    key
                    for key in dict.fromkeys(
                        end for row in found for end in (row["source_key"], row["target_key"])
                    )
                    if key not in seen
                ]
                if not frontier:
                    break
            return out

        return await self._read(work)

    async def delete(self, namespace: str, names: Sequence[str] | None = None) -> int:
        params: dict[str, Any]
        if names is None:
            query, params = DELETE_NAMESPACE, {"namespace": namespace}
        else:
            keys = sorted({k for k in (normalise_name(n) for n in names) if k})
            if not keys:
                return 0
            query, params = DELETE_ENTITIES, {"namespace": namespace, "keys": keys}

        async def work(tx: Any) -> int:
            found = await _rows(tx, query, params)
            return int(found[0]["deleted"]) if found else 0

        return await self._write(work)

    async def counts(self, namespace: str) -> tuple[int, int]:
        found = await self._read(lambda tx: _rows(tx, COUNTS, {"namespace": namespace}))
        if not found:
            return 0, 0
        return int(found[0]["entities"]), int(found[0]["relations"])

    async def namespaces(self) -> dict[str, int]:
        found = await self._read(lambda tx: _rows(tx, NAMESPACES, {}))
        return {str(row["namespace"]): int(row["entities"]) for row in found if row["entities"]}

    async def close(self) -> None:
        self._closed = True
        driver, self._driver, self._ready = self._driver, None, False
        if driver is not None:
            await driver.close()

    # --- sessions and errors -------------------------------------------------------------

    async def _read(self, work: _Work[T]) -> T:
        return await self._session("execute_read", work)

    async def _write(self, work: _Work[T]) -> T:
        return await self._session("execute_write", work)

    async def _session(self, how: str, work: _Work[T]) -> T:
        try:
            driver = await self._prepared()
            async with driver.session(**self._session_config()) as session:
                result: T = await getattr(session, how)(work)
                return result
        except MemoryStoreError:
            raise
        except (neo4j.exceptions.Neo4jError, neo4j.exceptions.DriverError, OSError) as exc:
            raise self._translated(exc) from None

    async def _prepared(self) -> Any:
        """The driver, with the schema created (once; again after a failure)."""
        async with self._lock:
            if self._closed:
                raise MemoryStoreError(f"the graph store at {self._where} is closed")
            if self._driver is None:
                self._driver = self._connect()
            if not self._ready:
                async with self._driver.session(**self._session_config()) as session:
                    for statement in SCHEMA:
                        await session.execute_write(_rows, statement, {})
                self._ready = True
            return self._driver

    def _connect(self) -> Any:
        scheme = urlsplit(self._uri).scheme
        if scheme not in SCHEMES:
            raise StoreUnavailable(
                f"cannot use the Neo4j URI {self._where}: use one of "
                f"{', '.join(f'{s}://' for s in SCHEMES)}",
                retryable=False,
            )
        _quiet_driver_logs()
        try:
            return neo4j.AsyncGraphDatabase.driver(
                self._uri,
                auth=(self._user, self._password),
                max_transaction_retry_time=self._retry_s,
                connection_timeout=self._connect_timeout_s,
            )
        except (neo4j.exceptions.ConfigurationError, ValueError) as exc:
            raise StoreUnavailable(
                f"cannot use the Neo4j URI {self._where}: {self._scrubbed(exc)}", retryable=False
            ) from None

    def _session_config(self) -> dict[str, Any]:
        return {"database": self._database} if self._database else {}

    def _translated(self, exc: Exception) -> MemoryStoreError:
        detail = self._scrubbed(exc)
        if isinstance(exc, neo4j.exceptions.AuthError):
            return StoreUnavailable(
                f"Neo4j at {self._where} refused the credentials of user {self._user!r}",
                retryable=False,
            )
        if isinstance(
            exc,
            neo4j.exceptions.ServiceUnavailable | neo4j.exceptions.SessionExpired | OSError,
        ):
            return StoreUnavailable(
                f"Neo4j at {self._where} is unavailable: {detail}", retryable=True
            )
        retryable = isinstance(exc, neo4j.exceptions.TransientError)
        return MemoryStoreError(
            f"Neo4j at {self._where} failed: {type(exc).__name__}: {detail}",
            retryable=retryable,
        )

    def _scrubbed(self, exc: Exception) -> str:
        """``exc``'s message without the password (the driver quotes a bad URI whole)."""
        text = str(exc).replace(self._uri, self._where)
        for secret in (self._password, urlsplit(self._uri).password):
            if secret:
                text = text.replace(secret, "***")
        return text


def _quiet_driver_logs() -> None:
    """Keep the driver's warnings off the user's terminal, once, when a real driver is made.

    The driver logs a warning for every retry of a transaction ("Transaction failed and will
    be retried in 0.94s (Couldn't connect ...)"); with no logging configured, Python prints
    those on stderr ahead of the one clear error kiln reports when the retries end. Raising
    the ``neo4j`` logger to ``ERROR`` is the narrowest way to stop that: the driver's errors
    still reach whatever handlers the application has, nothing else's logging changes, and
    it is done only while nobody has set that logger's level, so an application (or
    ``neo4j.debug.watch``) that asked for the driver's logs before the first use keeps
    them, and can ask for them again at any time. (A ``NullHandler`` with
    ``propagate = False`` would have hidden the errors as well, from every handler.)
    """
    driver_log = logging.getLogger(DRIVER_LOGGER)
    if driver_log.level == logging.NOTSET:
        driver_log.setLevel(logging.ERROR)


async def _rows(tx: Any, query: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    """Run one of this module's queries with its parameters; its rows as dicts."""
    result = await tx.run(query, params)
    rows: list[dict[str, Any]] = await result.data()
    return rows


def _relation(row: dict[str, Any]) -> Relation:
    return Relation(
        source=str(row["source"]),
        relation=str(row["relation"]),
        target=str(row["target"]),
        agent=str(row["agent"] or ""),
        run_id=str(row["run_id"] or ""),
        ts=float(row["ts"] or 0.0),
    )


def _redacted(uri: str) -> str:
    """``uri`` without any ``user:password@`` part."""
    parts = urlsplit(uri)
    if "@" not in parts.netloc:
        return uri
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=host))
