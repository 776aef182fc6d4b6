"""Tool discovery: an embedding index of tools, searched by meaning, cached on disk.

:class:`ToolIndex` holds one unit vector per tool (its :attr:`Candidate.text` embedded by an
:class:`~runtime.embed.Embedder`) and answers :meth:`ToolIndex.search` with the tools whose
vectors are closest to the query's. :meth:`ToolIndex.load_or_build` keeps the vectors in a
cache folder:

- ``<embedder>-<key>.npy``: the vectors, rows in the order of the tools' names;
- ``<embedder>-<key>.json``: a manifest (embedder, dimension, names, a hash per row, a
  checksum of the vectors), read first: a file that does not match it is ignored.

``key`` is the SHA-256 of the embedder's name and every tool's name and text, so the index is
rebuilt exactly when a tool is added, removed or described differently, or the embedder
changes. A rebuild embeds only the texts no recent cache file of the same embedder holds.
Files are written to a temporary name and renamed, so a reader never sees half of one, and
a corrupt or unreadable file only costs a rebuild. Only the newest few files per embedder
are kept.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import os
import re
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final

from runtime.embed import Embedder, EmbedderError

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

__all__ = ["Candidate", "Hit", "LoadInfo", "ToolIndex", "search_text"]

_FORMAT: Final = 1
#: cache files kept per embedder (a project switching between tool sets keeps its caches)
_KEEP: Final = 8
_EMPTY: Final[Mapping[str, str]] = MappingProxyType({})
_SCORE_DIGITS: Final = 6


@dataclass(frozen=True, slots=True)
class Candidate:
    """A tool as discovery sees it. ``text`` is what gets embedded; empty means
    :func:`search_text` of the name and description."""

    name: str
    description: str
    labels: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    text: str = ""

    @property
    def indexed_text(self) -> str:
        return self.text or search_text(self.name, self.description)


@dataclass(frozen=True, slots=True)
class Hit:
    name: str
    #: cosine similarity of the tool's text and the query, in [-1, 1]
    score: float
    description: str


@dataclass(frozen=True, slots=True)
class LoadInfo:
    """How :meth:`ToolIndex.load_or_build` got its vectors."""

    #: all vectors came from the cache file for exactly these tools
    cache_hit: bool
    #: texts embedded by this load (0 on a hit; fewer than all when older files had some)
    embedded: int
    #: the cache file (``None``: no cache folder)
    path: Path | None = None
    #: why the cache could not be written (the index works regardless)
    write_error: str | None = None


def search_text(name: str, description: str) -> str:
    """What discovery embeds for a tool: its name in words, then its description
    (``git.git_log`` -> ``git git log: Shows the commit logs``). Parameter names were tried
    and left out: they made both embedders slightly worse on the quality suite."""
    return f"{_words(name)}: {description}".strip()


def _words(name: str) -> str:
    return re.sub(r"[._\-/]+", " ", name).strip()


class ToolIndex:
    """Unit vectors of tools' texts, searched by cosine similarity."""

    def __init__(
        self,
        candidates: Sequence[Candidate],
        vectors: npt.NDArray[np.float32],
        embedder: Embedder,
        load_info: LoadInfo | None = None,
    ) -> None:
        """Prefer :meth:`build` and :meth:`load_or_build`; ``vectors[i]`` belongs to
        ``candidates[i]``."""
        if len(vectors) != len(candidates):
            raise ValueError(f"{len(candidates)} tools but {len(vectors)} vectors")
        self.candidates = tuple(candidates)
        self.vectors = vectors
        self.embedder = embedder
        self.load_info = load_info or LoadInfo(cache_hit=False, embedded=len(candidates))

    def __len__(self) -> int:
        return len(self.candidates)

    def __repr__(self) -> str:
        return f"<ToolIndex {len(self)} tools, {self.embedder.name}>"

    @property
    def cache_hit(self) -> bool:
        return self.load_info.cache_hit

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.candidates)

    @classmethod
    def build(cls, candidates: Iterable[Candidate], embedder: Embedder) -> ToolIndex:
        """Embed every tool's text, no cache."""
        ordered = _ordered(candidates)
        vectors = _embed(embedder, [c.indexed_text for c in ordered])
        return cls(ordered, vectors, embedder, LoadInfo(cache_hit=False, embedded=len(ordered)))

    @classmethod
    def load_or_build(
        cls,
        candidates: Iterable[Candidate],
        embedder: Embedder,
        cache_dir: Path | None,
    ) -> ToolIndex:
        """The index from ``cache_dir`` when it holds one for exactly these tools and this
        embedder, else built (reusing what older cache files hold) and written there."""
        ordered = _ordered(candidates)
        if cache_dir is None or not ordered:
            return cls.build(ordered, embedder)
        texts = [c.indexed_text for c in ordered]
        rows = [_sha(text) for text in texts]
        stem = _safe(embedder.name)
        key = _sha(
            json.dumps([embedder.name, [[c.name, t] for c, t in zip(ordered, texts, strict=True)]])
        )
        path = cache_dir / f"{stem}-{key}.npy"
        cached = _read(path, embedder.name, key)
        if cached is not None:
            with contextlib.suppress(OSError):  # in use: the last to be pruned
                os.utime(path.with_suffix(".json"))
            return cls(ordered, cached, embedder, LoadInfo(cache_hit=True, embedded=0, path=path))
        known = _known_rows(cache_dir, stem, embedder.name, set(rows))
        missing = sorted({i for i, row in enumerate(rows) if row not in known})
        fresh = _embed(embedder, [texts[i] for i in missing]) if missing else None
        if fresh is not None and any(v.shape[0] != fresh.shape[1] for v in known.values()):
            # the same name, another dimension (a remote model's settings changed): start over
            known, missing = {}, list(range(len(texts)))
            fresh = _embed(embedder, texts)
        vectors = _assemble(rows, known, missing, fresh)
        error = _write(path, vectors, embedder.name, key, [c.name for c in ordered], rows)
        if error is None:
            _prune(cache_dir, stem)
        info = LoadInfo(cache_hit=False, embedded=len(missing), path=path, write_error=error)
        return cls(ordered, vectors, embedder, info)

    def search(
        self,
        query: str,
        top_k: int = 5,
        labels: Mapping[str, str] | None = None,
        *,
        min_score: float | None = None,
    ) -> list[Hit]:
        """The ``top_k`` tools closest to ``query``, best first, ties by name. ``labels``:
        only tools carrying every one of these label values. A blank query finds nothing."""
        import numpy as np

        if top_k <= 0 or not self.candidates or not query.strip():
            return []
        index = np.arange(len(self.candidates))
        if labels:
            index = np.asarray(_carrying(self.candidates, labels), dtype=np.intp)
            if not len(index):
                return []
        q = _embed(self.embedder, [query])[0]
        if q.shape[0] != self.vectors.shape[1]:
            raise EmbedderError(
                f"embedder {self.embedder.name} gives {q.shape[0]} dimensions but the index "
                f"holds {self.vectors.shape[1]}: rebuild the index with the same embedder"
            )
        vectors = self.vectors[index] if labels else self.vectors  # no copy when unfiltered
        scores = np.round(vectors @ q, _SCORE_DIGITS)
        # rows are in name order, so a stable sort breaks ties by name
        order = np.argsort(-scores, kind="stable")
        hits: list[Hit] = []
        for j in order[:top_k]:
            score = float(scores[j])
            if min_score is not None and score < min_score:
                break
            c = self.candidates[int(index[j])]
            hits.append(Hit(name=c.name, score=score, description=c.description))
        return hits


