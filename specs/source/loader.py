"""Safe YAML loading that keeps the location of every node.

The loader composes plain data straight from the parser's event stream instead of using
PyYAML's recursive composer and constructor. That gives it, in one pass and without
recursion: a span for every value and key, duplicate keys as errors instead of last-wins,
a nesting-depth limit checked before anything deep is built, and an alias budget that
rejects a billion-laughs document after counting a few thousand nodes rather than
expanding it. Only the YAML core schema is accepted: any other tag is an error.
Timestamps stay strings and mapping keys stay the text that was written (so ``on:`` is
the key ``"on"``, not ``True``).
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import yaml
from yaml.constructor import SafeConstructor
from yaml.resolver import Resolver

from specs.source.document import DataPath, Document
from specs.source.span import Span

_Parser: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

_STR = "tag:yaml.org,2002:str"
_CORE = {
    "tag:yaml.org,2002:null": SafeConstructor.construct_yaml_null,
    "tag:yaml.org,2002:bool": SafeConstructor.construct_yaml_bool,
    "tag:yaml.org,2002:int": SafeConstructor.construct_yaml_int,
    "tag:yaml.org,2002:float": SafeConstructor.construct_yaml_float,
    _STR: None,
    "tag:yaml.org,2002:timestamp": None,  # kept as the written string
}
_COLLECTION_TAGS = {None, "!", "tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"}


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds on what one load may cost. Every limit breached is an error, never a truncation."""

    max_file_bytes: int = 4 * 1024 * 1024
    max_documents: int = 1000
    max_depth: int = 64
    max_nodes: int = 200_000  # per document, counting every node an alias expands to


DEFAULT_LIMITS: Final = Limits()


@dataclass(frozen=True, slots=True)
class LoadIssue:
    """A problem found while loading; the compiler turns it into a diagnostic."""

    code: str
    message: str
    span: Span
    hint: str | None = None


@dataclass(frozen=True, slots=True)
class SourceFile:
    path: str
    text: str


@dataclass(frozen=True, slots=True)
class LoadResult:
    files: tuple[SourceFile, ...]
    documents: tuple[Document, ...]
    issues: tuple[LoadIssue, ...]


class _Abort(Exception):
    """Stops composing the current document (the issue is already recorded)."""


_constructor = SafeConstructor()
_resolver = Resolver()


@functools.lru_cache(maxsize=65_536)
def _resolve_plain(value: str) -> str:
    """The core-schema tag of a plain scalar (cached: specs repeat the same words a lot)."""
    tag: str = _resolver.resolve(yaml.ScalarNode, value, (True, False))  # type: ignore[no-untyped-call]
    return tag


_ScalarEvent = yaml.ScalarEvent
_NOT_PLAIN = object()


@functools.lru_cache(maxsize=65_536)
def _plain_value(text: str) -> Any:
    """The value of a plain scalar, or ``_NOT_PLAIN`` when it needs the careful path (an
    error to report, a non-finite float). Values are immutable, so caching them is safe."""
    tag = _resolve_plain(text)
    build = _CORE.get(tag, _NOT_PLAIN)
    if build is _NOT_PLAIN:
        return _NOT_PLAIN
    if build is None:
        return text
    try:
        value = build(_constructor, yaml.ScalarNode(tag, text))  # type: ignore[operator]
    except (ValueError, yaml.YAMLError):
        return _NOT_PLAIN
    if isinstance(value, float) and not math.isfinite(value):
        return _NOT_PLAIN
    return value


def _span(path: str, start: Any, end: Any) -> Span:
    return Span(path, start.line + 1, start.column + 1, end.line + 1, end.column + 1)


@dataclass(slots=True)
class _Frame:
    """A collection being built, with where its children go."""

    value: dict[str, Any] | list[Any]
    path: DataPath
    start: Any
    anchor: str | None = None
    is_map: bool = True
    size: int = 1
    pending_key: str | None = None
    pending_key_span: Span | None = None
    merges: list[dict[str, Any]] = field(default_factory=list)
    explicit_keys: dict[str, Span] = field(default_factory=dict)


