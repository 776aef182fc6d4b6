"""API keys of ``kiln serve``: created by ``kiln keys create --tenant T --scope S``, stored
hashed in SQLite (``.kiln/keys.db``; the key itself is shown once and never kept), sent
as ``Authorization: Bearer kiln_<id>_<secret>``.

A key belongs to one tenant, which owns the runs, approvals and memories made with it.
Scopes: ``read`` (look), ``run`` (start, cancel and resume runs; read), ``approve`` (decide
approvals; read), ``admin`` (everything, across tenants; deploy and write specs).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

__all__ = ["SCOPES", "Key", "KeyError_", "KeyStore"]

SCOPES: Final = ("read", "run", "approve", "admin")
#: what each scope allows besides itself
_IMPLIES: Final = {"run": {"read"}, "approve": {"read"}, "admin": set(SCOPES)}
_TENANT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
_KEY = re.compile(r"^kiln_([0-9a-f]{12})_([A-Za-z0-9_-]{20,100})$")
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS keys (id TEXT PRIMARY KEY, tenant TEXT NOT NULL,"
    " scopes TEXT NOT NULL, digest TEXT NOT NULL, name TEXT, created REAL NOT NULL,"
    " revoked REAL)"
)


class KeyError_(Exception):  # noqa: N801 - KeyError is a builtin
    """A key store problem a person can fix: the message says what."""


@dataclass(frozen=True, slots=True)
class Key:
    id: str
    tenant: str
    scopes: frozenset[str]
    name: str | None
    created: float
    revoked: float | None = None

    def allows(self, scope: str) -> bool:
        return any(scope == s or scope in _IMPLIES.get(s, ()) for s in self.scopes)

    @property
    def admin(self) -> bool:
        return "admin" in self.scopes

    def as_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "tenant": self.tenant,
            "scopes": sorted(self.scopes),
            "name": self.name,
            "created": self.created,
            "revoked": self.revoked,
        }


def _digest(secret: str) -> str:
    # the secret is 32 random bytes: a fast hash is enough (nothing to brute-force)
    return hashlib.sha256(secret.encode()).hexdigest()


class KeyStore:
    """The keys, in one SQLite file. Safe to share between threads."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode = WAL")
        self._conn.execute(_SCHEMA)
        self.path.chmod(0o600)

    def create(self, tenant: str, scopes: Iterable[str], *, name: str | None = None) -> str:
        """A new key for ``tenant`` with ``scopes``; returns the key itself, which is not
        kept anywhere (only its hash is)."""
        if not _TENANT.match(tenant):
            raise KeyError_(
                f"tenant {tenant!r}: use letters, digits, '_', '.' and '-' (at most 63)"
            )
        chosen = frozenset(scopes)
        unknown = sorted(chosen - set(SCOPES))
        if unknown or not chosen:
            raise KeyError_(
                f"scope {', '.join(unknown) or '(none)'}: choose from {', '.join(SCOPES)}"
            )
        key_id = secrets.token_hex(6)
        secret = secrets.token_urlsafe(32)
        with self._lock:
            self._conn.execute(
                "INSERT INTO keys VALUES (?, ?, ?, ?, ?, ?, NULL)",
                (key_id, tenant, " ".join(sorted(chosen)), _digest(secret), name, time.time()),
            )
        return f"kiln_{key_id}_{secret}"

    def verify(self, presented: str) -> Key | None:
        """The live key ``presented`` is, or ``None`` (unknown, revoked, malformed)."""
        found = _KEY.match(presented.strip())
        if found is None:
            return None
        key_id, secret = found.groups()
        with self._lock:
            row = self._conn.execute(
                "SELECT id, tenant, scopes, name, created, revoked, digest FROM keys"
                " WHERE id = ?",
                (key_id,),
            ).fetchone()
        if row is None or row[5] is not None:
            return None
        if not hmac.compare_digest(row[6], _digest(secret)):
            return None
        return _key(row)

    def revoke(self, key_id: str) -> Key:
        """Revoke the key with this id (or the ``kiln_<id>_…`` key itself)."""
        found = _KEY.match(key_id)
        key_id = found.group(1) if found else key_id
        with self._lock:
            updated = self._conn.execute(
                "UPDATE keys SET revoked = ? WHERE id = ? AND revoked IS NULL",
                (time.time(), key_id),
            ).rowcount
            row = self._conn.execute(
                "SELECT id, tenant, scopes, name, created, revoked FROM keys WHERE id = ?",
                (key_id,),
            ).fetchone()
        if row is None:
            raise KeyError_(f"no key {key_id!r} in {self.path} ('kiln keys list' shows them)")
        if not updated:
            raise KeyError_(f"key {key_id} was revoked already")
        return _key(row)

    def list(self) -> list[Key]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT id, tenant, scopes, name, created, revoked FROM keys ORDER BY created"
            ).fetchall()
        return [_key(row) for row in rows]

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def _key(row: tuple[object, ...]) -> Key:
    key_id, tenant, scopes, name, created, revoked = row[:6]
    return Key(
        id=str(key_id),
        tenant=str(tenant),
        scopes=frozenset(str(scopes).split()),
        name=name if isinstance(name, str) else None,
        created=float(created),  # type: ignore[arg-type]
        revoked=float(revoked) if revoked is not None else None,  # type: ignore[arg-type]
    )
