"""Search the text files of the run's workspace for a word, phrase or regular expression.

The search itself runs in a child Python process with a wall-clock limit: a regular
expression that backtracks forever (``(a+)+$``) is stopped there, and never holds up the
run that asked for it.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import stat
import sys
from pathlib import Path
from typing import Any

from stdlib_tools import workspace

#: the longest pattern accepted
MAX_PATTERN_LENGTH = 500
#: the most matches one call may ask for
MAX_RESULTS = 1_000
#: the wall-clock time a search may take, in seconds
TIMEOUT_S = 5.0
#: the most bytes one search reads, over all files
MAX_TOTAL_BYTES = 200_000_000
#: the longest line text shown with a match (a window around the match on longer lines)
MAX_LINE_SHOWN = 400
_BINARY_PROBE = 8192
#: the folder holding the stdlib_tools package, for the child process to import it from
_PACKAGE_PARENT = str(Path(__file__).resolve().parent.parent)


async def run(
    pattern: str,
    regex: bool = False,
    ignore_case: bool = False,
    path: str = ".",
    glob: str | None = None,
    max_results: int = 100,
) -> dict[str, Any]:
    """Lines of the text files under ``path`` (a folder or one file) that contain
    ``pattern``: each match with its file, line and column (both from 1) and the line's
    text. ``glob`` keeps only files whose name (or path below ``path``, when the glob has a
    ``/``) matches it. Binary files, files over the size limit and symbolic links are
    skipped."""
    if not pattern:
        raise ValueError("pattern is empty")
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise ValueError(f"pattern is longer than {MAX_PATTERN_LENGTH} characters")
    if not 1 <= max_results <= MAX_RESULTS:
        raise ValueError(f"max_results must be between 1 and {MAX_RESULTS:,}")
    flags = re.IGNORECASE if ignore_case else 0
    try:
        re.compile(pattern if regex else re.escape(pattern), flags)
    except re.error as exc:
        where = f" at position {exc.pos + 1}" if exc.pos is not None else ""
        raise ValueError(f"invalid regular expression{where}: {exc.msg}") from None
    base = workspace.root()
    start = workspace.resolve(path, must_exist=True)
    request = {
        "base": str(base),
        "start": str(start),
        "pattern": pattern if regex else re.escape(pattern),
        "flags": flags,
        "glob": glob,
        "max_results": max_results,
        "max_file_bytes": workspace.MAX_SEARCH_FILE_BYTES,
        "max_files": workspace.MAX_SEARCH_FILES,
    }
    return await _in_child(request)


async def _in_child(request: dict[str, Any]) -> dict[str, Any]:
    import anyio  # lazily: the compiler reads this package's specs, never this module

    command = [
        sys.executable,
        "-I",
        "-S",
        "-c",
        f"import sys; sys.path.insert(0, {_PACKAGE_PARENT!r}); "
        "from stdlib_tools.text_search import _serve; _serve()",
    ]
    with anyio.move_on_after(TIMEOUT_S) as scope:
        done = await anyio.run_process(command, input=json.dumps(request).encode(), check=False)
    if scope.cancelled_caught:
        raise ValueError(
            f"the search took longer than {TIMEOUT_S:g} s and was stopped: simplify the "
            "pattern (nested repeats such as (a+)+ can backtrack for ever) or search fewer "
            "files (path, glob)"
        )
    if done.returncode != 0:
        said = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise ValueError("the search failed: " + (said[-1] if said else f"{done.returncode}"))
    answer: dict[str, Any] = json.loads(done.stdout)
    return answer


# -- in the child process ------------------------------------------------------------------


def _serve() -> None:
    """The child's side: a request as JSON on stdin, the answer as JSON on stdout."""
    request = json.loads(sys.stdin.buffer.read())
    sys.stdout.write(json.dumps(search(**request)))


def search(
    *,
    base: str,
    start: str,
    pattern: str,
    flags: int,
    glob: str | None,
    max_results: int,
    max_file_bytes: int,
    max_files: int,
) -> dict[str, Any]:
    """The search, over real paths already checked to be inside the workspace ``base``."""
    compiled = re.compile(pattern, flags)
    matches: list[dict[str, Any]] = []
    searched = skipped = read = 0
    truncated = False
    for full in _files(Path(start), glob):
        if searched + skipped >= max_files or read >= MAX_TOTAL_BYTES:
            truncated = True
            break
        text = _text(full, max_file_bytes)
        if text is None:
            skipped += 1
            continue
        searched += 1
        read += len(text)
        shown = Path(full).relative_to(base).as_posix()
        for number, line in enumerate(text.split("\n"), 1):
            found = compiled.search(line)
            if found is None:
                continue
            if len(matches) == max_results:
                truncated = True
                break
            matches.append(
                {
                    "file": shown,
                    "line": number,
                    "column": found.start() + 1,
                    "text": _window(line.rstrip("\r"), found.start()),
                }
            )
        if truncated:
            break
    return {
        "matches": matches,
        "truncated": truncated,
        "files_searched": searched,
        "files_skipped": skipped,
    }


def _files(start: Path, glob: str | None) -> list[str]:
    """The full paths of the files to search, in path order; symbolic links to folders are
    never followed (and links to files are skipped when read)."""
    if start.is_file():
        return [str(start)]
    found: list[tuple[str, str]] = []
    for folder, folders, names in os.walk(start, followlinks=False):
        folders.sort()
        prefix = os.path.relpath(folder, start)
        for name in sorted(names):
            below = name if prefix == "." else f"{prefix}/{name}"
            if glob is not None:
                subject = below if "/" in glob else name
                if not fnmatch.fnmatchcase(subject, glob):
                    continue
            found.append((below, os.path.join(folder, name)))
    return [full for _, full in sorted(found)]


def _text(full: str, max_bytes: int) -> str | None:
    """The file's text, or ``None`` to skip it: not a regular file (a symbolic link, a
    FIFO), larger than ``max_bytes``, binary (a NUL byte near its start) or unreadable."""
    try:
        fd = os.open(full, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as file:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size > max_bytes:
            return None
        data = file.read(max_bytes + 1)
    if len(data) > max_bytes or b"\x00" in data[:_BINARY_PROBE]:
        return None
    return data.decode("utf-8", "replace")


def _window(line: str, at: int) -> str:
    if len(line) <= MAX_LINE_SHOWN:
        return line
    begin = max(0, at - MAX_LINE_SHOWN // 4)
    end = begin + MAX_LINE_SHOWN
    return ("…" if begin else "") + line[begin:end] + ("…" if end < len(line) else "")