class _Composer:
    """Builds the documents of one file from its events."""

    def __init__(self, path: str, limits: Limits) -> None:
        self.path = path
        self.limits = limits
        self.issues: list[LoadIssue] = []
        self.documents: list[Document] = []

    # -- driving -------------------------------------------------------------------------

    def run(self, events: Iterator[Any]) -> None:
        seen = 0  # documents started, kept or not: empty and broken ones count too
        for event in events:
            if isinstance(event, yaml.DocumentStartEvent):
                seen += 1
                if seen > self.limits.max_documents:
                    self._issue(
                        "K1004",
                        f"more than {self.limits.max_documents} documents in one file",
                        _span(self.path, event.start_mark, event.end_mark),
                        "split the file, or raise the document limit",
                    )
                    return
                self._document(events, event, seen - 1)

    def _document(self, events: Iterator[Any], start_event: Any, index: int) -> None:
        self.spans: dict[DataPath, Span] = {}
        self.key_spans: dict[DataPath, Span] = {}
        self.styles: dict[DataPath, str] = {}
        self.anchors: dict[str, tuple[Any, int]] = {}
        self.nodes = 0
        self.ambiguous = False
        try:
            root = self._compose_document(events)
        except _Abort:
            for event in events:  # skip to the end of this document
                if isinstance(event, yaml.DocumentEndEvent):
                    break
            return
        if root is None:
            return  # an empty document (a stray '---') carries nothing
        self.spans.setdefault((), _span(self.path, start_event.start_mark, start_event.end_mark))
        self.documents.append(
            Document(
                path=self.path,
                index=index,
                data=root,
                spans=self.spans,
                key_spans=self.key_spans,
                styles=self.styles,
                ambiguous=self.ambiguous,
            )
        )

    def _issue(self, code: str, message: str, span: Span, hint: str | None = None) -> None:
        self.issues.append(LoadIssue(code, message, span, hint))

    # -- composing -----------------------------------------------------------------------

    def _compose_document(self, events: Iterator[Any]) -> Any:
        stack: list[_Frame] = []
        root: Any = None
        event: Any
        for event in events:
            if type(event) is _ScalarEvent and stack and self._plain_scalar(stack[-1], event):
                continue
            if isinstance(event, yaml.DocumentEndEvent):
                return root
            if isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
                frame = stack.pop()
                value, size = self._finish(frame, event)
                if not stack:
                    root = value
                else:
                    self._attach(stack[-1], value, size, event)
                continue
            if stack and stack[-1].is_map and stack[-1].pending_key is None:
                self._key(stack[-1], event)  # rejects collections and aliases used as keys
                continue
            path = self._child_path(stack[-1]) if stack else ()
            if isinstance(event, yaml.MappingStartEvent | yaml.SequenceStartEvent):
                if len(stack) >= self.limits.max_depth:
                    self._issue(
                        "K1005",
                        f"nesting deeper than {self.limits.max_depth} levels",
                        _span(self.path, event.start_mark, event.end_mark),
                        "flatten the structure; specs never need to nest this deep",
                    )
                    raise _Abort
                if event.tag not in _COLLECTION_TAGS:
                    self._bad_tag(event)
                is_map = isinstance(event, yaml.MappingStartEvent)
                frame = _Frame({} if is_map else [], path, event.start_mark, event.anchor, is_map)
                stack.append(frame)
                continue
            value, size = self._leaf(event, path)
            if not stack:
                root = value
            else:
                self._attach(stack[-1], value, size, event)
        return root

    def _plain_scalar(self, top: _Frame, event: Any) -> bool:
        """The fast path for most events: a plain scalar as a key or a value. False when the
        event needs the careful path (tags, anchors, quoting that changes types, limits)."""
        start, end = event.start_mark, event.end_mark
        span = Span(self.path, start.line + 1, start.column + 1, end.line + 1, end.column + 1)
        if top.pending_key is None and top.is_map:
            if event.tag is None and event.anchor is None:
                top.pending_key = event.value
                top.pending_key_span = span
            else:
                self._key(top, event)
            return True
        if event.tag is not None or event.anchor is not None or not event.implicit[0]:
            return False
        value = _plain_value(event.value)
        if value is _NOT_PLAIN or self.nodes >= self.limits.max_nodes:
            return False
        self.nodes += 1
        self.spans[self._child_path(top)] = span
        self._attach(top, value, 1, event)
        return True

    def _child_path(self, frame: _Frame) -> DataPath:
        if frame.is_map:
            return (*frame.path, frame.pending_key or "")
        return (*frame.path, len(frame.value))

    def _key(self, frame: _Frame, event: Any) -> None:
        """A mapping key that is not a plain scalar (the common case never comes here)."""
        span = _span(self.path, event.start_mark, event.end_mark)
        scalar = isinstance(event, yaml.ScalarEvent)
        if scalar and event.anchor is None and event.tag in (None, "!", _STR):
            frame.pending_key = event.value  # written as !!str, still a plain string
            frame.pending_key_span = span
            return
        if scalar and event.tag not in (None, "!") and event.tag not in _CORE:
            self._bad_tag(event)
        self._issue(
            "K1003",
            "mapping keys must be plain strings",
            span,
            "complex, tagged, anchored and aliased keys are not part of the spec language",
        )
        raise _Abort

    def _leaf(self, event: Any, path: DataPath) -> tuple[Any, int]:
        span = _span(self.path, event.start_mark, event.end_mark)
        if isinstance(event, yaml.AliasEvent):
            if event.anchor not in self.anchors:
                self._issue("K1003", f"unknown alias *{event.anchor}", span)
                raise _Abort
            value, size = self.anchors[event.anchor]
            self._count(size, span)
            self.spans[path] = span
            return value, size
        value = self._scalar(event, span)
        self._count(1, span)
        self.spans[path] = span
        if isinstance(value, str) and event.style:
            self.styles[path] = event.style
        if event.anchor:
            self.anchors[event.anchor] = (value, 1)
        return value, 1

    def _count(self, size: int, span: Span) -> None:
        self.nodes += size
        if self.nodes > self.limits.max_nodes:
            self._issue(
                "K1006",
                f"document expands to more than {self.limits.max_nodes} nodes",
                span,
                "aliases that expand to huge trees (a 'billion laughs' document) are rejected",
            )
            raise _Abort

    def _scalar(self, event: Any, span: Span) -> Any:
        tag = event.tag
        if tag in (None, "!"):
            plain = event.implicit[0]
            tag = _resolve_plain(event.value) if plain else _STR
        if tag not in _CORE:
            self._bad_tag(event)
        build = _CORE[tag]
        if build is None:
            return event.value
        try:
            value = build(_constructor, yaml.ScalarNode(tag, event.value))
        except (ValueError, yaml.YAMLError):
            self._issue("K1003", f"{event.value!r} is not a valid {tag.rsplit(':', 1)[-1]}", span)
            raise _Abort from None
        if isinstance(value, float) and not math.isfinite(value):
            self._issue(
                "K1003",
                f"{event.value!r}: infinite and NaN numbers are not allowed in specs",
                span,
                "quote it if you meant a string",
            )
            raise _Abort
        return value

    def _bad_tag(self, event: Any) -> None:
        tag = str(event.tag)
        written = "!!" + tag.removeprefix("tag:yaml.org,2002:") if tag.startswith("tag:") else tag
        start = event.start_mark
        self._issue(
            "K1008",
            f"unsupported YAML tag {written}",
            Span(
                self.path,
                start.line + 1,
                start.column + 1,
                start.line + 1,
                start.column + 1 + len(written),
            ),
            "specs use plain YAML only: remove the tag (tags can construct arbitrary objects)",
        )
        raise _Abort

    def _attach(self, frame: _Frame, value: Any, size: int, event: Any) -> None:
        frame.size += size
        if isinstance(frame.value, list):
            frame.value.append(value)
            return
        key = frame.pending_key
        key_span = frame.pending_key_span
        assert key is not None and key_span is not None
        frame.pending_key = None
        if key == "<<":
            self._merge_source(frame, value, key_span)
            return
        first = frame.explicit_keys.get(key)
        if first is not None:
            self.ambiguous = True
            self._issue(
                "K1007",
                f"duplicate key {key!r} (first defined at line {first.line})",
                key_span,
                "YAML would silently keep only the last one: remove or rename one of them",
            )
        frame.explicit_keys[key] = key_span
        frame.value[key] = value
        self.key_spans[(*frame.path, key)] = key_span

    def _merge_source(self, frame: _Frame, value: Any, span: Span) -> None:
        sources = value if isinstance(value, list) else [value]
        for source in sources:
            if not isinstance(source, dict):
                self._issue("K1003", "a merge key '<<' takes a mapping or a list of them", span)
                raise _Abort
            frame.merges.append(source)

    def _finish(self, frame: _Frame, end_event: Any) -> tuple[Any, int]:
        if frame.merges and isinstance(frame.value, dict):
            merged: dict[str, Any] = {}
            for source in reversed(frame.merges):  # earlier merge sources win over later ones
                merged.update(source)
            merged.update(frame.value)  # explicit keys win over merged ones
            frame.value.clear()
            frame.value.update(merged)
        self.spans[frame.path] = _span(self.path, frame.start, end_event.end_mark)
        if frame.anchor:
            self.anchors[frame.anchor] = (frame.value, frame.size)
        self._count(1, self.spans[frame.path])
        return frame.value, frame.size