def _carrying(candidates: Sequence[Candidate], labels: Mapping[str, str]) -> list[int]:
    pairs = labels.items()
    return [i for i, c in enumerate(candidates) if all(c.labels.get(k) == v for k, v in pairs)]


def _ordered(candidates: Iterable[Candidate]) -> list[Candidate]:
    ordered = sorted(candidates, key=lambda c: c.name)
    for a, b in itertools.pairwise(ordered):
        if a.name == b.name:
            raise ValueError(f"two tools are named {a.name!r}: discovery needs unique names")
    return ordered


def _embed(embedder: Embedder, texts: Sequence[str]) -> npt.NDArray[np.float32]:
    import numpy as np

    if not texts:  # never asks the embedder (a remote one learns its dimension by a call)
        return np.zeros((0, 0), dtype=np.float32)
    vectors = np.asarray(embedder.embed(texts), dtype=np.float32)
    if vectors.ndim != 2 or vectors.shape[0] != len(texts):
        raise EmbedderError(
            f"embedder {embedder.name} returned shape {vectors.shape} for {len(texts)} texts"
        )
    return vectors


def _assemble(
    rows: Sequence[str],
    known: Mapping[str, npt.NDArray[np.float32]],
    missing: Sequence[int],
    fresh: npt.NDArray[np.float32] | None,
) -> npt.NDArray[np.float32]:
    """Rows in order: freshly embedded where ``missing``, else from ``known`` (``rows`` is
    never empty, so one of the two has a vector to take the dimension from)."""
    import numpy as np

    dim = fresh.shape[1] if fresh is not None else next(iter(known.values())).shape[0]
    vectors = np.zeros((len(rows), dim), dtype=np.float32)
    made = dict(zip(missing, fresh if fresh is not None else (), strict=True))
    for i, row in enumerate(rows):
        vectors[i] = made[i] if i in made else known[row]
    return vectors


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _checksum(vectors: npt.NDArray[np.float32]) -> str:
    return hashlib.sha256(vectors.tobytes()).hexdigest()


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9.+-]+", "_", name).strip("._") or "embedder"


