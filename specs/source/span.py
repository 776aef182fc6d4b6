"""Source locations. A :class:`Span` never takes part in the equality or hash of what it marks."""

from __future__ import annotations

from typing import NamedTuple


class Span(NamedTuple):
    """A region of a source file; lines and columns are 1-based, ``end_*`` is exclusive.

    A named tuple rather than a dataclass: the loader makes one per YAML node, and tuples are
    built several times faster.
    """

    path: str
    line: int
    col: int
    end_line: int
    end_col: int

    @classmethod
    def point(cls, path: str, line: int = 1, col: int = 1) -> Span:
        return cls(path, line, col, line, col + 1)

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.col}"