def load_text(
    text: str, path: str, limits: Limits = DEFAULT_LIMITS
) -> tuple[list[Document], list[LoadIssue]]:
    """Load every document of one file's text."""
    composer = _Composer(path, limits)
    breaks = _odd_line_breaks(path, text)
    if breaks:  # they would move every location after them, or hide a line (see below)
        return [], breaks
    try:
        composer.run(iter(yaml.parse(text, Loader=_Parser)))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
        line, col = _on_a_real_line(text, line, col)
        problem = exc.problem or exc.context or "invalid YAML"
        opened = exc.context_mark if exc.problem and exc.context else None
        if opened is not None and opened is not mark and exc.context:
            problem += f" ({exc.context} at line {opened.line + 1}, column {opened.column + 1})"
        span = Span.point(path, line, col)
        tab = _indenting_tab(path, text, line)
        if "maximum nesting depth" in problem:  # libyaml's own guard, past ours
            issue = LoadIssue("K1005", f"nesting deeper than {limits.max_depth} levels", span)
        elif tab is not None:
            issue = LoadIssue(
                "K1003",
                "YAML syntax error: a tab is used for indentation",
                tab,
                "YAML indentation must use spaces, not tabs",
            )
        else:
            issue = LoadIssue("K1003", f"YAML syntax error: {problem}", span, _yaml_hint(problem))
        composer.issues.append(issue)
    except yaml.reader.ReaderError as exc:
        composer.issues.append(_bad_character(path, text, exc))
    except yaml.YAMLError as exc:
        composer.issues.append(LoadIssue("K1003", f"YAML error: {exc}", Span.point(path)))
    return composer.documents, composer.issues


