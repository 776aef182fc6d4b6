"""The trace store: every run and its events in one SQLite file (``.kiln/runs.db``).

A run's row is written when it starts, with status ``running``, so a run whose process
crashed stays visible; its events follow in batches; :meth:`TraceStore.finish_run` writes
the last batch and the outcome in one transaction.

Concurrency: the file is in WAL mode with a busy timeout, so several kiln processes (or
several :class:`TraceStore` objects) can write one database; readers never block writers.
Within a process, one :class:`TraceStore` is one connection, to be used from one thread
(the event loop's): sinks are called synchronously from the agent loop, and every write is
a short transaction that opens and commits within one call, so thousands of concurrent runs
on one event loop share the store safely. Using it from another thread raises
:class:`TraceError`, unless :meth:`TraceStore.release` handed it over.

Errors from SQLite never escape as they are: every ``sqlite3.Error`` becomes a
:class:`TraceError` whose message names the file and says what is wrong.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Final, cast

import anyio
import anyio.lowlevel

from runtime.events import Event, EventType
from runtime.masking import mask_data
from runtime.private import private_file

__all__ = [
    "FLUSH_EVERY",
    "SCHEMA_VERSION",
    "ApprovalRow",
    "JournalEntry",
    "RunRow",
    "TraceError",
    "TraceStore",
    "owner_alive",
    "this_owner",
]

#: The schema this code writes. A store with a newer version is refused, never guessed at;
#: an older one is upgraded in place (:data:`_UPGRADES`).
SCHEMA_VERSION: Final = 3
#: Buffered events are written in one ``executemany`` once this many are pending.
FLUSH_EVERY: Final = 256
#: A unique prefix of a run id this long (or longer) finds the run.
MIN_PREFIX: Final = 4

# The base schema (version 1); :data:`_UPGRADES` bring a store to SCHEMA_VERSION.
# ``events`` is a rowid table on purpose: rows are appended in arrival order and only the
# small (run_id, seq) index takes the scattered inserts of interleaved runs (WITHOUT ROWID
# would scatter whole rows, and write about half as fast).
_SCHEMA: Final = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
INSERT INTO meta (key, value) VALUES ('schema_version', '1');
CREATE TABLE runs (
    id TEXT PRIMARY KEY, target TEXT, kind TEXT, status TEXT, started REAL, ended REAL,
    inputs TEXT, output TEXT, error TEXT, usage TEXT, plan_hash TEXT, model TEXT
);
CREATE INDEX runs_started ON runs (started);
CREATE TABLE events (
    run_id TEXT NOT NULL, seq INTEGER NOT NULL, type TEXT, step INTEGER, ts REAL,
    duration_ms REAL, agent TEXT, task TEXT, data TEXT,
    PRIMARY KEY (run_id, seq)
);
"""
# Version 2: durable runs. ``request`` is what it takes to run the run again (spec paths,
# target, inputs, options) and ``owner`` the process running it (host, pid, its start
# time), so a run whose process died shows as interrupted; ``journal`` holds every step
# result the run depends on, by the step's stable identity (see runtime/journal.py).
_UPGRADES: Final = {
    2: (
        "ALTER TABLE runs ADD COLUMN request TEXT",
        "ALTER TABLE runs ADD COLUMN owner TEXT",
        "CREATE TABLE journal (run_id TEXT NOT NULL, step TEXT NOT NULL, kind TEXT NOT NULL,"
        " state TEXT NOT NULL, ts REAL, data TEXT, PRIMARY KEY (run_id, step)) WITHOUT ROWID",
    ),
    # Version 3: approvals that outlive the process, one per (run, step), decided once.
    3: (
        "CREATE TABLE approvals (id TEXT PRIMARY KEY, run_id TEXT NOT NULL, step TEXT NOT NULL,"
        " tool TEXT, arguments TEXT, agent TEXT, created REAL, status TEXT NOT NULL,"
        " reason TEXT, decided_by TEXT, decided REAL, UNIQUE (run_id, step))",
    ),
}
_RUN_COLUMNS: Final = (
    "id, target, kind, status, started, ended, inputs, output, error, usage, plan_hash, model,"
    " request, owner"
)
_INSERT_STEPS: Final = "INSERT OR REPLACE INTO journal VALUES (?, ?, ?, ?, ?, ?)"
# A replayed event (same run and seq) replaces the stored one rather than failing its batch.
_INSERT_EVENTS: Final = "INSERT OR REPLACE INTO events VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"

