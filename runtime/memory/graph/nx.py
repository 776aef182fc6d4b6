"""The embedded graph store: an SQLite file is the truth, networkx answers the queries.

Every write is one SQLite transaction (WAL mode, ``BEGIN IMMEDIATE``), so any number of
stores in one or several processes can write one file without corrupting it; entities and
relations have primary keys, so a merge is an upsert and a relation asserted twice is one
row whose ``count`` went up.

Reads go to a :class:`networkx.MultiDiGraph` per namespace, loaded from the file on first
use and kept for the next queries (the ``max_loaded`` most recently used namespaces). This
store's own writes are applied to it as they commit. Another connection's writes are
noticed through SQLite's ``PRAGMA data_version`` and a version counter per namespace: a
namespace that another writer changed is reloaded whole before it is read again.

The file's header carries :data:`APPLICATION_ID` and :data:`SCHEMA_VERSION` (``PRAGMA
application_id``, ``user_version``). Before anything is written to it (its journal mode
included), the file is checked to be a kiln graph store or an empty database: a file that is
not SQLite, or a SQLite database of something else, is refused with a
:class:`~runtime.memory.records.MemoryStoreError` naming it, and left exactly as it was. A
graph store written before the header was stamped (no ``application_id``, exactly this
store's tables) is one: it is stamped when first opened.

Every call runs in a worker thread under one lock per store: SQLite and networkx are
synchronous, and the lock keeps the cached graphs and the connection consistent.
"""

from __future__ import annotations

import heapq
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Final, TypeVar

import anyio.to_thread
import networkx as nx