_ODD_BREAKS = re.compile("[\u2028\u2029]")
_BREAK_NAMES = {"\u2028": "U+2028 (LINE SEPARATOR)", "\u2029": "U+2029 (PARAGRAPH SEPARATOR)"}
#: where YAML (libyaml) ends lines, and so where kiln counts them: LF, CRLF, a lone CR
#: (old Mac files) and U+0085; U+2028 and U+2029 are refused (see _odd_line_breaks)
LINE_BREAKS = re.compile("\r\n|[\n\r\x85]")


def split_lines(text: str) -> list[str]:
    """``text``'s lines as YAML counts them (a final line break starts no new line)."""
    rows = LINE_BREAKS.split(text)
    if rows and rows[-1] == "":
        rows.pop()
    return rows


def _odd_line_breaks(path: str, text: str) -> list[LoadIssue]:
    """YAML takes U+2028 and U+2029 as line breaks, which an editor or a terminal may not
    show: ``instructions: Be helpful.  # reviewed<U+2028>  tools: [http_get]`` reads as
    one line with a comment and adds a tool. Refused where they are."""
    issues = []
    for found in list(_ODD_BREAKS.finditer(text))[:20]:
        position = found.start()
        before = split_lines(text[:position] + "x")
        line, col = len(before), len(before[-1])
        issues.append(
            LoadIssue(
                "K1003",
                f"{_BREAK_NAMES[found.group()]} is a line break to YAML but may not look like "
                "one: it is not allowed in a spec",
                Span.point(path, line, col),
                "use a plain line feed; inside a double-quoted string write it as an escape "
                "(\\u2028)",
            )
        )
    return issues


def _on_a_real_line(text: str, line: int, col: int) -> tuple[int, int]:
    """libyaml reports the end of a file as the line after the last one: point at the end
    of the last line instead, which has a source to show."""
    lines = split_lines(text)
    if line <= len(lines):
        return line, col
    last = lines[-1] if lines else ""
    return max(len(lines), 1), len(last) + 1


def _indenting_tab(path: str, text: str, line: int) -> Span | None:
    """The tab that indents ``line`` (or the line before it, where YAML often notices late)."""
    lines = text.splitlines()
    for number in (line, line - 1):
        if 1 <= number <= len(lines):
            row = lines[number - 1]
            indent = row[: len(row) - len(row.lstrip(" \t"))]
            if "\t" in indent:
                return Span.point(path, number, indent.index("\t") + 1)
    return None


def _bad_character(path: str, text: str, exc: yaml.reader.ReaderError) -> LoadIssue:
    """A character YAML does not allow (NUL, most control characters), at its place."""
    position = max(0, min(int(exc.position), len(text)))
    line = text.count("\n", 0, position) + 1
    col = position - (text.rfind("\n", 0, position) + 1) + 1
    char = exc.character
    code = ord(char) if isinstance(char, str) else int(char)
    return LoadIssue(
        "K1003",
        f"the control character U+{code:04X} is not allowed in YAML",
        Span.point(path, line, col),
        "remove it; inside a double-quoted string it can be written as an escape such as \\t",
    )


