"""Memory backends by name, imported only when a policy uses them.

A MemoryPolicy names its backends (``short_term.backend: redis``, ``vector.backend:
chroma``, ...). This table maps each (store kind, backend name) to an import string, so
``kiln validate`` and runs without memory never import chromadb, redis or neo4j. Every
backend class has a ``from_settings(settings)`` classmethod taking :class:`StoreSettings`.
"""

from __future__ import annotations

import difflib
import importlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal

from runtime.memory.records import StoreUnavailable

if TYPE_CHECKING:
    from runtime.embed import Embedder

__all__ = [
    "BACKENDS",
    "ENV_VAR",
    "StoreKind",
    "StoreSettings",
    "backend_class",
    "default_root",
    "open_store",
]

#: the environment variable naming the folder embedded stores keep their files in
ENV_VAR: Final = "KILN_MEMORY_DIR"

StoreKind = Literal["short_term", "vector", "graph"]

#: (kind, backend) -> (import string, the extra that installs what it needs)
BACKENDS: Final[dict[tuple[str, str], tuple[str, str | None]]] = {
    ("short_term", "inprocess"): ("runtime.memory.short_term.inprocess:InProcessShortTerm", None),
    ("short_term", "redis"): ("runtime.memory.short_term.redis:RedisShortTerm", "memory"),
    ("short_term", "sqlite"): ("runtime.memory.short_term.sqlite:SqliteShortTerm", None),
    ("vector", "chroma"): ("runtime.memory.vector.chroma:ChromaStore", "memory"),
    ("vector", "chroma-server"): ("runtime.memory.vector.chroma:ChromaServerStore", "memory"),
    ("graph", "networkx"): ("runtime.memory.graph.nx:NetworkxGraph", None),
    ("graph", "neo4j"): ("runtime.memory.graph.neo4j:Neo4jGraph", "graph"),
}


@dataclass(frozen=True, slots=True, kw_only=True)
class StoreSettings:
    """What a backend is opened with: the policy's fields for that store, resolved.

    ``root`` is the folder embedded stores keep their files in (``.kiln/memory`` unless
    ``kiln run --memory-dir`` says otherwise); ``path`` a policy's own folder or file
    (relative paths are already resolved against the spec's folder). ``secret`` fields
    (``password``) have had their ``${env:NAME}`` references read.
    """

    root: Path
    path: Path | None = None
    url: str | None = None
    uri: str | None = None
    user: str | None = None
    password: str | None = None
    collection: str | None = None
    embedder: Embedder | None = None


def backend_class(kind: StoreKind, backend: str) -> Any:
    """The class implementing ``backend`` for ``kind``; :class:`StoreUnavailable` names the
    valid backends or the package to install."""
    entry = BACKENDS.get((kind, backend))
    if entry is None:
        names = sorted(name for k, name in BACKENDS if k == kind)
        close = difflib.get_close_matches(backend, names, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise StoreUnavailable(
            f"no {kind.replace('_', '-')} memory backend {backend!r}{hint}: "
            f"use one of {', '.join(names)}",
            retryable=False,
        )
    target, extra = entry
    module_name, _, attr = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        install = f"pip install 'agentkiln[{extra}]'" if extra else "reinstall agentkiln"
        raise StoreUnavailable(
            f"the {backend} memory backend needs {exc.name or 'a package'} ({install})",
            retryable=False,
        ) from None
    return getattr(module, attr)


def open_store(kind: StoreKind, backend: str, settings: StoreSettings) -> Any:
    """A store of ``kind`` from ``backend``, opened with ``settings``."""
    return backend_class(kind, backend).from_settings(settings)


def default_root() -> Path:
    """``$KILN_MEMORY_DIR``, else ``.kiln/memory`` in the working folder."""
    given = os.environ.get(ENV_VAR, "").strip()
    return Path(given) if given else Path(".kiln", "memory")
