"""One protocol per store kind. Backends implement these and nothing else; the policy layer
(:mod:`runtime.memory.policy`) decides what to write, what to read and how to score it.

Every method is async. A backend whose client is synchronous (ChromaDB embedded, networkx
on SQLite) runs it in a worker thread and serialises its writes itself, so concurrent runs
writing one namespace never corrupt it. Every method takes the namespace key
(:attr:`~runtime.memory.records.Namespace.key`) and touches nothing outside it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from runtime.memory.records import Entity, Memory, Relation, Turn

__all__ = ["GraphStore", "ShortTermStore", "VectorStore"]


@runtime_checkable
class ShortTermStore(Protocol):
    """The conversation window of a namespace: an ordered list of turns."""

    async def append(
        self, namespace: str, turns: Sequence[Turn], *, ttl_s: int | None = None
    ) -> None:
        """Add ``turns`` at the end. ``ttl_s`` (re)sets the window's expiry: a window nobody
        wrote to for that long is gone."""
        ...

    async def window(self, namespace: str) -> list[Turn]:
        """Every turn, oldest first; ``[]`` for an unknown or expired namespace."""
        ...

    async def compact(
        self, namespace: str, head: Sequence[str], replacement: Sequence[Turn]
    ) -> bool:
        """Replace the oldest turns, whose ids are ``head`` in order, by ``replacement``
        (a summary, or nothing to drop them), atomically. Returns ``False`` and changes
        nothing when the window no longer starts with ``head`` (another run compacted it
        first); turns appended meanwhile are kept either way."""
        ...

    async def clear(self, namespace: str) -> int:
        """Forget the window; returns how many turns it held."""
        ...

    async def namespaces(self) -> list[str]:
        """The namespaces that hold a window now."""
        ...

    async def close(self) -> None: ...


@runtime_checkable
class VectorStore(Protocol):
    """Long-term memories searchable by meaning, embedded with one embedder per store.

    A store records its embedder's ``name`` and ``dim`` with what it keeps and refuses to
    open data made by another (:class:`~runtime.memory.records.EmbedderMismatch`).
    """

    @property
    def embedder_name(self) -> str: ...

    async def add(self, namespace: str, memories: Sequence[Memory]) -> None:
        """Embed and store ``memories`` (their ``namespace`` fields equal ``namespace``).
        An id that exists is replaced."""
        ...

    async def search(
        self, namespace: str, query: str, k: int, *, now: float | None = None
    ) -> list[tuple[Memory, float]]:
        """Up to ``k`` memories nearest ``query``, best first, with their relevance: cosine
        similarity clamped to 0..1. Memories expired at ``now`` (default: the clock) are
        left out."""
        ...

    async def get(self, namespace: str, *, limit: int = 100, offset: int = 0) -> list[Memory]:
        """Memories oldest first, without search."""
        ...

    async def delete(
        self,
        namespace: str,
        *,
        ids: Sequence[str] | None = None,
        before: float | None = None,
        expired_at: float | None = None,
    ) -> int:
        """Forget memories: those of ``ids``, those created before ``before``, those expired
        at ``expired_at``, or (no argument) all of the namespace. Returns how many."""
        ...

    async def count(self, namespace: str) -> int: ...

    async def namespaces(self) -> dict[str, int]:
        """Every namespace with memories, and how many it holds."""
        ...

    async def close(self) -> None: ...


@runtime_checkable
class GraphStore(Protocol):
    """Entities and relations about the world, merged by normalised name per namespace."""

    async def merge(
        self, namespace: str, entities: Sequence[Entity], relations: Sequence[Relation]
    ) -> None:
        """Add entities and relations; an entity or relation already there (by normalised
        names) is updated, never duplicated. A relation's ends are created if missing."""
        ...

    async def match(self, namespace: str, text: str) -> list[str]:
        """The names of known entities that ``text`` mentions (by normalised name)."""
        ...

    async def neighbourhood(
        self, namespace: str, names: Sequence[str], *, depth: int = 1, limit: int = 50
    ) -> list[Relation]:
        """The relations within ``depth`` hops of the entities ``names``, nearest first,
        at most ``limit``."""
        ...

    async def delete(self, namespace: str, names: Sequence[str] | None = None) -> int:
        """Forget entities (with their relations), or the whole namespace; returns how many
        entities went."""
        ...

    async def counts(self, namespace: str) -> tuple[int, int]:
        """(entities, relations) in ``namespace``."""
        ...

    async def namespaces(self) -> dict[str, int]:
        """Every namespace with entities, and how many."""
        ...

    async def close(self) -> None: ...
