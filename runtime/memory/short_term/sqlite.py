"""The SQLite short-term store: conversation windows in one file, shared by the processes of
one machine, so ``kiln run --session S`` picks a conversation up where the last process
left it.

The file (``short_term.db`` in the memory folder unless the policy names a ``path``) holds
two tables:

- ``turns (namespace, seq, id, body)``: one row a turn, ordered by ``seq`` within its
  namespace. ``body`` is the turn's JSON (:meth:`~runtime.memory.records.Turn.as_json`) and
  ``id`` its id, both UTF-8 blobs (``surrogatepass``: a lone surrogate in a model's output
  must not make a turn unstorable, and SQLite text cannot hold one);
- ``windows (namespace, expires)``: one row a window that holds turns, with its expiry in
  wall-clock seconds (``NULL``: never). Each append that names a ``ttl_s`` restarts it. An
  expired window reads as empty; its rows are deleted by the next call that writes it, and
  every :data:`SWEEP_S` an append also deletes every expired window, so namespaces nobody
  reads again do not pile up.

Every write is one ``BEGIN IMMEDIATE`` transaction, which takes SQLite's write lock at once
(a deferred one that read first could fail to upgrade while another process writes):

- append: expiry, the next ``seq`` and the inserts, so appenders in any number of threads
  and processes never lose a turn nor interleave inside one append;
- compact: checks that the window starts with the head ids, deletes them and inserts the
  replacement at ``seq`` values below the lowest one left, so turns appended meanwhile keep
  their place. Two processes compacting the same head: one wins, the other sees the new
  head and returns ``False``.

The file is in WAL mode (readers never wait for the writer) with a busy timeout: a writer
waits that long for another's transaction, then fails with
:class:`~runtime.memory.records.StoreUnavailable` (retryable). Its header carries
:data:`APPLICATION_ID` and :data:`SCHEMA_VERSION` (``PRAGMA application_id``,
``user_version``); a file that is not SQLite, or a SQLite database of something else, is
refused with a :class:`~runtime.memory.records.MemoryStoreError` naming it and left exactly
as it was (it is checked before anything, the journal mode included, is written).

SQLite is synchronous: every call runs in a worker thread, on the store's one connection,
under a lock. Errors are translated here and nowhere else, each naming the file.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TypeVar

import anyio.to_thread

from runtime.memory.records import MemoryStoreError, StoreUnavailable, Turn
from runtime.memory.sqlite_files import check_mark, connect, writing
from runtime.private import private_file

if TYPE_CHECKING:
    from runtime.memory.registry import StoreSettings

__all__ = [
    "APPLICATION_ID",
    "BUSY_TIMEOUT_S",
    "FILENAME",
    "SCHEMA_VERSION",
    "SWEEP_S",
    "SqliteShortTerm",
]

T = TypeVar("T")

#: the file's name in the memory folder (or in a policy's ``path`` when that is a folder)
FILENAME: Final = "short_term.db"
#: ``PRAGMA application_id`` of a kiln short-term store: "ksts" in ASCII
APPLICATION_ID: Final = 0x6B737473
#: ``PRAGMA user_version``: the schema this code writes; a newer file is refused
SCHEMA_VERSION: Final = 1
#: how long a writer waits for another connection's transaction before giving up
BUSY_TIMEOUT_S: Final = 10.0
#: how often (seconds) an append also deletes every expired window
SWEEP_S: Final = 60.0

# ``turns`` keeps its rowid: a turn's JSON is often larger than the small rows WITHOUT ROWID
# suits, and the primary key's index serves every lookup (max, min, the head, a namespace).
_SCHEMA: Final = (
    """CREATE TABLE windows (
        namespace TEXT PRIMARY KEY,
        expires REAL
    ) WITHOUT ROWID""",
    """CREATE TABLE turns (
        namespace TEXT NOT NULL,
        seq INTEGER NOT NULL,
        id BLOB NOT NULL,
        body BLOB NOT NULL,
        PRIMARY KEY (namespace, seq)
    )""",
    f"PRAGMA application_id = {APPLICATION_ID}",
    f"PRAGMA user_version = {SCHEMA_VERSION}",
)

_UPSERT_WINDOW: Final = """
    INSERT INTO windows (namespace, expires) VALUES (?, ?)
    ON CONFLICT (namespace) DO UPDATE SET expires = excluded.expires
