"""Long-term memories searchable by meaning (:class:`~runtime.memory.protocols.VectorStore`).

- :class:`ChromaStore`: ChromaDB in a folder on this machine, the embedded default;
- :class:`ChromaServerStore`: a Chroma server, for memories shared by many machines.

Importing this package imports no chromadb: the stores import it on first use.
"""

from runtime.memory.vector.chroma import ChromaServerStore as ChromaServerStore
from runtime.memory.vector.chroma import ChromaStore as ChromaStore

__all__ = ["ChromaServerStore", "ChromaStore"]
