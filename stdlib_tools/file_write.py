"""Write a text file of the run's workspace: replaced whole and atomically, or appended to."""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path
from typing import Any, Literal

from stdlib_tools import workspace


def run(
    path: str, content: str, mode: Literal["overwrite", "append"] = "overwrite"
) -> dict[str, Any]:
    """Write ``content`` (UTF-8) to the file at ``path``, creating missing parent folders.
    ``overwrite`` replaces the file atomically: readers see the old file or the new one,
    never half of it, and a failed write leaves the old file as it was."""
    if mode not in ("overwrite", "append"):
        raise ValueError(f"mode must be 'overwrite' or 'append', not {mode!r}")
    try:
        data = content.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(
            f"content is not valid Unicode text: an unpaired surrogate at character {exc.start}"
        ) from None
    base = workspace.root()
    real = workspace.resolve(path, must_exist=False)
    name = workspace.shown(real, base)
    if real == base or real.is_dir():
        raise ValueError(f"{name!r} is a folder: give the path of a file in it")
    existed = real.exists()
    before = real.stat().st_size if existed and mode == "append" else 0
    if before + len(data) > workspace.MAX_WRITE_BYTES:
        raise ValueError(
            f"the file would be {before + len(data):,} bytes, over the limit of "
            f"{workspace.MAX_WRITE_BYTES:,}"
        )
    _make_parents(real.parent, base, name)
    if mode == "append":
        _append(real, data, name)
    else:
        _replace(real, data, name)
    return {
        "path": name,
        "bytes_written": len(data),
        "size": real.stat().st_size,
        "created": not existed,
    }


def _make_parents(folder: Path, base: Path, name: str) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise ValueError(f"cannot create {name!r}: a part of its folder is a file") from None
    except OSError as exc:
        raise ValueError(f"cannot create the folder of {name!r}: {exc.strerror}") from None
    # a folder made just now through a link swapped in since resolve() would be outside
    if not Path(os.path.realpath(folder)).is_relative_to(base):
        raise workspace.WorkspaceError(f"{name!r} leads outside the workspace")


def _append(real: Path, data: bytes, name: str) -> None:
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        fd = os.open(real, flags, 0o644)
    except OSError as exc:
        raise ValueError(f"cannot append to {name!r}: {exc.strerror}") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise workspace.WorkspaceError(f"{name!r} is not a regular file")
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    except OSError as exc:
        raise ValueError(f"cannot append to {name!r}: {exc.strerror}") from None
    finally:
        os.close(fd)


def _replace(real: Path, data: bytes, name: str) -> None:
    """Write ``data`` to a temporary file beside ``real``, then rename it over ``real``:
    on any failure the temporary file is removed and ``real`` is untouched."""
    try:
        mode = stat.S_IMODE(real.stat().st_mode)
    except FileNotFoundError:
        mode = 0o644
    try:
        fd, temp = tempfile.mkstemp(prefix=f".{real.name[:50]}.", suffix=".tmp", dir=real.parent)
    except OSError as exc:
        raise ValueError(f"cannot write {name!r}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temp, mode)
        os.replace(temp, real)
    except BaseException as exc:
        Path(temp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise ValueError(f"cannot write {name!r}: {exc.strerror or exc}") from None
        raise
