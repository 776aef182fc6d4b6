"""Pointing inside a string value: a template's line and a word on it, back to file:line:col."""

from __future__ import annotations

import re
from collections.abc import Mapping

from specs.source import DataPath, Document, Span


def inside(
    doc: Document, files: Mapping[str, str], path: DataPath, lineno: int, needles: tuple[str, ...]
) -> Span:
    """The span of the first of ``needles`` on line ``lineno`` of the string at ``path``.

    Block scalars (``|``, ``>``) start on the line after their indicator; plain and quoted
    ones on their own line. When the needle cannot be found (folded or escaped text), the
    best line is still given, pointing at its first non-blank character.
    """
    span = doc.locate(path)
    text = files.get(doc.path)
    if text is None:
        return span
    lines = text.splitlines()
    block = doc.styles.get(path) in ("|", ">")
    first = span.line + 1 if block else span.line
    last = max(first, min(span.end_line, len(lines)))
    target = min(max(first + lineno - 1, first), last)
    order = [target, *range(first, last + 1)]
    for needle in needles:
        if not needle:
            continue
        for number in order:
            if number > len(lines):
                continue
            line = lines[number - 1]
            start = span.col - 1 if number == span.line else 0
            found = _find_whole(line, needle, start)
            if found >= 0:
                return Span(doc.path, number, found + 1, number, found + 1 + len(needle))
    if target <= len(lines):
        line = lines[target - 1]
        col = len(line) - len(line.lstrip()) + 1
        if target == span.line:
            col = span.col
        return Span(doc.path, target, col, target, len(line) + 1)
    return span


#: how many places of a name on one line are tried for being inside a Jinja tag
_TAG_TRIES = 32


def _find_whole(line: str, needle: str, start: int) -> int:
    """Where ``needle`` stands on its own (not inside a longer name or dotted path), inside
    ``{{ }}`` or ``{% %}`` if it is there; else where it first appears at all; else -1."""
    pattern = re.compile(r"(?<![\w.])" + re.escape(needle) + r"(?![\w.\[])")
    named = needle[:1].isalnum() or needle[:1] == "_"
    first = -1
    # Only the first few places are tried for a tag: each try reads the line up to the place,
    # and a line of a million short words would make trying them all quadratic.
    for count, found in enumerate(pattern.finditer(line, start)):
        at = found.start()
        if first < 0:
            first = at
        if not named or count >= _TAG_TRIES:
            break
        if _in_tag(line, at):  # a variable's name: the one in a tag, not the one in prose
            return at
    return first if first >= 0 else line.find(needle, start)


def _in_tag(line: str, at: int) -> bool:
    """Whether position ``at`` is inside a Jinja tag opened on this line (or before it)."""
    before = line[:at]
    opened = max(before.rfind("{{"), before.rfind("{%"))
    closed = max(before.rfind("}}"), before.rfind("%}"))
    if opened != closed:  # one of them was found
        return opened > closed
    after = re.search(r"\{\{|\{%|\}\}|%\}", line[at:])  # a tag opened on an earlier line?
    return after is not None and after.group(0) in ("}}", "%}")