_EventRow = tuple[str, int, str, int, float, float | None, str | None, str | None, str]


class TraceError(Exception):
    """The trace store cannot be opened, read or written; the message says why."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RunRow:
    """One run as stored, its JSON columns decoded."""

    id: str
    target: str
    kind: str
    status: str
    started: float
    ended: float | None
    inputs: Any
    output: Any
    error: str | None
    usage: dict[str, Any] | None
    plan_hash: str | None
    model: str | None
    #: how the run was asked for (spec paths, target, inputs, options): what resuming needs
    request: dict[str, Any] | None = None
    #: the process that runs (or ran) it: ``{"host", "pid", "since"}``
    owner: dict[str, Any] | None = None

    @property
    def state(self) -> str:
        """The status, except that a ``running`` run whose process is gone is
        ``interrupted`` (it can be resumed)."""
        if self.status == "running" and self.owner is not None and not owner_alive(self.owner):
            return "interrupted"
        return self.status

    @property
    def duration_s(self) -> float | None:
        """Seconds from start to end; ``None`` while the run has not ended."""
        return None if self.ended is None else max(0.0, self.ended - self.started)

    @property
    def tokens(self) -> int | None:
        """Prompt plus completion tokens, when the run reported its usage."""
        if not self.usage:
            return None
        total = self.usage.get("total_tokens")
        if isinstance(total, int):
            return total
        parts = (self.usage.get("prompt_tokens"), self.usage.get("completion_tokens"))
        return sum(p for p in parts if isinstance(p, int))

    @property
    def cost_usd(self) -> float | None:
        cost = (self.usage or {}).get("cost_usd")
        return float(cost) if isinstance(cost, int | float) else None

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "target": self.target,
            "kind": self.kind,
            "status": self.status,
            "started": self.started,
            "ended": self.ended,
            "duration_s": self.duration_s,
            "inputs": self.inputs,
            "output": self.output,
            "error": self.error,
            "usage": self.usage,
            "plan_hash": self.plan_hash,
            "model": self.model,
            "state": self.state,
        }


class TraceStore:
    """Runs and their events in a SQLite file; see the module docstring for concurrency."""

    def __init__(self, path: str | Path = ".kiln/runs.db", *, timeout_s: float = 10.0) -> None:
        self.path = Path(path)
        self.timeout_s = timeout_s
        self._pending: list[_EventRow] = []
        self._steps: list[tuple[str, str, str, str, float, str | None]] = []
        self._batch: _Batch | None = None
        self._conn: sqlite3.Connection | None = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise TraceError(f"{self.path}: cannot create its folder ({_reason(exc)})") from exc
        try:
            # Autocommit mode: every write below opens its own BEGIN IMMEDIATE transaction.
            # One thread uses it (see _connection), not always the one that opened it.
            self._owner: int | None = threading.get_ident()
            private_file(self.path)  # runs, events and journals are the owner's alone
            self._conn = sqlite3.connect(
                self.path, timeout=timeout_s, isolation_level=None, check_same_thread=False
            )
            self._prepare(self._conn)
        except sqlite3.Error as exc:
            self._close_connection()
            raise self._error(exc) from exc
        except TraceError:
            self._close_connection()
            raise

    # -- writing ------------------------------------------------------------------------

    def start_run(
        self,
        run_id: str,
        *,
        target: str,
        kind: str,
        inputs: Mapping[str, Any],
        started: float,
        plan_hash: str | None = None,
        model: str | None = None,
        request: Mapping[str, Any] | None = None,
    ) -> None:
        """Record a run as ``running`` at once, so it is visible even if the process dies;
        this process is its owner."""
        row = (_text(run_id), _text(target), _text(kind), "running", started)
        extra = (_json(inputs), _opt_text(plan_hash), _opt_text(model))
        more = (_json(request), _json(this_owner()))
        try:
            with self._transaction() as conn:
                conn.execute(
                    "INSERT INTO runs (id, target, kind, status, started, inputs, plan_hash,"
                    " model, request, owner) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    row + extra + more,
                )
        except TraceError as exc:
            if isinstance(exc.__cause__, sqlite3.IntegrityError):
                raise TraceError(f"{self.path}: run {run_id} is already in the store") from exc
            raise

    def sink(self, run_id: str) -> Callable[[Event], None]:
        """An event sink for :class:`runtime.events.EventBus`: buffers, then writes in batches.

        The buffer is shared by every run of this store, so at most :data:`FLUSH_EVERY`
        events wait in memory however many runs are going on.
        """
        pending, flush, key = self._pending, self.flush, _text(run_id)

        def write(event: Event) -> None:
            try:
                data = _encode(event.data)
            except (TypeError, ValueError, RecursionError):  # circular, odd keys, bad repr
                data = _encode({"unserialisable": _safe_repr(event.data)})
            pending.append(
                (
                    key,
                    event.seq,
                    event.type,
                    event.step,
                    event.ts,
                    event.duration_ms,
                    event.agent,
                    event.task,
                    data,
                )
            )
            if len(pending) >= FLUSH_EVERY:
                flush()

        return write

    def flush(self) -> None:
        """Write the buffered events and journal steps of every run now."""
        if self._pending or self._steps:
            with self._transaction() as conn:
                written, steps = self._write_pending(conn)
            del self._pending[:written]  # only once committed: on failure they stay buffered
            del self._steps[:steps]

    def finish_run(
        self,
        run_id: str,
        *,
        status: str,
        ended: float,
        output: Any = None,
        error: str | None = None,
        usage: Mapping[str, Any] | None = None,
    ) -> None:
        """Write the buffered events and the run's outcome in one transaction."""
        values = (_text(status), ended, _json(output), _opt_text(error), _json(usage))
        with self._transaction() as conn:
            written, steps = self._write_pending(conn)
            updated = conn.execute(
                "UPDATE runs SET status = ?, ended = ?, output = ?, error = ?, usage = ?"
                " WHERE id = ?",
                (*values, _text(run_id)),
            ).rowcount
            if updated == 0:
                raise TraceError(f"{self.path}: cannot finish run {run_id}: it was never started")
        del self._pending[:written]
        del self._steps[:steps]

    def resume_run(self, run_id: str) -> dict[str, JournalEntry]:
        """Take over a run that is not going on (interrupted, stopped, or waiting for a
        person) to carry it on: this process becomes its owner, its status ``running``, and
        its events are dropped (the resumed run replays them all, from its journal, with
        the same sequence numbers). Returns the journal. Refused for a run that succeeded
        or whose process is still alive."""
        with self._transaction() as conn:
            found = conn.execute(
                "SELECT status, owner FROM runs WHERE id = ?", (_text(run_id),)
            ).fetchone()
            if found is None:
                raise TraceError(f"no run '{run_id}' in {self.path}")
            status, owner = found[0], _decode(found[1])
            if status == "succeeded":
                raise TraceError(f"run {run_id} succeeded: there is nothing to resume")
            if status == "running" and isinstance(owner, dict) and owner_alive(owner):
                raise TraceError(
                    f"run {run_id} is still running (process {owner.get('pid')} on "
                    f"{owner.get('host')}): stop it first"
                )
            conn.execute(
                "UPDATE runs SET status = 'running', ended = NULL, output = NULL, error = NULL,"
                " owner = ? WHERE id = ?",
                (_json(this_owner()), _text(run_id)),
            )
            conn.execute("DELETE FROM events WHERE run_id = ?", (_text(run_id),))
        self._pending[:] = [row for row in self._pending if row[0] != run_id]
        return self.journal(run_id)

    # -- the journal ----------------------------------------------------------------------

    def journal(self, run_id: str) -> dict[str, JournalEntry]:
        """The run's recorded steps by their identity (including any not yet written)."""
        rows = self._query(
            "SELECT step, kind, state, data FROM journal WHERE run_id = ?", (run_id,)
        )
        found = {
            step: JournalEntry(step, kind, state, _decode(data)) for step, kind, state, data in rows
        }
        for row in self._steps:
            if row[0] == run_id:
                found[row[1]] = JournalEntry(row[1], row[2], row[3], _decode(row[5]))
        return found

    def record(self, run_id: str, step: str, kind: str, state: str, data: Any) -> None:
        """Add a step to the journal: written with the next commit, flush or finish."""
        # a model's reply or a tool's output kept for replay keeps no secret's value
        self._steps.append((run_id, step, kind, state, time.time(), _json(mask_data(data))))

    async def commit(self) -> None:
        """Wait until everything recorded so far is durable, sharing one transaction (and
        one fsync) with every run of this store that commits in the same turn of the event
        loop: the first to ask leads, after letting the others queue up behind it."""
        batch = self._batch
        if batch is not None:
            await batch.done.wait()
        else:
            batch = self._batch = _Batch(anyio.Event())
            try:
                await anyio.lowlevel.checkpoint()  # the others record and join this batch
            finally:
                self._batch = None
                try:
                    # durable on disk (one fsync for the batch), not only past the process:
                    # the rest of the store's writes stay NORMAL (no fsync per run start)
                    conn = self._connection()
                    conn.execute("PRAGMA synchronous = FULL")
                    try:
                        self.flush()
                    finally:
                        conn.execute("PRAGMA synchronous = NORMAL")
                except (TraceError, sqlite3.Error) as exc:
                    batch.error = exc if isinstance(exc, TraceError) else self._error(exc)
                batch.done.set()
        if batch.error is not None:
            raise TraceError(str(batch.error))

    # -- approvals ------------------------------------------------------------------------

    def request_approval(
        self, run_id: str, step: str, *, tool: str, arguments: Any, agent: str | None
    ) -> ApprovalRow:
        """The approval of a run's step: the one asked for earlier (pending or decided),
        else a new pending one. Its id is the same whenever it is asked for again."""
        approval_id = hashlib.sha256(f"{run_id}\x00{step}".encode()).hexdigest()[:16]
        with self._transaction() as conn:
            conn.execute(
                "INSERT OR IGNORE INTO approvals (id, run_id, step, tool, arguments, agent,"
                " created, status) VALUES (?, ?, ?, ?, ?, ?, ?, 'pending')",
                (approval_id, _text(run_id), _text(step), _text(tool), _json(arguments),
                 _opt_text(agent), time.time()),
            )  # fmt: skip
        return self.get_approval(approval_id)

    def decide_approval(
        self, id_or_prefix: str, *, approved: bool, reason: str | None, by: str
    ) -> ApprovalRow:
        """Approve or deny a pending approval; refused when it is decided already."""
        found = self.get_approval(id_or_prefix)
        if found.status != "pending":
            raise TraceError(
                f"approval {found.id} was already {found.status} by {found.decided_by}"
            )
        with self._transaction() as conn:
            conn.execute(
                "UPDATE approvals SET status = ?, reason = ?, decided_by = ?, decided = ?"
                " WHERE id = ? AND status = 'pending'",
                ("approved" if approved else "denied", _opt_text(reason), _text(by),
                 time.time(), found.id),
            )  # fmt: skip
        return self.get_approval(found.id)

    def get_approval(self, id_or_prefix: str) -> ApprovalRow:
        rows = self._query(
            f"SELECT {_APPROVAL_COLUMNS} FROM approvals WHERE substr(id, 1, ?) = ?"
            " ORDER BY created LIMIT 3",
            (len(id_or_prefix), id_or_prefix),
        )
        if len(id_or_prefix) < MIN_PREFIX or not rows:
            raise TraceError(f"no approval '{id_or_prefix}' in {self.path}")
        if len(rows) > 1 and rows[0][0] != id_or_prefix:
            raise TraceError(f"approval id prefix '{id_or_prefix}' is ambiguous")
        return _approval_row(rows[0])

    def list_approvals(
        self, *, pending_only: bool = True, run_id: str | None = None, tenant: str | None = None
    ) -> list[ApprovalRow]:
        """Approvals, oldest first: pending ones only, or all; of one run, or of the runs of
        one tenant (the server's)."""
        rows = self._query(
            f"SELECT {_APPROVAL_COLUMNS} FROM approvals WHERE (?1 = 0 OR status = 'pending')"
            " AND (?2 IS NULL OR run_id = ?2) AND (?3 IS NULL OR run_id IN"
            " (SELECT id FROM runs WHERE json_extract(request, '$.tenant') = ?3))"
            " ORDER BY created",
            (1 if pending_only else 0, run_id, tenant),
        )
        return [_approval_row(row) for row in rows]

    # -- reading ------------------------------------------------------------------------

    def list_runs(
        self,
        *,
        limit: int | None = 20,
        status: str | None = None,
        target: str | None = None,
        tenant: str | None = None,
        user: str | None = None,
        since: float | None = None,
    ) -> list[RunRow]:
        """The newest runs first, optionally only those with this status, target, tenant
        (the server's), user, or started at ``since`` or later."""
        sql = (
            f"SELECT {_RUN_COLUMNS} FROM runs WHERE (?1 IS NULL OR status = ?1)"
            " AND (?2 IS NULL OR target = ?2)"
            " AND (?4 IS NULL OR json_extract(request, '$.tenant') = ?4)"
            " AND (?5 IS NULL OR json_extract(request, '$.user') = ?5)"
            " AND (?6 IS NULL OR started >= ?6)"
            " ORDER BY started DESC, id DESC LIMIT ?3"
        )
        limit_ = -1 if limit is None else max(limit, 0)
        rows = self._query(sql, (status, target, limit_, tenant, user, since))
        return [_run_row(row) for row in rows]

    def get_run(self, id_or_prefix: str) -> RunRow:
        """The run with this id, or the only one whose id starts with it (4+ characters)."""
        exact = self._query(f"SELECT {_RUN_COLUMNS} FROM runs WHERE id = ?", (id_or_prefix,))
        if exact:
            return _run_row(exact[0])
        if len(id_or_prefix) < MIN_PREFIX:
            raise TraceError(
                f"no run '{id_or_prefix}' in {self.path}"
                f" (give the full id or at least {MIN_PREFIX} of its first characters)"
            )
        found = self._query(
            f"SELECT {_RUN_COLUMNS} FROM runs WHERE substr(id, 1, ?) = ?"
            " ORDER BY started DESC LIMIT 11",
            (len(id_or_prefix), id_or_prefix),
        )
        if not found:
            raise TraceError(f"no run '{id_or_prefix}' in {self.path}")
        if len(found) > 1:
            shown = [f"{r[0]} ({r[1]}, {r[3]})" for r in found[:10]]
            more = ", …" if len(found) > 10 else ""
            raise TraceError(
                f"run id prefix '{id_or_prefix}' is ambiguous: it matches "
                + ", ".join(shown)
                + more
            )
        return _run_row(found[0])

    def events(self, run_id: str) -> list[Event]:
        """The run's events in order, including any still buffered."""
        self.flush()
        rows = self._query(
            "SELECT type, run_id, seq, step, ts, duration_ms, agent, task, data FROM events"
            " WHERE run_id = ? ORDER BY seq",
            (run_id,),
        )
        return [_event(row) for row in rows]

    # -- lifetime -----------------------------------------------------------------------

    def close(self) -> None:
        """Write what is buffered and close the connection; closing twice does nothing."""
        if self._conn is None:
            return
        try:
            self.flush()
        finally:
            self._close_connection()

    def __enter__(self) -> TraceStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- internals ----------------------------------------------------------------------

    def _prepare(self, conn: sqlite3.Connection) -> None:
        # Nothing is written before the file is known to be a kiln store (or a new one).
        version = _schema_version(conn, self.path)  # the first read: fails on a non-database
        if version is None:
            self._refuse_foreign(conn)
        else:
            self._check_version(version)
        if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            conn.execute("PRAGMA journal_mode = WAL")
        # Safe in WAL mode (no corruption; a power cut may lose the last commits) and it
        # spares an fsync per run start and end.
        conn.execute("PRAGMA synchronous = NORMAL")
        # Events of thousands of interleaved runs land all over the (run_id, seq) index: with
        # fewer, larger checkpoints a page rewritten by many batches is copied back once.
        conn.execute("PRAGMA wal_autocheckpoint = 10000")
        if version is None:
            with self._transaction() as locked:  # another process may be creating it too
                version = _schema_version(locked, self.path)
                if version is None:
                    self._refuse_foreign(locked)
                    for statement in _SCHEMA.split(";"):
                        if statement.strip():
                            locked.execute(statement)
                    version = 1
                else:
                    self._check_version(version)
        if version < SCHEMA_VERSION:
            self._upgrade()

    def _upgrade(self) -> None:
        with self._transaction() as locked:  # another process may be upgrading it too
            version = _schema_version(locked, self.path) or 1
            for target in range(version + 1, SCHEMA_VERSION + 1):
                for statement in _UPGRADES[target]:
                    locked.execute(statement)
            locked.execute(
                "UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION),)
            )

    def _check_version(self, version: int) -> None:
        if version > SCHEMA_VERSION:
            raise TraceError(
                f"{self.path}: trace store schema version {version} is newer than this kiln"
                f" understands ({SCHEMA_VERSION}): upgrade kiln to read it"
            )

    def _refuse_foreign(self, conn: sqlite3.Connection) -> None:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        if tables:
            raise TraceError(
                f"{self.path}: not a kiln trace store (a SQLite database with other tables:"
                f" {', '.join(sorted(tables))})"
            )

    def _write_pending(self, conn: sqlite3.Connection) -> tuple[int, int]:
        """Insert the buffered events and journal steps (inside the caller's transaction);
        how many of each they were."""
        rows = self._pending
        try:
            conn.executemany(_INSERT_EVENTS, rows)
        except (UnicodeEncodeError, OverflowError, sqlite3.ProgrammingError):
            # Some value SQLite cannot bind (a lone surrogate, a huge int, an odd type): write
            # the batch again with every value coerced, rather than fail it forever.
            conn.executemany(_INSERT_EVENTS, [_coerce(row) for row in rows])
        steps = self._steps
        if steps:
            conn.executemany(_INSERT_STEPS, steps)
        return len(rows), len(steps)

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        conn = self._connection()
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise self._error(exc) from exc
        try:
            yield conn
            conn.execute("COMMIT")
        except BaseException as exc:
            if conn.in_transaction:
                conn.rollback()
            if isinstance(exc, sqlite3.Error):
                raise self._error(exc) from exc
            raise

    def _query(self, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        try:
            # Ids from a command line may hold lone surrogates, which SQLite cannot encode.
            clean = tuple(_text(p) if isinstance(p, str) else p for p in params)
            return self._connection().execute(sql, clean).fetchall()
        except sqlite3.Error as exc:
            raise self._error(exc) from exc

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise TraceError(f"{self.path}: the trace store is closed")
        here = threading.get_ident()
        if self._owner != here:
            if self._owner is not None:
                raise TraceError(
                    f"{self.path}: a TraceStore is used from the thread that opened it only "
                    "(or, after release(), the next thread that uses it)"
                )
            self._owner = here
        return self._conn

    def get_meta(self, key: str) -> Any:
        """A value kept under ``key`` (JSON), or ``None``."""
        rows = self._query("SELECT value FROM meta WHERE key = ?", (f"x:{key}",))
        return json.loads(rows[0][0]) if rows else None

    def set_meta(self, key: str, value: Any) -> None:
        """Keep ``value`` (JSON; ``None`` removes it) under ``key``, beside the runs."""
        with self._transaction() as conn:
            if value is None:
                conn.execute("DELETE FROM meta WHERE key = ?", (f"x:{key}",))
            else:
                conn.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)",
                             (f"x:{key}", _json(value)))  # fmt: skip

    def release(self) -> None:
        """Hand the store to the next thread that uses it (a server opens its stores in
        one thread and serves from its event loop's)."""
        self._owner = None

    def _close_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def _error(self, exc: sqlite3.Error) -> TraceError:
        message = str(exc)
        if "not a database" in message:
            return TraceError(f"{self.path}: not a kiln trace store (file is not a database)")
        if "locked" in message or "busy" in message:
            return TraceError(
                f"{self.path}: the trace store stayed locked for more than {self.timeout_s:g} s"
                " (another process is writing to it)"
            )
        if "readonly" in message or "read-only" in message:
            return TraceError(f"{self.path}: cannot write the trace store (it is read-only)")
        if "unable to open" in message:
            return TraceError(f"{self.path}: cannot open the trace store ({message})")
        if "thread" in message:
            return TraceError(
                f"{self.path}: a TraceStore is used from the thread that opened it only"
            )
        if "malformed" in message:
            return TraceError(f"{self.path}: the trace store is damaged ({message})")
        return TraceError(f"{self.path}: {message}")