"""


def _encode(turn: Turn) -> tuple[bytes, bytes]:
    """(id, body) of ``turn`` as stored."""
    body = json.dumps(turn.as_json(), ensure_ascii=False, separators=(",", ":"))
    return _blob(turn.id), _blob(body)


def _blob(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


def _expired(expires: float | None, now: float) -> bool:
    return expires is not None and expires <= now


class SqliteShortTerm:
    """:class:`~runtime.memory.protocols.ShortTermStore` in the SQLite file ``path`` (see
    the module).

    The file and its folders are created on first use, not here. ``clock`` gives wall-clock
    seconds (expiries are compared across processes; tests pass a fake one); ``timeout_s``
    is how long a write waits for another process's transaction. :meth:`close` closes the
    connection; a later call opens a new one.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        timeout_s: float = BUSY_TIMEOUT_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._path = Path(path)
        self._timeout_s = timeout_s
        self._clock = clock
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        self._next_sweep = 0.0  # the first append of a connection sweeps

    @classmethod
    def from_settings(cls, settings: StoreSettings) -> SqliteShortTerm:
        """``settings.path`` (a file, or a folder to hold :data:`FILENAME`), else
        ``settings.root / FILENAME``."""
        path = settings.path or settings.root / FILENAME
        if path.is_dir():
            path = path / FILENAME
        return cls(path)

    @property
    def path(self) -> Path:
        return self._path

    async def append(
        self, namespace: str, turns: Sequence[Turn], *, ttl_s: int | None = None
    ) -> None:
        """Add ``turns`` at the end in one transaction; ``ttl_s`` restarts the window's
        expiry (``None`` leaves it as it is). Appending nothing changes nothing."""
        if ttl_s is not None and ttl_s < 1:
            raise ValueError(f"a window's ttl_s is at least 1 second, not {ttl_s}")
        if not turns:
            return
        rows = [_encode(turn) for turn in turns]
        await self._call(self._append, namespace, rows, ttl_s)

    async def window(self, namespace: str) -> list[Turn]:
        """Every turn, oldest first; ``[]`` for an unknown or expired window (an expired one
        is deleted)."""
        return await self._call(self._window, namespace)

    async def compact(
        self, namespace: str, head: Sequence[str], replacement: Sequence[Turn]
    ) -> bool:
        """Replace the turns whose ids are ``head`` (the oldest, in order) by
        ``replacement`` in one transaction; ``False`` and no change when the window does
        not start with them. The window keeps its expiry."""
        ids = [_blob(turn_id) for turn_id in head]
        rows = [_encode(turn) for turn in replacement]
        return await self._call(self._compact, namespace, ids, rows)

    async def clear(self, namespace: str) -> int:
        """Forget the window; how many turns it held (``0`` once expired)."""
        return await self._call(self._clear, namespace)

    async def namespaces(self) -> list[str]:
        """The namespaces holding an unexpired window, sorted."""
        return await self._call(self._namespaces)

    async def close(self) -> None:
        """Close the connection (waiting for a call in progress); the next call opens a new
        one. Closing twice is fine."""
        await anyio.to_thread.run_sync(self._close)

    # --- in a worker thread, under the lock ----------------------------------------------

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        # Not abandoned on cancellation: a transaction, once begun, runs to its end.
        return await anyio.to_thread.run_sync(partial(self._locked, fn, *args))

    def _locked(self, fn: Callable[..., T], *args: Any) -> T:
        with self._lock:
            try:
                return fn(self._connection(), *args)
            except sqlite3.Error as exc:
                raise self._translated(exc) from None

    def _connection(self) -> sqlite3.Connection:
        if self._db is None:
            self._db = self._open()
            self._next_sweep = 0.0
        return self._db

    def _close(self) -> None:
        with self._lock:
            db, self._db = self._db, None
            if db is not None:
                db.close()

    def _append(
        self,
        db: sqlite3.Connection,
        namespace: str,
        rows: list[tuple[bytes, bytes]],
        ttl: int | None,
    ) -> None:
        now = self._clock()
        with writing(db):
            if now >= self._next_sweep:
                _sweep(db, now)
                self._next_sweep = now + SWEEP_S
            expires = None if ttl is None else now + ttl
            found = db.execute(
                "SELECT expires FROM windows WHERE namespace = ?", (namespace,)
            ).fetchone()
            if found is not None and _expired(found[0], now):
                db.execute("DELETE FROM turns WHERE namespace = ?", (namespace,))
                found = None
            if found is None or ttl is not None:
                db.execute(_UPSERT_WINDOW, (namespace, expires))
            (last,) = db.execute(
                "SELECT max(seq) FROM turns WHERE namespace = ?", (namespace,)
            ).fetchone()
            start = 1 if last is None else int(last) + 1
            db.executemany(
                "INSERT INTO turns (namespace, seq, id, body) VALUES (?, ?, ?, ?)",
                [(namespace, start + i, turn_id, body) for i, (turn_id, body) in enumerate(rows)],
            )

    def _window(self, db: sqlite3.Connection, namespace: str) -> list[Turn]:
        now = self._clock()
        # One statement: one consistent snapshot of the expiry and the turns.
        bodies = db.execute(
            """SELECT t.body FROM windows AS w JOIN turns AS t ON t.namespace = w.namespace
               WHERE w.namespace = ? AND (w.expires IS NULL OR w.expires > ?)
               ORDER BY t.seq""",
            (namespace, now),
        ).fetchall()
        if not bodies:
            found = db.execute(
                "SELECT expires FROM windows WHERE namespace = ?", (namespace,)
            ).fetchone()
            if found is not None and _expired(found[0], now):
                with writing(db):
                    _live(db, namespace, self._clock())  # deletes it if still expired
            return []
        try:
            return [Turn.from_json(json.loads(_text(body))) for (body,) in bodies]
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise MemoryStoreError(
                f"the short-term store {self._path} holds something that is not a turn in "
                f"the window {namespace!r} ({type(exc).__name__}: {exc})"
            ) from exc

    def _compact(
        self,
        db: sqlite3.Connection,
        namespace: str,
        head: list[bytes],
        rows: list[tuple[bytes, bytes]],
    ) -> bool:
        with writing(db):
            live = _live(db, namespace, self._clock())
            if head:
                found = db.execute(
                    "SELECT seq, id FROM turns WHERE namespace = ? ORDER BY seq LIMIT ?",
                    (namespace, len(head)),
                ).fetchall()
                if [bytes(turn_id) for _, turn_id in found] != head:
                    return False
                db.execute(
                    "DELETE FROM turns WHERE namespace = ? AND seq <= ?", (namespace, found[-1][0])
                )
            (first,) = db.execute(
                "SELECT min(seq) FROM turns WHERE namespace = ?", (namespace,)
            ).fetchone()
            if rows:
                start = (1 if first is None else int(first)) - len(rows)
                db.executemany(
                    "INSERT INTO turns (namespace, seq, id, body) VALUES (?, ?, ?, ?)",
                    [(namespace, start + i, tid, body) for i, (tid, body) in enumerate(rows)],
                )
                if not live:
                    db.execute(_UPSERT_WINDOW, (namespace, None))
            elif first is None and live:  # an empty window is no window, as in Redis
                db.execute("DELETE FROM windows WHERE namespace = ?", (namespace,))
            return True

    def _clear(self, db: sqlite3.Connection, namespace: str) -> int:
        with writing(db):
            if not _live(db, namespace, self._clock()):
                return 0
            gone = db.execute("DELETE FROM turns WHERE namespace = ?", (namespace,)).rowcount
            db.execute("DELETE FROM windows WHERE namespace = ?", (namespace,))
            return int(gone)

    def _namespaces(self, db: sqlite3.Connection) -> list[str]:
        rows = db.execute(
            "SELECT namespace FROM windows WHERE expires IS NULL OR expires > ?",
            (self._clock(),),
        )
        return sorted(str(namespace) for (namespace,) in rows)

    # --- opening the file -----------------------------------------------------------------

    def _open(self) -> sqlite3.Connection:
        try:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            private_file(self._path)  # memories are their owner's alone
        except OSError as exc:
            raise StoreUnavailable(
                f"cannot create the folder of the short-term store {self._path}: {exc}",
                retryable=False,
            ) from None
        return connect(self._path, timeout_s=self._timeout_s, check=self._check, schema=_SCHEMA)

    def _check(self, db: sqlite3.Connection) -> bool:
        """``True`` for a kiln short-term store, ``False`` for an empty database; a
        :class:`MemoryStoreError` for anything else."""
        return check_mark(
            db,
            self._path,
            application_id=APPLICATION_ID,
            version=SCHEMA_VERSION,
            store="short-term store",
            section="short_term",
        )

    def _translated(self, exc: sqlite3.Error) -> MemoryStoreError:
        message = str(exc)
        if isinstance(exc, sqlite3.OperationalError):
            if "locked" in message or "busy" in message:
                return StoreUnavailable(
                    f"the short-term store {self._path} stayed locked for more than "
                    f"{self._timeout_s:g} s (another process is writing to it): {message}"
                )
            if "unable to open" in message or "readonly" in message:
                return StoreUnavailable(
                    f"cannot open or write the short-term store {self._path}: {message}",
                    retryable=False,
                )
        if "not a database" in message:
            return MemoryStoreError(
                f"{self._path} is not a kiln short-term store (not a SQLite database); it was "
                "left as it is: give the policy's short_term another path"
            )
        return MemoryStoreError(
            f"the short-term store {self._path} failed: {type(exc).__name__}: {message}"
        )


def _text(body: object) -> str:
    if isinstance(body, bytes):
        return body.decode("utf-8", "surrogatepass")
    return str(body)


def _live(db: sqlite3.Connection, namespace: str, now: float) -> bool:
    """Whether ``namespace`` has a window now; an expired one is deleted (in the caller's
    write transaction)."""
    found = db.execute("SELECT expires FROM windows WHERE namespace = ?", (namespace,)).fetchone()
    if found is None:
        return False
    if _expired(found[0], now):
        db.execute("DELETE FROM turns WHERE namespace = ?", (namespace,))
        db.execute("DELETE FROM windows WHERE namespace = ?", (namespace,))
        return False
    return True


def _sweep(db: sqlite3.Connection, now: float) -> None:
    """Delete every expired window (in the caller's write transaction)."""
    db.execute(
        "DELETE FROM turns WHERE namespace IN (SELECT namespace FROM windows WHERE expires <= ?)",
        (now,),
    )
    db.execute("DELETE FROM windows WHERE expires <= ?", (now,))
