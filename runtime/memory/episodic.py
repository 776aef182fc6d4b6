"""Episodic memory: the agent's past runs, searchable by meaning, time, status and session.

Episodes are built from the trace store (:mod:`runtime.trace`) and kept beside it, in the
same SQLite file (``.kiln/runs.db``), in tables of their own; the trace's tables are only
ever read. One episode is one agent's part in one run: an agent run gives one, a crew run
one per agent that took part, so an agent's search also finds the crew runs it worked in.

What an episode holds, and how it is built from a run's events: :mod:`runtime.memory.episodes`.
This module keeps episodes with their vectors and searches them.

Tenancy: a run's tenant is the ``user`` of its ``run.start`` event
(:data:`~runtime.memory.records.DEFAULT_TENANT` when it names none) and its session the
``session`` there. :meth:`EpisodicStore.search` and :meth:`EpisodicStore.recent` require the
tenant and filter on it in SQL, before anything is scored: one tenant never sees another's
runs.

Embedders: each row records the embedder (``name`` and ``dim``) that made its vector, and
vectors of different embedders are never compared. A search with another embedder than a
row was indexed with re-embeds that row from its stored text first (and keeps the new
vector), so switching embedders loses no history; it costs one embedding per such row, once.

Concurrency: one connection, used from worker threads (``anyio.to_thread.run_sync``) under a
lock; one more lock serialises writers (indexing, re-embedding, deleting), and a sync checks
under it which runs are still due, so two syncs of one store never embed a run twice. Syncs
of several stores or processes may embed a run twice, but write it once: the write checks
again. The trace store, in other connections and processes, writes on undisturbed (the file
is in WAL mode; embedding is done outside transactions, which stay short).

Errors: SQLite and trace store failures become :class:`~runtime.memory.records.MemoryStoreError`
(:class:`~runtime.memory.records.StoreUnavailable`, retryable, when the file stayed locked);
an embedder's failure too, keeping its ``retryable``.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final

import anyio.to_thread

from runtime.embed import Embedder, EmbedderError, get_embedder
from runtime.memory.episodes import Episode, episodes_from_events, storable
from runtime.memory.records import MemoryStoreError, StoreUnavailable
from runtime.trace import RunRow, TraceError, TraceStore

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

__all__ = ["SCHEMA_VERSION", "EpisodicStore"]

#: The version of the episodic tables this code writes; a newer one is refused.
SCHEMA_VERSION: Final = 1
#: Runs read, embedded and written per transaction by :meth:`EpisodicStore.sync`.
_SYNC_BATCH: Final = 64
#: Vectors scored per numpy batch: a search's memory stays bounded however long the history.
_SCORE_BATCH: Final = 4096

_SCHEMA: Final = f"""
CREATE TABLE IF NOT EXISTS episodic_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
INSERT OR IGNORE INTO episodic_meta (key, value) VALUES ('schema_version', '{SCHEMA_VERSION}');
CREATE TABLE IF NOT EXISTS episode_runs (
    run_id TEXT PRIMARY KEY, status TEXT NOT NULL, indexed REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS episodes (
    run_id TEXT NOT NULL, agent TEXT NOT NULL, target TEXT NOT NULL, tenant TEXT NOT NULL,
    session TEXT, status TEXT NOT NULL, started REAL NOT NULL, ended REAL, inputs TEXT,
    prompt TEXT NOT NULL, steps TEXT NOT NULL, outcome TEXT NOT NULL, text TEXT NOT NULL,
    embedder TEXT NOT NULL, dim INTEGER NOT NULL, vector BLOB NOT NULL,
    PRIMARY KEY (run_id, agent)
);
CREATE INDEX IF NOT EXISTS episodes_scope ON episodes (tenant, agent, started);
"""
_COLUMNS: Final = (
    "run_id, agent, target, tenant, session, status, started, ended, inputs, prompt, steps,"
    " outcome, text"
)
# ?1 agent, ?2 tenant, ?3 since, ?4 until, ?5 statuses (a JSON list or NULL), ?6 session
_SCOPE: Final = (
    "agent = ?1 AND tenant = ?2 AND (?3 IS NULL OR started >= ?3)"
    " AND (?4 IS NULL OR started < ?4)"
    " AND (?5 IS NULL OR status IN (SELECT value FROM json_each(?5)))"
    " AND (?6 IS NULL OR session = ?6)"
)
# ?7 embedder name, ?8 dim; a vector of the wrong length counts as stale, never misread
_CURRENT: Final = "embedder = ?7 AND dim = ?8 AND length(vector) = ?8 * 4"
# Finished runs never indexed, or indexed with another status than they have now.
_DUE: Final = (
    "SELECT r.id FROM runs AS r LEFT JOIN episode_runs AS e ON e.run_id = r.id"
    " WHERE r.status IS NOT NULL AND r.status != 'running'"
    " AND (e.run_id IS NULL OR e.status IS NOT r.status)"
)
_PENDING_RUNS: Final = f"{_DUE} ORDER BY r.started, r.id"
_DUE_RUNS: Final = f"{_DUE} AND r.id IN (SELECT value FROM json_each(?))"
_KNOWN_RUNS: Final = "SELECT id FROM runs WHERE id IN (SELECT value FROM json_each(?))"
_INSERT_EPISODE: Final = f"INSERT INTO episodes VALUES ({', '.join('?' * 16)})"


# -- the store --------------------------------------------------------------------------------


class EpisodicStore:
    """Episodes of the runs in a trace store file, with their vectors, beside its tables.

    ``embedder`` ``None`` means :func:`runtime.embed.get_embedder`'s choice (``$KILN_EMBEDDER``,
    else the offline hashing embedder). Opening creates the trace store's tables when the
    file is new, so the two can be opened in either order; a SQLite file that is not a kiln
    trace store is refused with :class:`MemoryStoreError`.
    """

    def __init__(
        self, path: Path | str = ".kiln/runs.db", embedder: Embedder | None = None
    ) -> None:
        self.path = Path(path)
        self.embedder = embedder if embedder is not None else get_embedder()
        self._conn: sqlite3.Connection | None = None
        self._db_lock = threading.Lock()  # the connection, one statement group at a time
        self._write_lock = threading.Lock()  # writers, including their embedding work
        # The trace store checks the file is a kiln store (or makes it one) before we add to it.
        with _translated(self.path):
            TraceStore(self.path).close()
        try:
            self._conn = sqlite3.connect(
                self.path, timeout=10.0, isolation_level=None, check_same_thread=False
            )
            with self._transaction() as conn:
                self._prepare(conn)
        except BaseException:
            self._close_connection()
            raise

    # -- indexing -------------------------------------------------------------------------

    async def index(self, run_id: str) -> list[Episode]:
        """(Re-)index one run, finished or not, and return its episodes. A running run is
        indexed as it stands; :meth:`sync` indexes it again once its status changes."""
        _, episodes = await anyio.to_thread.run_sync(self._index_runs, [run_id], False)
        return episodes

    async def sync(self) -> int:
        """Index every finished run not indexed yet, or whose status changed since: how
        many runs. Idempotent; history recorded before episodic memory was on becomes
        searchable. Episodes removed by :meth:`delete` stay removed unless their run's
        status changes."""
        pending = await anyio.to_thread.run_sync(self._pending)
        indexed = 0
        for first in range(0, len(pending), _SYNC_BATCH):
            batch = pending[first : first + _SYNC_BATCH]
            indexed += (await anyio.to_thread.run_sync(self._index_runs, batch, True))[0]
        return indexed

    # -- reading --------------------------------------------------------------------------

    async def search(
        self,
        *,
        agent: str,
        tenant: str,
        query: str,
        k: int = 3,
        since: float | None = None,
        until: float | None = None,
        status: Sequence[str] | str | None = None,
        session: str | None = None,
    ) -> list[tuple[Episode, float]]:
        """Up to ``k`` episodes of ``agent`` for ``tenant`` nearest ``query``, best first,
        with their relevance: cosine similarity clamped to 0..1, ties broken newest first.

        Filters apply before scoring: ``since <= started < until``, ``status`` (one status
        or several), ``session``. A blank query scores nothing: the newest episodes come
        back, each with relevance 0 (as do episodes sharing nothing with a query).
        """
        if k <= 0:
            return []
        scope = self._scope(agent, tenant, since, until, status, session)
        if not query.strip():
            return [(e, 0.0) for e in await anyio.to_thread.run_sync(self._newest, scope, k)]
        return await anyio.to_thread.run_sync(self._nearest, scope, query, k)

    async def recent(self, *, agent: str, tenant: str, limit: int = 10) -> list[Episode]:
        """The newest ``limit`` episodes of ``agent`` for ``tenant``, newest first."""
        scope = self._scope(agent, tenant, None, None, None, None)
        return await anyio.to_thread.run_sync(self._newest, scope, max(limit, 0))

    async def count(self, *, agent: str | None = None, tenant: str | None = None) -> int:
        """How many episodes, of one agent and/or tenant or all of them."""
        sql = "SELECT count(*) FROM episodes WHERE (?1 IS NULL OR agent = ?1)"
        sql += " AND (?2 IS NULL OR tenant = ?2)"
        rows = await anyio.to_thread.run_sync(self._query, sql, (agent, tenant))
        return int(rows[0][0])

    # -- forgetting and lifetime ----------------------------------------------------------

    async def delete(
        self,
        *,
        agent: str | None = None,
        tenant: str | None = None,
        before: float | None = None,
    ) -> int:
        """Forget episodes: of ``agent``, of ``tenant``, of runs started before ``before``
        (all that apply; no argument forgets every episode). Returns how many. The runs stay
        in the trace store."""
        return await anyio.to_thread.run_sync(self._delete, agent, tenant, before)

    async def close(self) -> None:
        """Close the connection; closing twice does nothing."""
        await anyio.to_thread.run_sync(self._close_connection)

    async def __aenter__(self) -> EpisodicStore:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # -- work done in worker threads ------------------------------------------------------

    def _pending(self) -> list[str]:
        return [str(row[0]) for row in self._query(_PENDING_RUNS, ())]

    def _index_runs(self, run_ids: Sequence[str], sync: bool) -> tuple[int, list[Episode]]:
        """Index runs: how many, and their episodes. For ``sync``, only those still due (a
        concurrent sync may have done some meanwhile); otherwise each must exist."""
        with self._write_lock:
            sql = _DUE_RUNS if sync else _KNOWN_RUNS
            known = {row[0] for row in self._query(sql, (json.dumps(list(run_ids)),))}
            missing = [run_id for run_id in run_ids if run_id not in known]
            if missing and not sync:
                raise MemoryStoreError(f"{self.path}: no run {missing[0]!r} to index")
            found: list[tuple[RunRow, list[Episode]]] = []
            with _translated(self.path), TraceStore(self.path) as trace:
                for run_id in (run_id for run_id in run_ids if run_id in known):
                    run = trace.get_run(run_id)  # an exact id: never taken as a prefix
                    found.append((run, episodes_from_events(run, trace.events(run_id))))
            episodes = [e for _, runs in found for e in runs]
            vectors = iter(self._embed([e.text for e in episodes]))
            written = 0
            with self._transaction() as conn:
                for run, own in found:
                    rows = [self._row(e, next(vectors)) for e in own]
                    if sync and _indexed_status(conn, run.id) == run.status:
                        continue  # another store or process synced it meanwhile
                    conn.execute("DELETE FROM episodes WHERE run_id = ?", (run.id,))
                    conn.execute(
                        "INSERT OR REPLACE INTO episode_runs VALUES (?, ?, ?)",
                        (run.id, run.status, time.time()),
                    )
                    conn.executemany(_INSERT_EPISODE, rows)
                    written += 1
        return written, episodes

    def _nearest(self, scope: tuple[Any, ...], query: str, k: int) -> list[tuple[Episode, float]]:
        """Score the scope's vectors against ``query`` in one pass; rows of another embedder
        come back with their text instead, and are re-embedded (and kept) on the way."""
        import numpy as np

        wanted = self._embed([query])[0]
        sql = (
            f"SELECT run_id, agent, started, CASE WHEN {_CURRENT} THEN vector END,"
            f" CASE WHEN {_CURRENT} THEN NULL ELSE text END FROM episodes WHERE {_SCOPE}"
        )
        keys: list[tuple[str, str]] = []
        started: list[float] = []
        scores: list[npt.NDArray[np.float32]] = []
        stale: list[tuple[Any, ...]] = []
        with self._reading() as conn:
            cursor = conn.execute(sql, scope)
            while batch := cursor.fetchmany(_SCORE_BATCH):
                current = [row for row in batch if row[3] is not None]
                stale += [row for row in batch if row[3] is None]
                keys += [(row[0], row[1]) for row in current]
                started += [row[2] for row in current]
                matrix = np.frombuffer(b"".join(row[3] for row in current), dtype="<f4")
                scores.append(matrix.reshape(len(current), wanted.shape[0]) @ wanted)
        if stale:
            keys += [(row[0], row[1]) for row in stale]
            started += [row[2] for row in stale]
            scores.append(self._reembed(stale) @ wanted)
        if not keys:
            return []
        relevance = np.clip(np.concatenate(scores), 0.0, 1.0)
        # lexsort: the last key sorts first; newest first among equal scores.
        order = np.lexsort((-np.asarray(started), -relevance))[:k]
        best = [(keys[i], float(relevance[i])) for i in order]
        by_key = {(e.run_id, e.agent): e for e in self._episodes([key for key, _ in best])}
        return [(by_key[key], score) for key, score in best if key in by_key]

    def _reembed(self, rows: Sequence[tuple[Any, ...]]) -> npt.NDArray[np.float32]:
        """Vectors of this embedder for ``(run_id, agent, started, _, text)`` rows made by
        another, stored in their place."""
        vectors = self._embed([str(row[4]) for row in rows])
        name, dim = self.embedder.name, self.embedder.dim
        with self._write_lock, self._transaction() as conn:
            conn.executemany(
                "UPDATE episodes SET embedder = ?, dim = ?, vector = ?"
                " WHERE run_id = ? AND agent = ?",
                [
                    (name, dim, _blob(v), row[0], row[1])
                    for row, v in zip(rows, vectors, strict=True)
                ],
            )
        return vectors

    def _newest(self, scope: tuple[Any, ...], limit: int) -> list[Episode]:
        sql = f"SELECT {_COLUMNS} FROM episodes WHERE {_SCOPE}"
        sql += " ORDER BY started DESC, run_id DESC LIMIT ?7"
        return [_decode(row) for row in self._query(sql, (*scope[:6], limit))]

    def _episodes(self, keys: Sequence[tuple[str, str]]) -> list[Episode]:
        sql = f"SELECT {_COLUMNS} FROM episodes WHERE run_id = ? AND agent = ?"
        with self._reading() as conn:
            rows = [conn.execute(sql, key).fetchone() for key in keys]
        return [_decode(row) for row in rows if row is not None]

    def _delete(self, agent: str | None, tenant: str | None, before: float | None) -> int:
        with self._write_lock, self._transaction() as conn:
            return conn.execute(
                "DELETE FROM episodes WHERE (?1 IS NULL OR agent = ?1)"
                " AND (?2 IS NULL OR tenant = ?2) AND (?3 IS NULL OR started < ?3)",
                (agent, tenant, before),
            ).rowcount

    # -- internals ------------------------------------------------------------------------

    def _scope(
        self,
        agent: str,
        tenant: str,
        since: float | None,
        until: float | None,
        status: Sequence[str] | str | None,
        session: str | None,
    ) -> tuple[Any, ...]:
        """The SQL parameters of :data:`_SCOPE` and :data:`_CURRENT`."""
        if not isinstance(agent, str) or not isinstance(tenant, str):
            raise TypeError("agent and tenant must be strings: a search is always for one")
        statuses = None
        if status is not None:  # one status string is one status, not its letters
            statuses = json.dumps([status] if isinstance(status, str) else list(status))
        names = (storable(agent), storable(tenant), since, until, statuses)
        clean_session = None if session is None else storable(session)
        return (*names, clean_session, self.embedder.name, self.embedder.dim)

    def _row(self, episode: Episode, vector: npt.NDArray[np.float32]) -> tuple[Any, ...]:
        return (
            episode.run_id,
            episode.agent,
            episode.target,
            episode.tenant,
            episode.session,
            episode.status,
            episode.started,
            episode.ended,
            None if episode.inputs is None else json.dumps(episode.inputs, default=repr),
            episode.prompt,
            json.dumps(list(episode.steps)),
            episode.outcome,
            episode.text,
            self.embedder.name,
            self.embedder.dim,
            _blob(vector),
        )

    def _embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        import numpy as np

        if not texts:
            return np.zeros((0, self.embedder.dim), dtype=np.float32)
        try:
            vectors = self.embedder.embed(texts)
        except EmbedderError as exc:
            raise MemoryStoreError(
                f"{self.path}: cannot embed episodes with {self.embedder.name}: {exc}",
                retryable=exc.retryable,
            ) from exc
        return np.asarray(vectors, dtype=np.float32).reshape(len(texts), self.embedder.dim)

    def _prepare(self, conn: sqlite3.Connection) -> None:
        exists = conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'episodic_meta'"
        ).fetchone()
        if exists is not None:
            row = conn.execute(
                "SELECT value FROM episodic_meta WHERE key = 'schema_version'"
            ).fetchone()
            version = int(row[0]) if row is not None and str(row[0]).isdigit() else None
            if version is None or version > SCHEMA_VERSION:
                raise MemoryStoreError(
                    f"{self.path}: episodic memory schema version {version} is not one this kiln"
                    f" understands ({SCHEMA_VERSION}): upgrade kiln to read it"
                )
        for statement in _SCHEMA.split(";"):
            if statement.strip():
                conn.execute(statement)

    def _query(self, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        with self._reading() as conn:
            return conn.execute(sql, params).fetchall()

    @contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        with self._db_lock, _translated(self.path):
            yield self._connection()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._db_lock, _translated(self.path):
            conn = self._connection()
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.rollback()
                raise

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise MemoryStoreError(f"{self.path}: the episodic store is closed")
        return self._conn

    def _close_connection(self) -> None:
        with self._db_lock:
            conn, self._conn = self._conn, None
            if conn is not None:
                conn.close()


@contextmanager
def _translated(path: Path) -> Iterator[None]:
    """SQLite's and the trace store's errors, as memory store errors."""
    try:
        yield
    except TraceError as exc:
        raise _error(path, str(exc)) from exc
    except sqlite3.Error as exc:
        raise _error(path, f"{path}: {exc}") from exc


def _error(path: Path, message: str) -> MemoryStoreError:
    if "locked" in message or "busy" in message:
        return StoreUnavailable(f"{path}: episodic memory stayed locked by another writer")
    if "not a database" in message:
        message = f"{path}: not a kiln trace store (file is not a database)"
    return MemoryStoreError(message)


def _indexed_status(conn: sqlite3.Connection, run_id: str) -> str | None:
    row = conn.execute("SELECT status FROM episode_runs WHERE run_id = ?", (run_id,)).fetchone()
    return None if row is None else str(row[0])


def _blob(vector: npt.NDArray[np.float32]) -> bytes:
    return bytes(vector.astype("<f4").tobytes())


def _decode(row: tuple[Any, ...]) -> Episode:
    run_id, agent, target, tenant, session, status, started, ended = row[:8]
    inputs, prompt, steps, outcome, text = row[8:]
    return Episode(
        run_id=run_id,
        agent=agent,
        target=target,
        tenant=tenant,
        session=session,
        status=status,
        started=started,
        ended=ended,
        inputs=None if inputs is None else json.loads(inputs),
        prompt=prompt,
        steps=tuple(json.loads(steps)),
        outcome=outcome,
        text=text,
    )
