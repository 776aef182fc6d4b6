"""Memory: what agents remember within a run, across runs and about the world.

- :mod:`runtime.memory.records`: namespaces, memories, turns, entities, errors;
- :mod:`runtime.memory.protocols`: one protocol per store kind (short-term, vector, graph);
- :mod:`runtime.memory.registry`: backends by name, imported only when a policy uses them;
- :mod:`runtime.memory.service`: memory policies at work (recall, remember, forget);
- :mod:`runtime.memory.episodic`: past runs, searchable, on the trace store.

Importing this package imports no store's client (chromadb, redis, neo4j) and no model.
"""

from runtime.memory.records import (
    DEFAULT_TENANT,
    EmbedderMismatch,
    Entity,
    Memory,
    MemoryStoreError,
    Namespace,
    Relation,
    StoreUnavailable,
    Turn,
)
from runtime.memory.service import MemoryService, Recall, Who

__all__ = [
    "DEFAULT_TENANT",
    "EmbedderMismatch",
    "Entity",
    "Memory",
    "MemoryService",
    "MemoryStoreError",
    "Namespace",
    "Recall",
    "Relation",
    "StoreUnavailable",
    "Turn",
    "Who",
]
