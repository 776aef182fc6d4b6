"""List the files and folders of the run's workspace."""

from __future__ import annotations

import fnmatch
import os
import stat
from pathlib import Path
from typing import Any

from stdlib_tools import workspace

#: entries one call returns when the input names no ``limit``
DEFAULT_LIMIT = 500


def run(
    path: str = ".", pattern: str | None = None, recursive: bool = False, limit: int = DEFAULT_LIMIT
) -> dict[str, Any]:
    """The entries of the folder at ``path``, sorted by path: each with its ``path``
    (relative to the workspace), ``name``, ``type`` (file, folder, symlink or other) and
    ``size`` in bytes (files only). ``pattern`` is a glob matched against the name, or
    against the path below ``path`` when it has a ``/``. Symbolic links are listed, never
    followed."""
    if not 1 <= limit <= workspace.MAX_LIST_ENTRIES:
        raise ValueError(f"limit must be between 1 and {workspace.MAX_LIST_ENTRIES:,}")
    base = workspace.root()
    folder = workspace.resolve(path, must_exist=True)
    if not folder.is_dir():
        raise ValueError(f"{workspace.shown(folder, base)!r} is a file, not a folder")
    found, complete = _walk(folder, recursive)
    entries: list[dict[str, Any]] = []
    truncated = not complete
    for below, full, info in sorted(found, key=lambda e: e[0]):
        if pattern is not None and not _matches(pattern, below):
            continue
        if len(entries) == limit:
            truncated = True
            break
        entries.append(_describe(full, info, base))
    return {"path": workspace.shown(folder, base), "entries": entries, "truncated": truncated}


def _walk(folder: Path, recursive: bool) -> tuple[list[tuple[str, Path, os.stat_result]], bool]:
    """Every entry under ``folder`` (below it too when ``recursive``), as (the path below
    ``folder``, full path, lstat), and whether that is all of them: a walk stops after a
    few times the listing limit, so that a huge tree costs a bounded time."""
    found: list[tuple[str, Path, os.stat_result]] = []
    pending = [(folder, "")]
    cap = 4 * workspace.MAX_LIST_ENTRIES
    while pending:
        if len(found) >= cap:
            return found, False
        current, prefix = pending.pop()
        try:
            scanned = list(os.scandir(current))
        except OSError:
            continue  # unreadable folders are left out
        for item in scanned:
            below = prefix + item.name
            try:
                info = item.stat(follow_symlinks=False)
            except OSError:
                continue
            found.append((below, Path(item.path), info))
            if recursive and stat.S_ISDIR(info.st_mode):
                pending.append((Path(item.path), below + "/"))
    return found, True


def _matches(pattern: str, below: str) -> bool:
    subject = below if "/" in pattern else below.rsplit("/", 1)[-1]
    return fnmatch.fnmatchcase(subject, pattern)


def _describe(full: Path, info: os.stat_result, base: Path) -> dict[str, Any]:
    mode = info.st_mode
    kind = (
        "file"
        if stat.S_ISREG(mode)
        else "folder"
        if stat.S_ISDIR(mode)
        else "symlink"
        if stat.S_ISLNK(mode)
        else "other"
    )
    return {
        "path": full.relative_to(base).as_posix(),
        "name": full.name,
        "type": kind,
        "size": info.st_size if kind == "file" else None,
    }
