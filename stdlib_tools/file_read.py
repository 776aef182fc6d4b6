"""Read a text file of the run's workspace, a slice at a time."""

from __future__ import annotations

from typing import Any

from stdlib_tools import workspace

#: what one call returns when the input names no ``max_bytes``
DEFAULT_MAX_BYTES = 100_000


def run(path: str, offset: int = 0, max_bytes: int = DEFAULT_MAX_BYTES) -> dict[str, Any]:
    """Up to ``max_bytes`` bytes of the file at ``path``, from byte ``offset``, decoded as
    UTF-8 (undecodable bytes become U+FFFD). ``truncated`` says the file goes on, from
    ``next_offset``."""
    if offset < 0:
        raise ValueError("offset must be 0 or more")
    if not 1 <= max_bytes <= workspace.MAX_READ_BYTES:
        raise ValueError(f"max_bytes must be between 1 and {workspace.MAX_READ_BYTES:,}")
    base = workspace.root()
    real = workspace.resolve(path, must_exist=True)
    name = workspace.shown(real, base)
    with workspace.open_regular(real, name) as file:
        size = file.seek(0, 2)
        file.seek(min(offset, size))
        data = file.read(max_bytes + 1)
    if b"\x00" in data[:8192]:
        raise ValueError(f"{name!r} looks like a binary file (it contains NUL bytes), not text")
    truncated = len(data) > max_bytes
    data = data[:max_bytes]
    if truncated and _char_boundary(data):  # a slice of one cut character stays as it is
        data = data[: _char_boundary(data)]
    start = min(offset, size)
    return {
        "path": name,
        "content": data.decode("utf-8", "replace"),
        "size": size,
        "offset": start,
        "next_offset": start + len(data),
        "truncated": truncated,
    }


def _char_boundary(data: bytes) -> int:
    """The length of ``data`` without a UTF-8 character cut at its end, so the next slice
    starts on a whole character."""
    for back in range(1, min(4, len(data)) + 1):
        byte = data[-back]
        if byte < 0x80:  # ASCII: nothing is cut
            return len(data)
        if byte >= 0xC0:  # the lead byte of the last character
            needed = 2 if byte < 0xE0 else 3 if byte < 0xF0 else 4
            return len(data) if back >= needed else len(data) - back
    return len(data)
