"""The stores a program's memory policies name: opened once, on first use, and shared by
every run of the program until :meth:`Stores.aclose`.

A policy's fields become :class:`~runtime.memory.registry.StoreSettings` here: paths relative
to the spec's file, ``${env:NAME}`` references read, the embedder built. Two policies that
name the same backend at the same place share one store object.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from runtime.memory.records import MemoryStoreError
from runtime.memory.registry import StoreKind, StoreSettings, default_root, open_store

if TYPE_CHECKING:
    from compiler.symbols import Program
    from runtime.embed import Embedder
    from runtime.memory.episodic import EpisodicStore
    from runtime.memory.protocols import GraphStore, ShortTermStore, VectorStore

__all__ = ["Stores"]


class Stores:
    """Every store of one program's memory policies, by policy name."""

    def __init__(
        self,
        program: Program,
        *,
        root: Path | str | None = None,
        runs_db: Path | str | None = None,
    ) -> None:
        self.program = program
        #: the folder embedded stores keep their files in
        self.root = Path(root) if root is not None else default_root()
        #: the trace store episodic memory reads (``None``: runs are not recorded)
        self.runs_db = Path(runs_db) if runs_db is not None else None
        self._open: dict[tuple[str, ...], Any] = {}
        self._embedders: dict[str, Embedder] = {}
        self._episodic: dict[str, EpisodicStore] = {}
        self._synced: set[str] = set()

    def short_term(self, policy: str) -> ShortTermStore:
        store: ShortTermStore = self._store(policy, "short_term")
        return store

    def vector(self, policy: str) -> VectorStore:
        store: VectorStore = self._store(policy, "vector")
        return store

    def graph(self, policy: str) -> GraphStore:
        store: GraphStore = self._store(policy, "graph")
        return store

    def embedder(self, spec: str | None) -> Embedder:
        """The embedder ``spec`` names (``None``: the project's), one per process."""
        from runtime.embed import get_embedder

        key = spec or ""
        found = self._embedders.get(key)
        if found is None:
            try:
                found = self._embedders[key] = get_embedder(spec)
            except ValueError as exc:
                raise MemoryStoreError(str(exc)) from None
        return found

    async def episodic(self, embedder: str | None = None) -> EpisodicStore | None:
        """The episodic store over the trace store, or ``None`` when runs are not traced.
        Its first use indexes the runs recorded before (each run then indexes itself)."""
        if self.runs_db is None:
            return None
        from runtime.memory.episodic import EpisodicStore

        key = embedder or ""
        store = self._episodic.get(key)
        if store is None:
            store = self._episodic[key] = EpisodicStore(
                self.runs_db, embedder=self.embedder(embedder)
            )
        if key not in self._synced:
            await store.sync()
            self._synced.add(key)
        return store

    async def aclose(self) -> None:
        """Close every store's connections; they reopen on next use. In-process short-term
        stores stay: what they hold lives nowhere else, and they hold no connection."""
        kept = {k: v for k, v in self._open.items() if k[:2] == ("short_term", "inprocess")}
        stores = [v for k, v in self._open.items() if k not in kept]
        self._open = kept
        episodic, self._episodic = list(self._episodic.values()), {}
        self._synced.clear()
        for store in (*stores, *episodic):
            await store.close()

    def _store(self, policy: str, kind: StoreKind) -> Any:
        backend, settings = self._settings(policy, kind)
        key = (
            kind,
            backend,
            str(settings.path or settings.root),
            settings.url or "",
            settings.uri or "",
            settings.collection or "",
            settings.embedder.name if settings.embedder is not None else "",
        )
        store = self._open.get(key)
        if store is None:
            store = self._open[key] = open_store(kind, backend, settings)
        return store

    def _settings(self, policy: str, kind: StoreKind) -> tuple[str, StoreSettings]:
        from runtime.envrefs import env_value

        entry = self.program.policies[policy]
        part: Any = getattr(self.program.policy(policy).spec, kind)
        path = getattr(part, "path", None)
        return part.backend, StoreSettings(
            root=self.root,
            path=(Path(entry.doc.path).parent / path) if path else None,
            url=env_value(getattr(part, "url", None)),
            uri=env_value(getattr(part, "uri", None)),
            user=env_value(getattr(part, "user", None)),
            password=env_value(getattr(part, "password", None)),
            collection=getattr(part, "collection", None),
            embedder=self.embedder(part.embedder) if kind == "vector" else None,
        )