def _yaml_hint(problem: str) -> str | None:
    if "tab" in problem:
        return "YAML indentation must use spaces, not tabs"
    if "mapping values are not allowed" in problem:
        return "a value containing ': ' must be quoted"
    if "expected ',' or ']'" in problem:
        return "a '[' list is not closed with ']', or an item in it needs quotes"
    if "expected ',' or '}'" in problem:
        return "a '{' mapping is not closed with '}', or a value in it needs quotes"
    if "found character" in problem and "'@'" in problem:
        return "values starting with '@' or '`' must be quoted"
    return None


_SKIP_DIRS = {".git", ".venv", "venv", "node_modules", "__pycache__", ".kiln"}


def discover(paths: Iterable[str | Path]) -> tuple[list[Path], list[LoadIssue]]:
    """Expand files and folders into the sorted list of spec files they hold."""
    found: list[Path] = []
    issues: list[LoadIssue] = []
    for raw in paths:
        path = Path(raw)
        try:
            found.extend(_discover_one(path, issues))
        except OSError as exc:  # a name too long, a folder we may not read, ...
            issues.append(
                LoadIssue(
                    "K1001", f"cannot read {path}: {exc.strerror or exc}", Span.point(str(path))
                )
            )
    unique = list(dict.fromkeys(found))
    return unique, issues


def _discover_one(path: Path, issues: list[LoadIssue]) -> list[Path]:
    """The spec files of one command-line path (a file, or a folder searched recursively)."""
    found: list[Path] = []
    if path.is_dir():
        inside = sorted(
            p
            for p in path.rglob("*")
            if p.suffix in (".yaml", ".yml")
            and p.is_file()
            and not any(
                part in _SKIP_DIRS or part.startswith(".") for part in p.relative_to(path).parts
            )
        )
        if not inside:
            issues.append(
                LoadIssue(
                    "K1010",
                    f"no spec files (*.yaml, *.yml) found in {path}",
                    Span.point(str(path), 1, 1),
                    "pass the folder that holds your specs",
                )
            )
        found.extend(inside)
    elif path.is_file():
        found.append(path)
    elif path.exists():
        issues.append(
            LoadIssue(
                "K1001",
                f"{path} is not a regular file or a folder",
                Span.point(str(path)),
                "give the spec files or the folders that hold them",
            )
        )
    else:
        issues.append(LoadIssue("K1001", f"no such file or folder: {path}", Span.point(str(path))))
    return found


def read_file(path: Path, limits: Limits) -> tuple[str | None, LoadIssue | None]:
    """Read one file as UTF-8 text within the size limit."""
    name = str(path)
    try:
        size = path.stat().st_size
        if size > limits.max_file_bytes:
            return None, LoadIssue(
                "K1002",
                f"file is {size:,} bytes, over the limit of {limits.max_file_bytes:,}",
                Span.point(name),
                "split it into several files",
            )
        data = path.read_bytes()
    except OSError as exc:
        return None, LoadIssue("K1001", f"cannot read {name}: {exc.strerror}", Span.point(name))
    try:
        return data.decode("utf-8-sig"), None
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        col = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        return None, LoadIssue(
            "K1011",
            f"file is not valid UTF-8 (byte 0x{data[exc.start]:02x})",
            Span.point(name, line, col),
            "save the file as UTF-8",
        )


def load_paths(paths: Iterable[str | Path], limits: Limits = DEFAULT_LIMITS) -> LoadResult:
    """Discover, read and load every spec file under ``paths``; never raises for bad input."""
    files, issues = discover(paths)
    sources: list[SourceFile] = []
    documents: list[Document] = []
    for path in files:
        text, problem = read_file(path, limits)
        if problem is not None:
            issues.append(problem)
            continue
        assert text is not None
        sources.append(SourceFile(str(path), text))
        docs, found = load_text(text, str(path), limits)
        if not docs and not found:
            found.append(
                LoadIssue(
                    "K5004",
                    "this file holds no spec (it is empty, or only comments)",
                    Span.point(str(path)),
                    "write a spec in it, or delete it",
                )
            )
        documents.extend(docs)
        issues.extend(found)
    return LoadResult(tuple(sources), tuple(documents), tuple(issues))
