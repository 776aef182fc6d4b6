"""A loaded YAML document: plain data plus the location of every node in it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from specs.source.span import Span

#: A path into a document's data: mapping keys and sequence indices.
DataPath = tuple[str | int, ...]


def dotted(path: DataPath) -> str:
    """``spec.tasks[0].prompt``: a path as a person writes it."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


@dataclass(frozen=True, slots=True)
class Document:
    """One YAML document of a file (``index``: its position in the file, from 0).

    ``spans`` locates every value (mapping entries by their value, sequence items by
    themselves); ``key_spans`` locates the key of every mapping entry; ``styles`` keeps the
    YAML style (``|``, ``>``, ``'``, ``"``) of string scalars that were not plain, which the
    template checks need to map a template's line back to the file.
    """

    path: str
    index: int
    data: Any
    spans: Mapping[DataPath, Span] = field(repr=False)
    key_spans: Mapping[DataPath, Span] = field(repr=False)
    styles: Mapping[DataPath, str] = field(repr=False)
    #: a mapping had a key twice (an error): which value was meant is unknown
    ambiguous: bool = False

    @property
    def span(self) -> Span:
        return self.spans[()]

    def locate(self, path: DataPath, *, key: bool = False) -> Span:
        """The span of ``path``, or of its nearest ancestor that has one.

        With ``key=True`` the span of the mapping key is preferred (for "unknown key" errors).
        """
        probe = tuple(path)
        if key and probe in self.key_spans:
            return self.key_spans[probe]
        while probe:
            found = self.spans.get(probe)
            if found is not None:
                return found
            probe = probe[:-1]
        return self.spans[()]