def _schema_version(conn: sqlite3.Connection, path: Path) -> int | None:
    exists = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'"
    ).fetchone()
    if exists is None:
        return None
    row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    try:
        return int(row[0])
    except (TypeError, ValueError) as exc:
        message = f"{path}: not a kiln trace store (its meta table has no schema version)"
        raise TraceError(message) from exc


def _run_row(row: tuple[Any, ...]) -> RunRow:
    id_, target, kind, status, started, ended, inputs, output, error, usage, plan, model = row[:12]
    request, owner = (_decode(v) for v in row[12:14])
    decoded_usage = _decode(usage)
    return RunRow(
        id=id_,
        target=target or "",
        kind=kind or "",
        status=status or "",
        started=started or 0.0,
        ended=ended,
        inputs=_decode(inputs),
        output=_decode(output),
        error=error,
        usage=decoded_usage if isinstance(decoded_usage, dict) else None,
        plan_hash=plan,
        model=model,
        request=request if isinstance(request, dict) else None,
        owner=owner if isinstance(owner, dict) else None,
    )


@dataclass(frozen=True, slots=True)
class JournalEntry:
    """One recorded step: ``state`` is ``started`` (a side-effecting call was begun) or
    ``done`` (``data`` holds its result)."""

    step: str
    kind: str
    state: str
    data: Any


