"""The per-run workspace: the one folder the file tools may read and write.

The runtime sets :data:`WORKSPACE` for each run; the file tools call :func:`resolve` on
every path a model gives them, which refuses anything that would reach outside the
workspace: absolute paths, ``..`` that climbs above it, symbolic links that point out of
it, NUL bytes, and files that are not regular files or folders (devices, FIFOs, sockets).
"""

from __future__ import annotations

import os
import stat
from contextvars import ContextVar
from pathlib import Path, PurePosixPath
from typing import BinaryIO

__all__ = [
    "MAX_LIST_ENTRIES",
    "MAX_READ_BYTES",
    "MAX_SEARCH_FILES",
    "MAX_SEARCH_FILE_BYTES",
    "MAX_WRITE_BYTES",
    "WORKSPACE",
    "WorkspaceError",
    "open_regular",
    "resolve",
    "root",
    "shown",
]

#: the folder of the current run's files; ``None`` outside a run
WORKSPACE: ContextVar[Path | None] = ContextVar("kiln_workspace", default=None)

#: the most ``file_read`` returns in one call
MAX_READ_BYTES = 1_000_000
#: the largest file ``file_write`` writes (for ``append``: the file's size afterwards)
MAX_WRITE_BYTES = 10_000_000
#: the most entries ``file_list`` returns
MAX_LIST_ENTRIES = 10_000
#: files larger than this are skipped by ``text_search``
MAX_SEARCH_FILE_BYTES = 5_000_000
#: the most files one ``text_search`` looks at
MAX_SEARCH_FILES = 20_000
#: the longest path a tool accepts
MAX_PATH_LENGTH = 4_096


class WorkspaceError(ValueError):
    """A path the file tools refuse, or no workspace to resolve it in."""


def root() -> Path:
    """The current run's workspace folder (its real path, symbolic links resolved), made
    if it does not exist yet."""
    folder = WORKSPACE.get()
    if folder is None:
        raise WorkspaceError(
            "no workspace is set for this run: the file tools only work inside a run's "
            "workspace folder"
        )
    real = Path(os.path.realpath(folder))
    try:
        real.mkdir(parents=True, exist_ok=True)  # made when a tool first needs it
    except OSError as exc:
        raise WorkspaceError(
            f"the workspace {str(folder)!r} cannot be made: {exc.strerror or exc}"
        ) from None
    if not real.is_dir():
        raise WorkspaceError(f"the workspace {str(folder)!r} is not a folder")
    return real


def resolve(relative: str, *, must_exist: bool) -> Path:
    """The real path of ``relative`` inside the workspace, or a :class:`WorkspaceError`
    that says why not. With ``must_exist``, the path must name an existing file or
    folder; without, it may name a new one (whose existing parents are checked)."""
    base = root()
    shown = relative if len(relative) <= 200 else relative[:200] + "…"
    if "\x00" in relative:
        raise WorkspaceError(f"path {shown!r} contains a NUL character")
    if len(relative) > MAX_PATH_LENGTH:
        raise WorkspaceError(f"path is longer than {MAX_PATH_LENGTH} characters")
    pure = PurePosixPath(relative.strip() or ".")
    if pure.is_absolute():
        raise WorkspaceError(
            f"path {shown!r} is absolute: give a path relative to the workspace, such as "
            "'notes/todo.txt'"
        )
    if os.path.normpath(pure).split(os.sep, 1)[0] == "..":
        raise WorkspaceError(f"path {shown!r} leads outside the workspace (through '..')")
    real = Path(os.path.realpath(base / pure))
    if not real.is_relative_to(base):
        raise WorkspaceError(
            f"path {shown!r} leads outside the workspace (through a symbolic link)"
        )
    try:
        info = real.stat()
    except FileNotFoundError:
        if must_exist:
            raise WorkspaceError(f"no file or folder {shown!r} in the workspace") from None
        return real
    except NotADirectoryError:
        raise WorkspaceError(f"path {shown!r}: a part of it is a file, not a folder") from None
    except OSError as exc:
        raise WorkspaceError(f"path {shown!r}: {exc.strerror or exc}") from None
    if not (stat.S_ISREG(info.st_mode) or stat.S_ISDIR(info.st_mode)):
        raise WorkspaceError(
            f"path {shown!r} is a special file (a device, FIFO or socket), not a file or folder"
        )
    return real


def shown(path: Path, base: Path) -> str:
    """``path`` (inside the workspace ``base``) as the tools show it: relative, with ``/``."""
    rel = path.relative_to(base)
    return rel.as_posix() if rel.parts else "."


def open_regular(path: Path, shown_as: str) -> BinaryIO:
    """``path`` opened for reading, refused unless it is a regular file at the moment it
    is opened: never through a symbolic link swapped in since :func:`resolve`, and never
    blocking on a FIFO."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise WorkspaceError(f"cannot open {shown_as!r}: {exc.strerror or exc}") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        what = "a folder" if stat.S_ISDIR(mode) else "a special file"
        raise WorkspaceError(f"{shown_as!r} is {what}, not a file one can read")
    return os.fdopen(fd, "rb")
