"""Files that hold traces, journals and memories are their owner's alone (#24 item 4):
created 0600 (folders 0700), whatever the umask. SQLite gives its -wal and -shm files the
database file's mode, so they follow."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

__all__ = ["private_dir", "private_file"]


def private_file(path: Path) -> None:
    """Create ``path`` empty and 0600 if it does not exist (an existing file is left as
    its owner set it)."""
    with contextlib.suppress(FileExistsError):
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        os.close(fd)
        os.chmod(path, 0o600)  # not loosened by an odd umask, and exactly 0600


def private_dir(path: Path) -> None:
    """``path`` and its missing parents; ``path`` itself 0700 when this creates it."""
    if path.is_dir():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        path.mkdir(mode=0o700)
        os.chmod(path, 0o700)