def _read(path: Path, embedder: str, key: str | None) -> npt.NDArray[np.float32] | None:
    """The vectors of a cache file and its manifest, or ``None`` when anything is off."""
    manifest = _manifest(path.with_suffix(".json"))
    if manifest is None or manifest.get("embedder") != embedder:
        return None
    if key is not None and manifest.get("key") != key:
        return None
    import numpy as np

    try:
        vectors = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError):
        return None
    names = manifest.get("names")
    if (
        not isinstance(vectors, np.ndarray)
        or vectors.dtype != np.float32
        or vectors.ndim != 2
        or not isinstance(names, list)
        or vectors.shape != (len(names), manifest.get("dim"))
        or _checksum(vectors) != manifest.get("checksum")
    ):
        return None
    return vectors


def _manifest(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("format") != _FORMAT:
        return None
    return data


def _known_rows(
    cache_dir: Path, stem: str, embedder: str, wanted: set[str]
) -> dict[str, npt.NDArray[np.float32]]:
    """Vectors of wanted texts found in this embedder's recent cache files."""
    known: dict[str, npt.NDArray[np.float32]] = {}
    for manifest_path in _files(cache_dir, stem, ".json")[:_KEEP]:
        manifest = _manifest(manifest_path)
        rows = manifest.get("rows") if manifest else None
        if not isinstance(rows, list) or not wanted.intersection(rows):
            continue
        vectors = _read(manifest_path.with_suffix(".npy"), embedder, None)
        if vectors is None or len(rows) != len(vectors):
            continue
        for row, vector in zip(rows, vectors, strict=True):
            if row in wanted:
                known.setdefault(row, vector)
        if len(known) == len(wanted):
            break
    return known


def _files(cache_dir: Path, stem: str, suffix: str) -> list[Path]:
    """This embedder's cache files, newest first."""
    pattern = re.compile(re.escape(stem) + r"-[0-9a-f]{64}" + re.escape(suffix))
    found = []
    try:
        for entry in os.scandir(cache_dir):
            if pattern.fullmatch(entry.name):
                with contextlib.suppress(OSError):
                    found.append((entry.stat().st_mtime_ns, entry.name))
    except OSError:
        return []
    return [cache_dir / name for _, name in sorted(found, reverse=True)]


def _write(
    path: Path,
    vectors: npt.NDArray[np.float32],
    embedder: str,
    key: str,
    names: Sequence[str],
    rows: Sequence[str],
) -> str | None:
    """Write the vectors, then the manifest that vouches for them; the error, if any."""
    import numpy as np

    manifest = {
        "format": _FORMAT,
        "embedder": embedder,
        "dim": int(vectors.shape[1]),
        "key": key,
        "checksum": _checksum(vectors),
        "names": list(names),
        "rows": list(rows),
    }
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _atomic(path, lambda f: np.save(f, vectors, allow_pickle=False))
        payload = json.dumps(manifest, indent=1).encode("utf-8")
        _atomic(path.with_suffix(".json"), lambda f: f.write(payload))
    except OSError as exc:
        return f"could not write the tool index cache {path}: {exc.strerror or exc}"
    return None


def _atomic(path: Path, write: Any) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _prune(cache_dir: Path, stem: str) -> None:
    for old in _files(cache_dir, stem, ".json")[_KEEP:]:
        for suffix in (".json", ".npy"):
            with contextlib.suppress(OSError):
                old.with_suffix(suffix).unlink()
