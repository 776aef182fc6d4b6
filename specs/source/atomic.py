"""Writing a file so that readers see the old content or the new, never half of it."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8, ``\\n`` line ends) to ``path`` through a temporary file beside
    it, then rename it into place. The file gets the usual mode (0666 less the umask), not the
    private one temporary files are made with."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_if_changed(path: Path, text: str) -> bool:
    """``write_atomic`` unless ``path`` already holds ``text``; whether it wrote."""
    if path.is_file() and path.read_text("utf-8") == text:
        return False
    write_atomic(path, text)
    return True


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
