"""What memory stores hold and hand back: plain frozen data, shared by every backend.

- :class:`Namespace`: where a memory lives. One tenant (the user a run is for) never reads
  another's namespace: the tenant is part of every key, whatever the policy's scope.
- :class:`Memory`: one remembered text (an answer, a tool observation, a fact), with who
  wrote it, when, how important it is and when it expires.
- :class:`Turn`: one message of the short-term conversation window.
- :class:`Entity`, :class:`Relation`: the graph store's nodes and edges.

Errors (:class:`MemoryStoreError` and its children) carry a stable ``code`` and
``retryable``, like every runtime error: retry logic reads the field, never the message.
"""

from __future__ import annotations

import hashlib
import re
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal
from urllib.parse import quote, unquote

__all__ = [
    "DEFAULT_TENANT",
    "EmbedderMismatch",
    "Entity",
    "Memory",
    "MemoryKind",
    "MemoryStoreError",
    "Namespace",
    "Relation",
    "ScopeKind",
    "StoreUnavailable",
    "Turn",
    "new_id",
    "normalise_name",
    "plural",
]

ScopeKind = Literal["agent", "user", "session", "crew"]
MemoryKind = Literal["answer", "observation", "fact", "summary", "note"]

#: the tenant of runs that name no user (``kiln run`` without ``--user``)
DEFAULT_TENANT: Final = "local"

def _part(value: str) -> str:
    """``value`` made safe as one segment of a namespace key (percent-encoded UTF-8): ``/``
    and ``:`` can never appear in it, so no user or session id can forge another's key."""
    return quote(value, safe="")


@dataclass(frozen=True, slots=True, kw_only=True)
class Namespace:
    """Where memories live: a policy's bank, one tenant's part of it, one scope of that.

    ``scope`` says who shares: ``agent`` (every run of one agent for this tenant), ``user``
    (every agent of this tenant under the policy), ``session`` (one conversation), ``crew``
    (the agents of one crew, with ``shared_memory``). ``owner`` names the agent, session or
    crew; for ``user`` it is the tenant itself.
    """

    policy: str
    tenant: str
    scope: ScopeKind
    owner: str

    @property
    def key(self) -> str:
        """``<policy>/<tenant>/<scope>:<owner>``, each part escaped: stable, unforgeable."""
        return f"{_part(self.policy)}/{_part(self.tenant)}/{self.scope}:{_part(self.owner)}"

    @property
    def slug(self) -> str:
        """A short name for stores with strict naming rules (ChromaDB collections)."""
        digest = hashlib.sha256(self.key.encode()).hexdigest()[:24]
        return f"kiln-{digest}"

    @classmethod
    def parse(cls, key: str) -> Namespace:
        """The namespace of ``key`` (as :attr:`key` wrote it); ``ValueError`` otherwise."""
        try:
            policy, tenant, rest = key.split("/")
            scope, owner = rest.split(":", 1)
        except ValueError:
            raise ValueError(f"not a memory namespace key: {key!r}") from None
        if scope not in ("agent", "user", "session", "crew"):
            raise ValueError(f"not a memory namespace key: {key!r} (scope {scope!r})")
        return cls(
            policy=_unpart(policy),
            tenant=_unpart(tenant),
            scope=scope,  # type: ignore[arg-type]
            owner=_unpart(owner),
        )

    def __str__(self) -> str:
        return self.key


def _unpart(value: str) -> str:
    return unquote(value)


def new_id() -> str:
    return uuid.uuid4().hex


@dataclass(frozen=True, slots=True, kw_only=True)
class Memory:
    """One remembered text. ``importance`` is 0..1; ``expires_at`` ``None`` means never."""

    id: str = field(default_factory=new_id)
    text: str
    kind: MemoryKind = "note"
    namespace: str
    #: the agent that wrote it (in a crew's shared memory, which member)
    agent: str = ""
    run_id: str = ""
    created_at: float = field(default_factory=time.time)
    expires_at: float | None = None
    importance: float = 0.5
    #: small scalar extras a backend can store and filter on
    meta: Mapping[str, str | int | float | bool] = field(default_factory=dict)

    def expired(self, now: float) -> bool:
        return self.expires_at is not None and self.expires_at <= now

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "text": self.text,
            "kind": self.kind,
            "namespace": self.namespace,
            "agent": self.agent,
            "run_id": self.run_id,
            "created_at": self.created_at,
            "expires_at": self.expires_at,
            "importance": self.importance,
            "meta": dict(self.meta),
        }


Role = Literal["user", "assistant", "summary"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Turn:
    """One message of a conversation window. A ``summary`` turn stands for older turns that
    were folded into it."""

    id: str = field(default_factory=new_id)
    role: Role
    content: str
    agent: str = ""
    ts: float = field(default_factory=time.time)

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "role": self.role,
            "content": self.content,
            "agent": self.agent,
            "ts": self.ts,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Turn:
        return cls(
            id=str(data["id"]),
            role=data["role"],
            content=str(data["content"]),
            agent=str(data.get("agent", "")),
            ts=float(data.get("ts", 0.0)),
        )


_ARTICLE = re.compile(r"^(?:the|a|an)\s+")
_PUNCT = re.compile(r"[^\w\s-]+")
_SPACE = re.compile(r"[\s_-]+")


def normalise_name(name: str) -> str:
    """The key entities merge on: case-folded, punctuation and a leading article dropped,
    runs of spaces, ``_`` and ``-`` made one space. "The  Eiffel-Tower." is "eiffel tower"."""
    text = _PUNCT.sub(" ", name.casefold())
    text = _SPACE.sub(" ", text).strip()
    return _ARTICLE.sub("", text).strip()


@dataclass(frozen=True, slots=True, kw_only=True)
class Entity:
    name: str
    type: str = "thing"

    @property
    def key(self) -> str:
        return normalise_name(self.name)


@dataclass(frozen=True, slots=True, kw_only=True)
class Relation:
    """``source -relation-> target``, by entity name. Stores merge both ends by
    :func:`normalise_name`. ``agent``, ``run_id`` and ``ts`` say who asserted it, when."""

    source: str
    relation: str
    target: str
    agent: str = ""
    run_id: str = ""
    ts: float = 0.0

    def as_text(self) -> str:
        return f"{self.source} {self.relation.replace('_', ' ')} {self.target}"


class MemoryStoreError(Exception):
    """A memory store failed. ``code`` is stable; ``retryable`` says whether trying again
    may help (a server that is down) or not (a collection made with another embedder)."""

    code = "memory_error"
    retryable = False

    def __init__(self, message: str, *, retryable: bool | None = None) -> None:
        super().__init__(message)
        if retryable is not None:
            self.retryable = retryable


class StoreUnavailable(MemoryStoreError):
    """The store cannot be reached or opened (a server down, a package missing)."""

    code = "memory_unavailable"
    retryable = True


class EmbedderMismatch(MemoryStoreError):
    """A collection was made with one embedder and is opened with another: comparing their
    vectors would return garbage, so it is refused."""

    code = "embedder_mismatch"


def plural(n: int, word: str) -> str:
    """``1 memory``, ``2 memories``, ``3 past runs``."""
    if n == 1:
        return f"1 {word}"
    return f"{n} {word[:-1]}ies" if word.endswith("y") else f"{n} {word}s"