from runtime.memory.graph import (
    DEFAULT_TYPE,
    EntityRow,
    MentionIndex,
    RelationRow,
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
from runtime.memory.sqlite_files import check_mark, connect, writing
from runtime.private import private_file

__all__ = ["APPLICATION_ID", "BUSY_TIMEOUT_S", "SCHEMA_VERSION", "NetworkxGraph"]

T = TypeVar("T")

#: ``PRAGMA application_id`` of a kiln graph store: "ksgr" in ASCII
APPLICATION_ID: Final = 0x6B736772
#: ``PRAGMA user_version``: the schema this code writes; a newer file is refused
SCHEMA_VERSION: Final = 1
#: how long a writer waits for another process's transaction before giving up
BUSY_TIMEOUT_S: Final = 10.0

#: the store's tables and their columns: how a file written before the header was stamped
#: is known (``IF NOT EXISTS`` below is for those files too: the index is made if missing)
_TABLES: Final = {
    "entities": ("namespace", "key", "name", "type", "updated"),
    "relations": (
        "namespace",
        "source_key",
        "relation",
        "target_key",
        "agent",
        "run_id",
        "ts",
        "count",
    ),
    "versions": ("namespace", "version"),
}

_SCHEMA: Final = (
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
    # deleting an entity deletes the relations that end at it too
    "CREATE INDEX IF NOT EXISTS relations_by_target ON relations (namespace, target_key)",
    # bumped by every write of a namespace: how other connections know to reload it
    """CREATE TABLE IF NOT EXISTS versions (
        namespace TEXT PRIMARY KEY,
        version INTEGER NOT NULL
    ) WITHOUT ROWID""",
    f"PRAGMA application_id = {APPLICATION_ID}",
    f"PRAGMA user_version = {SCHEMA_VERSION}",
)

# A type given later wins over the default one, never the other way; the first display
# name stays.
_UPSERT_ENTITY: Final = """
    INSERT INTO entities (namespace, key, name, type, updated) VALUES (?, ?, ?, ?, ?)
    ON CONFLICT (namespace, key) DO UPDATE SET
        type = CASE WHEN excluded.type != ? THEN excluded.type ELSE entities.type END,
        updated = excluded.updated
"""
_UPSERT_RELATION: Final = """
    INSERT INTO relations (namespace, source_key, relation, target_key, agent, run_id, ts, count)
    VALUES (?, ?, ?, ?, ?, ?, ?, 1)
    ON CONFLICT (namespace, source_key, relation, target_key) DO UPDATE SET
        count = relations.count + 1,
        ts = max(relations.ts, excluded.ts),
        agent = excluded.agent,
        run_id = excluded.run_id
"""
_BUMP: Final = """
    INSERT INTO versions (namespace, version) VALUES (?, 1)
    ON CONFLICT (namespace) DO UPDATE SET version = version + 1
    RETURNING version
"""


@dataclass(slots=True)
class _Loaded:
    """One namespace's graph in memory, and how current it is."""

    graph: nx.MultiDiGraph[str]
    mentions: MentionIndex
    #: the namespace's row in ``versions`` that this graph reflects
    version: int
    #: the connection's ``PRAGMA data_version`` when that was last checked
    data_version: int


class NetworkxGraph:
    """A :class:`~runtime.memory.protocols.GraphStore` in one SQLite file (see the module).

    The file is created on first use, with its folder. ``max_loaded`` bounds how many
    namespaces stay loaded in memory at once (least recently used go first).
    """

    def __init__(self, path: str | Path, *, max_loaded: int = 32) -> None:
        self._path = Path(path)
        self._max_loaded = max(1, max_loaded)
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        self._closed = False
        self._loaded: OrderedDict[str, _Loaded] = OrderedDict()

    @classmethod
    def from_settings(cls, settings: StoreSettings) -> NetworkxGraph:
        """``settings.path`` (a file, or a folder to hold ``graph.db``), else
        ``settings.root / "graph.db"``."""
        path = settings.path or settings.root / "graph.db"
        if path.is_dir():
            path = path / "graph.db"
        return cls(path)

    @property
    def path(self) -> Path:
        return self._path

    async def merge(
        self, namespace: str, entities: Sequence[Entity], relations: Sequence[Relation]
    ) -> None:
        rows, edges = merge_rows(entities, relations, now=time.time())
        if rows:
            await self._call(self._merge, namespace, rows, edges)

    async def match(self, namespace: str, text: str) -> list[str]:
        return await self._call(self._match, namespace, text)

    async def neighbourhood(
        self, namespace: str, names: Sequence[str], *, depth: int = 1, limit: int = 50
    ) -> list[Relation]:
        keys = [key for key in dict.fromkeys(normalise_name(n) for n in names) if key]
        if not keys or depth < 1 or limit < 1:
            return []
        return await self._call(self._neighbourhood, namespace, keys, depth, limit)

    async def delete(self, namespace: str, names: Sequence[str] | None = None) -> int:
        keys = None if names is None else [k for k in {normalise_name(n) for n in names} if k]
        if keys == []:
            return 0
        return await self._call(self._delete, namespace, keys)

    async def counts(self, namespace: str) -> tuple[int, int]:
        return await self._call(self._counts, namespace)

    async def namespaces(self) -> dict[str, int]:
        return await self._call(self._namespaces)

    async def close(self) -> None:
        await anyio.to_thread.run_sync(self._close)

    # --- in the worker thread, under the lock -------------------------------------------

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        return await anyio.to_thread.run_sync(partial(self._locked, fn, *args))

    def _locked(self, fn: Callable[..., T], *args: Any) -> T:
        with self._lock:
            if self._closed:
                raise MemoryStoreError(f"the graph store {self._path} is closed")
            try:
                return fn(self._connection(), *args)
            except sqlite3.Error as exc:
                raise _translated(exc, self._path) from None

    def _connection(self) -> sqlite3.Connection:
        if self._db is None:
            self._db = _open(self._path)
        return self._db

    def _close(self) -> None:
        with self._lock:
            self._closed = True
            self._loaded.clear()
            if self._db is not None:
                self._db.close()
                self._db = None

    def _merge(
        self,
        db: sqlite3.Connection,
        namespace: str,
        rows: list[EntityRow],
        edges: list[RelationRow],
    ) -> None:
        now = time.time()
        with writing(db):
            # Checked inside the write lock: nobody can change the file between this check
            # and our commit, so applying our rows to a current graph keeps it current.
            loaded = self._current(db, namespace)
            db.executemany(
                _UPSERT_ENTITY,
                [(namespace, r.key, r.name, r.type, now, DEFAULT_TYPE) for r in rows],
            )
            db.executemany(
                _UPSERT_RELATION,
                [
                    (namespace, e.source_key, e.relation, e.target_key, e.agent, e.run_id, e.ts)
                    for e in edges
                ],
            )
            version = _bump(db, namespace)
        if loaded is not None:
            _apply(loaded, rows, edges)
            loaded.version = version

    def _match(self, db: sqlite3.Connection, namespace: str, text: str) -> list[str]:
        loaded = self._load(db, namespace)
        nodes = loaded.graph.nodes
        return [nodes[key]["name"] for key in loaded.mentions.find(name_tokens(text))]

    def _neighbourhood(
        self, db: sqlite3.Connection, namespace: str, keys: list[str], depth: int, limit: int
    ) -> list[Relation]:
        graph = self._load(db, namespace).graph
        return _walk(graph, [k for k in keys if k in graph], depth, limit)

    def _delete(self, db: sqlite3.Connection, namespace: str, keys: list[str] | None) -> int:
        with writing(db):
            loaded = self._current(db, namespace)
            if keys is None:
                db.execute("DELETE FROM relations WHERE namespace = ?", (namespace,))
                gone = db.execute("DELETE FROM entities WHERE namespace = ?", (namespace,))
            else:
                marks = ", ".join("?" * len(keys))  # placeholders only: keys stay parameters
                db.execute(
                    f"DELETE FROM relations WHERE namespace = ? AND source_key IN ({marks})",
                    (namespace, *keys),
                )
                db.execute(
                    f"DELETE FROM relations WHERE namespace = ? AND target_key IN ({marks})",
                    (namespace, *keys),
                )
                gone = db.execute(
                    f"DELETE FROM entities WHERE namespace = ? AND key IN ({marks})",
                    (namespace, *keys),
                )
            count = gone.rowcount
            version = _bump(db, namespace) if count else None
        if loaded is not None and version is not None:
            if keys is None:
                loaded.graph.clear()
                loaded.mentions = MentionIndex()
            else:
                for key in keys:
                    if key in loaded.graph:
                        loaded.graph.remove_node(key)
                        loaded.mentions.discard(key)
            loaded.version = version
        return count

    def _counts(self, db: sqlite3.Connection, namespace: str) -> tuple[int, int]:
        (entities,) = db.execute(
            "SELECT count(*) FROM entities WHERE namespace = ?", (namespace,)
        ).fetchone()
        (relations,) = db.execute(
            "SELECT count(*) FROM relations WHERE namespace = ?", (namespace,)
        ).fetchone()
        return int(entities), int(relations)

    def _namespaces(self, db: sqlite3.Connection) -> dict[str, int]:
        rows = db.execute("SELECT namespace, count(*) FROM entities GROUP BY namespace")
        return {str(namespace): int(count) for namespace, count in rows}

    # --- the cache of loaded namespaces -------------------------------------------------

    def _current(self, db: sqlite3.Connection, namespace: str) -> _Loaded | None:
        """The loaded graph of ``namespace`` if it is loaded and nobody else changed the
        namespace since; a stale one is dropped."""
        loaded = self._loaded.get(namespace)
        if loaded is None:
            return None
        data_version = _data_version(db)
        if loaded.data_version != data_version:
            if _version(db, namespace) != loaded.version:
                del self._loaded[namespace]
                return None
            loaded.data_version = data_version
        self._loaded.move_to_end(namespace)
        return loaded

    def _load(self, db: sqlite3.Connection, namespace: str) -> _Loaded:
        loaded = self._current(db, namespace)
        if loaded is not None:
            return loaded
        loaded = _read(db, namespace)
        self._loaded[namespace] = loaded
        while len(self._loaded) > self._max_loaded:
            self._loaded.popitem(last=False)
        return loaded


def _open(path: Path) -> sqlite3.Connection:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        private_file(path)  # memories are their owner's alone
    except OSError as exc:
        raise StoreUnavailable(f"cannot create {path.parent}: {exc}", retryable=False) from None
    # an empty database, or a graph store from before the header: the tables that are
    # missing, and the header
    return connect(
        path, timeout_s=BUSY_TIMEOUT_S, check=partial(_check, path=path), schema=_SCHEMA
    )


def _check(db: sqlite3.Connection, path: Path) -> bool:
    """``True`` for a kiln graph store; ``False`` for an empty database or a graph store
    written before the header was stamped (both to be made one); a
    :class:`MemoryStoreError` for anything else."""
    return check_mark(
        db,
        path,
        application_id=APPLICATION_ID,
        version=SCHEMA_VERSION,
        store="graph store",
        section="graph",
        adopt=lambda names: not names or _unstamped(db, names),
    )


def _unstamped(db: sqlite3.Connection, names: list[str]) -> bool:
    """Whether the tables ``names`` are exactly this store's, column for column: a graph
    store written before the header was stamped."""
    if names != sorted(_TABLES):
        return False
    for table, columns in _TABLES.items():
        found = db.execute("SELECT name FROM pragma_table_info(?) ORDER BY cid", (table,))
        if tuple(str(name) for (name,) in found) != columns:
            return False
    return True


def _translated(exc: sqlite3.Error, path: Path) -> MemoryStoreError:
    message = str(exc)
    if isinstance(exc, sqlite3.OperationalError):
        if "locked" in message or "busy" in message:
            return StoreUnavailable(f"the graph store {path} is busy: {message}", retryable=True)
        if "unable to open" in message or "readonly" in message:
            return StoreUnavailable(
                f"cannot open the graph store {path}: {message}", retryable=False
            )
    if "not a database" in message:
        return MemoryStoreError(
            f"{path} is not a kiln graph store (not a SQLite database); it was left as it "
            "is: give the policy's graph another path"
        )
    return MemoryStoreError(f"the graph store {path} failed: {type(exc).__name__}: {message}")


def _data_version(db: sqlite3.Connection) -> int:
    return int(db.execute("PRAGMA data_version").fetchone()[0])


def _version(db: sqlite3.Connection, namespace: str) -> int:
    row = db.execute("SELECT version FROM versions WHERE namespace = ?", (namespace,)).fetchone()
    return 0 if row is None else int(row[0])


def _bump(db: sqlite3.Connection, namespace: str) -> int:
    return int(db.execute(_BUMP, (namespace,)).fetchone()[0])


def _read(db: sqlite3.Connection, namespace: str) -> _Loaded:
    """The whole namespace, read in one transaction so it is one consistent snapshot."""
    graph: nx.MultiDiGraph[str] = nx.MultiDiGraph()
    db.execute("BEGIN")
    try:
        data_version = _data_version(db)
        version = _version(db, namespace)
        graph.add_nodes_from(
            (key, {"name": name, "type": kind})
            for key, name, kind in db.execute(
                "SELECT key, name, type FROM entities WHERE namespace = ?", (namespace,)
            )
        )
        # add_edge per row: add_edges_from looks every pair up through views, a third slower
        add = graph.add_edge
        for source, relation, target, agent, run, ts, n in db.execute(
            "SELECT source_key, relation, target_key, agent, run_id, ts, count"
            " FROM relations WHERE namespace = ?",
            (namespace,),
        ):
            add(source, target, relation, agent=agent, run_id=run, ts=ts, count=n)
    finally:
        db.execute("COMMIT")
    return _Loaded(graph, MentionIndex(graph), version, data_version)


def _apply(loaded: _Loaded, rows: list[EntityRow], edges: list[RelationRow]) -> None:
    """What the upserts did to the file, done to the loaded graph (the same rules)."""
    nodes = loaded.graph.nodes
    for row in rows:
        if row.key in nodes:
            if row.type != DEFAULT_TYPE:
                nodes[row.key]["type"] = row.type
        else:
            loaded.graph.add_node(row.key, name=row.name, type=row.type)
            loaded.mentions.add(row.key)
    for edge in edges:
        source, name, target = edge.source_key, edge.relation, edge.target_key
        if loaded.graph.has_edge(source, target, key=name):
            data = loaded.graph.edges[source, target, name]
            data["count"] += 1
            data["ts"] = max(data["ts"], edge.ts)
            data["agent"], data["run_id"] = edge.agent, edge.run_id
        else:
            loaded.graph.add_edge(
                source, target, key=name, agent=edge.agent, run_id=edge.run_id, ts=edge.ts, count=1
            )


_Edge = tuple[str, str, str]  # (source key, relation, target key)


def _walk(graph: nx.MultiDiGraph[str], seeds: list[str], depth: int, limit: int) -> list[Relation]:
    """Breadth first over the undirected graph from ``seeds``: level ``n`` holds the
    relations touching an entity ``n - 1`` hops away that were not in an earlier level;
    within a level the most recent come first. Stops at ``limit``."""
    out: list[Relation] = []
    earlier: set[str] = set()
    frontier = seeds
    for _ in range(depth):
        if not frontier:
            break
        here = set(frontier)
        level: dict[_Edge, dict[str, Any]] = {}
        for node in frontier:
            for source, target, name, data in graph.out_edges(node, keys=True, data=True):
                if target not in earlier:
                    level[source, name, target] = data
            for source, target, name, data in graph.in_edges(node, keys=True, data=True):
                if source not in earlier:
                    level[source, name, target] = data
        room = limit - len(out)
        chosen = heapq.nsmallest(room, level.items(), key=_recent_first)
        nodes = graph.nodes
        out.extend(
            Relation(
                source=nodes[source]["name"],
                relation=name,
                target=nodes[target]["name"],
                agent=data["agent"],
                run_id=data["run_id"],
                ts=data["ts"],
            )
            for (source, name, target), data in chosen
        )
        if len(chosen) < len(level) or len(out) >= limit:
            break
        earlier |= here
        frontier = [
            node
            for node in dict.fromkeys(end for s, _, t in level for end in (s, t))
            if node not in earlier
        ]
    return out


def _recent_first(item: tuple[_Edge, dict[str, Any]]) -> tuple[float, int, _Edge]:
    edge, data = item
    return (-data["ts"], -data["count"], edge)