_APPROVAL_COLUMNS: Final = (
    "id, run_id, step, tool, arguments, agent, created, status, reason, decided_by, decided"
)


@dataclass(frozen=True, slots=True)
class ApprovalRow:
    """An approval a run waits for (``pending``) or got (``approved``, ``denied``)."""

    id: str
    run_id: str
    step: str
    tool: str
    arguments: Any
    agent: str | None
    created: float
    status: str
    reason: str | None
    decided_by: str | None
    decided: float | None

    def as_json(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


def _approval_row(row: tuple[Any, ...]) -> ApprovalRow:
    id_, run_id, step, tool, arguments, agent, created, status, reason, by, decided = row
    return ApprovalRow(
        id_, run_id, step, tool or "", _decode(arguments), agent, created or 0.0, status,
        reason, by, decided,
    )  # fmt: skip


@dataclass(slots=True)
class _Batch:
    done: anyio.Event
    error: TraceError | None = None


def this_owner() -> dict[str, Any]:
    """This process, as a run's owner: host, pid and the pid's start time (a pid reused by
    another process later is not mistaken for it)."""
    return {"host": socket.gethostname(), "pid": os.getpid(), "since": _since(os.getpid())}


def owner_alive(owner: Mapping[str, Any]) -> bool:
    """Whether the owner process still runs. On another host nobody can tell from here: it
    counts as alive (``kiln runs resume --force`` takes the run over)."""
    if owner.get("host") != socket.gethostname():
        return True
    pid = owner.get("pid")
    if not isinstance(pid, int) or pid <= 0:
        return False
    since = _since(pid)
    return since is not None and since == owner.get("since")


def _since(pid: int) -> int | None:
    """The start time of ``pid`` in clock ticks since boot (``None``: no such process)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            fields = stat.read().rsplit(b")", 1)[1].split()
    except OSError:
        return None
    try:
        return int(fields[19])  # field 22 of stat; the first two are cut off above
    except (IndexError, ValueError):
        return None


def _event(row: tuple[Any, ...]) -> Event:
    type_, run_id, seq, step, ts, duration_ms, agent, task, data = row
    decoded = _decode(data)
    return Event(
        type=cast(EventType, type_),
        run_id=run_id,
        seq=seq,
        step=step or 0,
        ts=ts or 0.0,
        duration_ms=duration_ms,
        agent=agent,
        task=task,
        data=decoded if isinstance(decoded, dict) else {"value": decoded},
    )


def _json(value: Any) -> str | None:
    """JSON text for a column (``None`` stays NULL); what JSON cannot hold becomes its repr."""
    if value is None:
        return None
    try:
        return _encode(value)
    except (TypeError, ValueError, RecursionError):
        return _encode(_safe_repr(value))


def _decode(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except (TypeError, ValueError, RecursionError):  # a hand-edited row: show it as it is
        return text


def _safe_repr(value: object) -> str:
    try:
        return repr(value)
    except Exception:  # noqa: BLE001 - a broken __repr__ must not lose the whole event
        return f"<unrepresentable {type(value).__name__}>"


# ASCII JSON: a lone surrogate in model output cannot then make SQLite's UTF-8 encoding fail.
_encode: Final = json.JSONEncoder(separators=(",", ":"), default=_safe_repr).encode


def _text(value: object) -> str:
    """A string SQLite can store: lone surrogates escaped, non-strings as their str()."""
    text = value if isinstance(value, str) else _safe_repr(value)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def _opt_text(value: object) -> str | None:
    return None if value is None else _text(value)


def _number(value: object) -> float | None:
    try:
        return float(cast(Any, value))
    except (TypeError, ValueError, OverflowError):
        return None


def _int(value: object) -> int:
    try:
        number = int(cast(Any, value))
    except (TypeError, ValueError, OverflowError):
        return 0
    return number if -(2**63) <= number < 2**63 else 0


def _coerce(row: _EventRow) -> _EventRow:
    run_id, seq, type_, step, ts, duration_ms, agent, task, data = row
    return (
        _text(run_id),
        _int(seq),
        _text(type_),
        _int(step),
        _number(ts) or 0.0,
        _number(duration_ms),
        _opt_text(agent),
        _opt_text(task),
        data,  # already ASCII JSON
    )


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc)
