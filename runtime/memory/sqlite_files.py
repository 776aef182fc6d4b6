"""Opening the SQLite files of embedded memory stores (the short-term window, the graph):
one way for both, so neither ever writes into a file that is not its own.

A store's file carries its mark (``PRAGMA application_id``) and schema version
(``user_version``). :func:`connect` opens a file, lets the store's ``check`` judge what it
found (its own file, an empty one to make its own, or something else to refuse untouched),
switches it to WAL and creates the schema in a ``BEGIN IMMEDIATE`` transaction that checks
again, since another process may be creating the same file at the same moment.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from runtime.memory.records import MemoryStoreError

__all__ = ["check_mark", "connect", "writing"]

#: pause between two tries to open a file another process holds while creating it
_RETRY_S = 0.02


def connect(
    path: Path,
    *,
    timeout_s: float,
    check: Callable[[sqlite3.Connection], bool],
    schema: Sequence[str],
) -> sqlite3.Connection:
    """A connection to ``path`` in autocommit mode (transactions are begun explicitly),
    the file made a store of the caller's kind first if ``check`` says it is new.

    ``check`` returns ``True`` for the store's own file, ``False`` for one to make its own
    (empty, or an older unmarked version), and raises for anything else: nothing has been
    written to the file then. SQLite errors are the caller's to translate.
    """
    # SQLite answers "database is locked" at once, without its busy handler, to some of what
    # opening does while another process creates the file or switches it to WAL (seen under
    # load: two processes opening a new store together): retry until the timeout, as the
    # busy handler would.
    deadline = time.monotonic() + timeout_s
    while True:
        db = sqlite3.connect(path, timeout=timeout_s, isolation_level=None, check_same_thread=False)
        try:
            _prepare(db, check, schema)
        except sqlite3.OperationalError as exc:
            db.close()
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(_RETRY_S)
            continue
        except BaseException:
            db.close()
            raise
        return db


def _prepare(
    db: sqlite3.Connection, check: Callable[[sqlite3.Connection], bool], schema: Sequence[str]
) -> None:
    ours = check(db)  # the first read: fails on a file that is not SQLite
    if db.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
        db.execute("PRAGMA journal_mode = WAL")
    # Safe in WAL mode (no corruption; a power cut may lose the last commits), and it spares
    # an fsync a write.
    db.execute("PRAGMA synchronous = NORMAL")
    if not ours:
        with writing(db):  # another process may be creating (or stamping) it too
            if not check(db):
                for statement in schema:
                    db.execute(statement)


@contextmanager
def writing(db: sqlite3.Connection) -> Iterator[None]:
    """One write transaction, taking SQLite's write lock at once: a deferred transaction
    that reads first can fail to upgrade while another process writes."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def check_mark(
    db: sqlite3.Connection,
    path: Path,
    *,
    application_id: int,
    version: int,
    store: str,
    section: str,
    adopt: Callable[[list[str]], bool] = lambda names: not names,
) -> bool:
    """Judge the file ``db`` opened, for :func:`connect`: ``True`` when it carries the
    ``store``'s mark (refused if its schema is newer than ``version``), ``False`` for an
    unmarked file ``adopt`` accepts from its table names (by default only an empty one),
    a :class:`MemoryStoreError` naming the policy's ``section`` for anything else."""
    (found_id,) = db.execute("PRAGMA application_id").fetchone()
    (found_version,) = db.execute("PRAGMA user_version").fetchone()
    if found_id == application_id:
        if found_version > version:
            raise MemoryStoreError(
                f"the {store} {path} has schema version {found_version}, newer than this "
                f"kiln understands ({version}): upgrade kiln to use it"
            )
        return True
    found = db.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'view')")
    names = sorted(str(name) for (name,) in found)
    if found_id == 0 and adopt(names):
        return False
    if names:
        what = f"with other tables: {', '.join(names)}"
    else:
        what = f"of another application: application_id {found_id:#x}"
    raise MemoryStoreError(
        f"{path} is not a kiln {store} (a SQLite database {what}); it was left as it is: "
        f"give the policy's {section} another path"
    )
