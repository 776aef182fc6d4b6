"""Paths that specs name (an OpenAPI document, a scripted model's turns, a python tool's
folders) are data from whoever wrote the spec: checked before any is used, and read only
as regular files, with a bounded read. A CI job or a server that compiles whatever a pull
request contains never hangs on a FIFO, fills its memory from ``/dev/zero``, or, when the
compile is confined to a folder, reads a file outside it."""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterator
from contextvars import ContextVar
from pathlib import Path, PurePath

__all__ = ["confined", "outside", "path_problem", "read_regular"]

#: the folder a compile may read files from (``None``: anywhere); see :func:`confined`
CONFINED: ContextVar[Path | None] = ContextVar("kiln_confined", default=None)


def path_problem(value: str) -> str | None:
    """Why ``value`` cannot name a file on this machine, or ``None``."""
    if "\x00" in value:
        return "it holds a NUL byte"
    if len(value.encode("utf-8", "surrogatepass")) > 4096:
        return "it is longer than 4,096 bytes"
    if any(len(part.encode("utf-8", "surrogatepass")) > 255 for part in PurePath(value).parts):
        return "a name in it is longer than 255 bytes"
    return None


def outside(path: Path) -> Path | None:
    """The folder a confined compile may read, when ``path`` is not in it; else ``None``."""
    root = CONFINED.get()
    if root is None:
        return None
    try:
        resolved = path.resolve()
    except (OSError, RuntimeError):
        return root
    return None if resolved.is_relative_to(root) else root


@contextlib.contextmanager
def confined(root: Path | None) -> Iterator[None]:
    """Within this block, spec files may read only files under ``root``."""
    token = CONFINED.set(root.resolve() if root is not None else None)
    try:
        yield
    finally:
        CONFINED.reset(token)


def read_regular(path: Path, limit: int) -> bytes:
    """The bytes of the regular file ``path``, at most ``limit`` of them; raises
    :class:`OSError` (with a person's words in ``strerror``) for anything else: a FIFO, a
    device, a folder, a file over the limit."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise OSError(0, "not a regular file (a folder, a FIFO or a device)")
        chunks: list[bytes] = []
        size = 0
        while chunk := os.read(fd, min(1 << 20, limit + 1 - size)):
            chunks.append(chunk)
            size += len(chunk)
            if size > limit:
                raise OSError(0, f"more than the limit of {limit:,} bytes")
        return b"".join(chunks)
    finally:
        os.close(fd)
