"""A safe subset of JSONPath (RFC 9535), parsed by a small recursive-descent parser and
evaluated over plain JSON values: never ``eval``, bounded work.

Supported: ``$``; ``.name`` and ``['name']``; ``[n]`` (negative from the end); ``*``;
``..`` (descendants); slices ``[start:end:step]``; unions ``[a,b]``; filters
``[?(@.field op value)]`` with ``== != < <= > >=``, existence ``[?(@.field)]``, and
``&&``, ``||``, ``!`` and parentheses to combine them. In a filter ``@`` is the value
being tested and ``$`` the whole document.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

__all__ = ["JsonPathError", "Query", "evaluate", "parse"]

#: the longest query accepted
MAX_QUERY_LENGTH = 2_000
#: how deep filters and parentheses may nest
MAX_NESTING = 32
#: the most values one step of a query may reach
MAX_NODES = 1_000_000
_MAX_INDEX = 2**53


class JsonPathError(ValueError):
    """A query that does not parse (``column`` counts from 1), or one that would do too much."""

    def __init__(self, message: str, column: int | None = None) -> None:
        super().__init__(message)
        self.column = column


# -- the syntax tree ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Name:
    name: str


@dataclass(frozen=True, slots=True)
class Wildcard:
    pass


@dataclass(frozen=True, slots=True)
class Index:
    index: int


@dataclass(frozen=True, slots=True)
class Slice:
    start: int | None
    end: int | None
    step: int | None


@dataclass(frozen=True, slots=True)
class Filter:
    condition: Condition


Selector: TypeAlias = Name | Wildcard | Index | Slice | Filter


@dataclass(frozen=True, slots=True)
class Segment:
    selectors: tuple[Selector, ...]
    descendants: bool = False


@dataclass(frozen=True, slots=True)
class Query:
    segments: tuple[Segment, ...]
    relative: bool = False  # ``@`` (in a filter) rather than ``$``


@dataclass(frozen=True, slots=True)
class Value:
    value: Any


Operand: TypeAlias = Query | Value
Operator = Literal["==", "!=", "<", "<=", ">", ">="]


@dataclass(frozen=True, slots=True)
class Compare:
    operator: Operator
    left: Operand
    right: Operand


@dataclass(frozen=True, slots=True)
class Exists:
    query: Query


@dataclass(frozen=True, slots=True)
class Not:
    condition: Condition


@dataclass(frozen=True, slots=True)
class Both:
    conditions: tuple[Condition, ...]


@dataclass(frozen=True, slots=True)
class Either:
    conditions: tuple[Condition, ...]


Condition: TypeAlias = Compare | Exists | Not | Both | Either

# -- the parser -----------------------------------------------------------------------------

_NAME = re.compile(r"[\w-]+")
_INT = re.compile(r"-?\d+")
_HEX4 = re.compile(r"[0-9a-fA-F]{4}")
_NUMBER = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?")
_OPERATORS: tuple[Operator, ...] = ("==", "!=", "<=", ">=", "<", ">")
_ESCAPES = {"b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "/": "/", "\\": "\\"}
_LITERALS = {"true": True, "false": False, "null": None}


def parse(text: str) -> Query:
    """The syntax tree of the JSONPath ``text``, or a :class:`JsonPathError` naming the
    column where it goes wrong."""
    if len(text) > MAX_QUERY_LENGTH:
        raise JsonPathError(f"the query is longer than {MAX_QUERY_LENGTH} characters")
    return _Parser(text).query()


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.depth = 0

    def fail(self, message: str, at: int | None = None) -> JsonPathError:
        column = (self.pos if at is None else at) + 1
        return JsonPathError(f"JSONPath syntax error at column {column}: {message}", column)

    def peek(self, ahead: int = 0) -> str:
        at = self.pos + ahead
        return self.text[at] if at < len(self.text) else ""

    def found(self) -> str:
        return f"found {self.peek()!r}" if self.peek() else "the query ends"

    def blank(self) -> None:
        while self.peek() in (" ", "\t", "\n", "\r"):
            self.pos += 1

    def expect(self, token: str, what: str) -> None:
        if not self.text.startswith(token, self.pos):
            raise self.fail(f"expected {what}, {self.found()}")
        self.pos += len(token)

    def query(self) -> Query:
        self.blank()
        if self.peek() != "$":
            raise self.fail(f"a query starts with '$', {self.found()}")
        self.pos += 1
        segments = self.segments()
        self.blank()
        if self.pos < len(self.text):
            raise self.fail(f"unexpected {self.peek()!r}; a step starts with '.', '..' or '['")
        return Query(segments)

    def segments(self) -> tuple[Segment, ...]:
        segments = []
        while True:
            if self.text.startswith("..", self.pos):
                self.pos += 2
                segments.append(Segment(self.step_after_dot(descendants=True), True))
            elif self.peek() == ".":
                self.pos += 1
                segments.append(Segment(self.step_after_dot(descendants=False)))
            elif self.peek() == "[":
                segments.append(Segment(self.bracket()))
            else:
                return tuple(segments)

    def step_after_dot(self, *, descendants: bool) -> tuple[Selector, ...]:
        if self.peek() == "*":
            self.pos += 1
            return (Wildcard(),)
        if descendants and self.peek() == "[":
            return self.bracket()
        match = _NAME.match(self.text, self.pos)
        if match is None:
            dots = "'..'" if descendants else "'.'"
            raise self.fail(f"expected a member name or * after {dots}, {self.found()}")
        self.pos = match.end()
        return (Name(match.group()),)

    def bracket(self) -> tuple[Selector, ...]:
        opened = self.pos
        self.pos += 1  # [
        selectors = [self.selector()]
        while True:
            self.blank()
            if self.peek() == ",":
                self.pos += 1
                selectors.append(self.selector())
            elif self.peek() == "]":
                self.pos += 1
                return tuple(selectors)
            elif not self.peek():
                raise self.fail("'[' is never closed by ']'", opened)
            else:
                raise self.fail(f"expected ',' or ']', {self.found()}")

    def selector(self) -> Selector:
        self.blank()
        char = self.peek()
        if char in ("'", '"'):
            return Name(self.string())
        if char == "*":
            self.pos += 1
            return Wildcard()
        if char == "?":
            self.pos += 1
            return Filter(self.either())
        if char == ":" or _INT.match(self.text, self.pos):
            return self.index_or_slice()
        raise self.fail(
            "expected a quoted name, an index, a slice, * or a filter ?(...), " + self.found()
        )

    def integer(self) -> int | None:
        self.blank()
        match = _INT.match(self.text, self.pos)
        if match is None:
            return None
        value = int(match.group())
        if abs(value) > _MAX_INDEX:
            raise self.fail("index too large")
        self.pos = match.end()
        return value

    def index_or_slice(self) -> Selector:
        start = self.integer()
        self.blank()
        if self.peek() != ":":
            assert start is not None
            return Index(start)
        self.pos += 1
        end = self.integer()
        self.blank()
        step = None
        if self.peek() == ":":
            self.pos += 1
            at = self.pos
            step = self.integer()
            if step == 0:
                raise self.fail("a slice's step cannot be 0", at)
        return Slice(start, end, step)

    def string(self) -> str:
        opened = self.pos
        quote = self.peek()
        self.pos += 1
        chars: list[str] = []
        while True:
            char = self.peek()
            if not char:
                raise self.fail(f"the string is never closed by {quote}", opened)
            self.pos += 1
            if char == quote:
                return "".join(chars)
            if char != "\\":
                chars.append(char)
                continue
            escaped = self.peek()
            self.pos += 1
            if escaped in (quote, "'", '"') or escaped in _ESCAPES:
                chars.append(_ESCAPES.get(escaped, escaped))
            elif escaped == "u" and _HEX4.match(self.text, self.pos):
                chars.append(chr(int(self.text[self.pos : self.pos + 4], 16)))
                self.pos += 4
            else:
                raise self.fail(f"unknown escape \\{escaped}", self.pos - 2)

    # filters: either := both ('||' both)*; both := unary ('&&' unary)*
    def either(self) -> Condition:
        conditions = [self.both()]
        while self.skip("||"):
            conditions.append(self.both())
        return conditions[0] if len(conditions) == 1 else Either(tuple(conditions))

    def both(self) -> Condition:
        conditions = [self.unary()]
        while self.skip("&&"):
            conditions.append(self.unary())
        return conditions[0] if len(conditions) == 1 else Both(tuple(conditions))

    def skip(self, token: str) -> bool:
        self.blank()
        if self.text.startswith(token, self.pos):
            self.pos += len(token)
            return True
        return False

    def unary(self) -> Condition:
        self.depth += 1
        if self.depth > MAX_NESTING:
            raise self.fail(f"the filter nests deeper than {MAX_NESTING} levels")
        try:
            self.blank()
            if self.peek() == "!" and self.peek(1) != "=":
                self.pos += 1
                return Not(self.unary())
            if self.peek() == "(":
                opened = self.pos
                self.pos += 1
                condition = self.either()
                self.blank()
                if self.peek() != ")":
                    if not self.peek():
                        raise self.fail("'(' is never closed by ')'", opened)
                    raise self.fail(f"expected ')', {self.found()}")
                self.pos += 1
                return condition
            return self.comparison()
        finally:
            self.depth -= 1

    def comparison(self) -> Condition:
        at = self.pos
        left = self.operand()
        self.blank()
        for operator in _OPERATORS:
            if self.text.startswith(operator, self.pos):
                self.pos += len(operator)
                return Compare(operator, left, self.operand())
        if self.peek() == "=":
            raise self.fail("'=' is not a comparison: write '=='")
        if isinstance(left, Value):
            raise self.fail("a value alone is not a condition: compare it with a path", at)
        return Exists(left)

    def operand(self) -> Operand:
        self.blank()
        char = self.peek()
        if char in ("@", "$"):
            self.pos += 1
            return Query(self.segments(), relative=char == "@")
        if char in ("'", '"'):
            return Value(self.string())
        number = _NUMBER.match(self.text, self.pos)
        if number is not None:
            self.pos = number.end()
            return Value(json.loads(number.group()))
        word = _NAME.match(self.text, self.pos)
        if word is not None and word.group() in _LITERALS:
            self.pos = word.end()
            return Value(_LITERALS[word.group()])
        raise self.fail(
            "expected @, $, a number, a quoted string, true, false or null, " + self.found()
        )


# -- evaluation -----------------------------------------------------------------------------

Node: TypeAlias = tuple[str, Any]  # (normalized path, value)
_NOTHING = object()


def evaluate(query: Query, document: Any) -> list[Node]:
    """Every (normalized path, value) that ``query`` selects in ``document``, in document
    order; paths are written like ``$['store']['book'][0]``."""
    return _run(query, ("$", document), _Context(document))


class _Context:
    """One evaluation: the document, the work done so far (filters included: a filter runs
    its query once per candidate, so a budget per query would not bound the whole), and the
    results of ``$``-rooted queries inside filters, which do not depend on ``@``."""

    def __init__(self, document: Any) -> None:
        self.document = document
        self.work = 0
        self.absolute: dict[int, list[Node]] = {}

    def spend(self, amount: int) -> None:
        self.work += amount
        if self.work > MAX_NODES:
            raise JsonPathError(f"the query visits more than {MAX_NODES:,} values")


def _run(query: Query, start: Node, ctx: _Context) -> list[Node]:
    nodes = [start]
    for segment in query.segments:
        reached: list[Node] = []
        for node in nodes:
            targets = _descendants(node) if segment.descendants else iter((node,))
            for target in targets:
                ctx.spend(1)
                for selector in segment.selectors:
                    reached.extend(_select(selector, target, ctx))
                if len(reached) > MAX_NODES:
                    raise JsonPathError(f"the query reaches more than {MAX_NODES:,} values")
        nodes = reached
    return nodes


def _descendants(node: Node) -> Iterator[Node]:
    """``node`` and everything below it, depth first in document order (no recursion, so
    deep documents cannot overflow the stack)."""
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        stack.extend(reversed(list(_children(current))))


def _children(node: Node) -> Iterator[Node]:
    path, value = node
    if isinstance(value, dict):
        for key, item in value.items():
            yield f"{path}[{_quote(key)}]", item
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield f"{path}[{index}]", item


def _quote(key: str) -> str:
    return "'" + key.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _select(selector: Selector, node: Node, ctx: _Context) -> Iterator[Node]:
    path, value = node
    if isinstance(selector, Name):
        if isinstance(value, dict) and selector.name in value:
            yield f"{path}[{_quote(selector.name)}]", value[selector.name]
    elif isinstance(selector, Wildcard):
        yield from _children(node)
    elif isinstance(selector, Index):
        if isinstance(value, list):
            index = selector.index + len(value) if selector.index < 0 else selector.index
            if 0 <= index < len(value):
                yield f"{path}[{index}]", value[index]
    elif isinstance(selector, Slice):
        if isinstance(value, list):
            indices = range(*slice(selector.start, selector.end, selector.step).indices(len(value)))
            for index in indices:
                yield f"{path}[{index}]", value[index]
    else:
        for child in _children(node):
            if _holds(selector.condition, child, ctx):
                yield child


def _holds(condition: Condition, current: Node, ctx: _Context) -> bool:
    if isinstance(condition, Exists):
        return bool(_values(condition.query, current, ctx))
    if isinstance(condition, Compare):
        left = _operand(condition.left, current, ctx)
        right = _operand(condition.right, current, ctx)
        return _compare(condition.operator, left, right)
    if isinstance(condition, Not):
        return not _holds(condition.condition, current, ctx)
    if isinstance(condition, Both):
        return all(_holds(c, current, ctx) for c in condition.conditions)
    return any(_holds(c, current, ctx) for c in condition.conditions)


def _values(query: Query, current: Node, ctx: _Context) -> list[Node]:
    if query.relative:
        return _run(query, current, ctx)
    found = ctx.absolute.get(id(query))
    if found is None:
        found = ctx.absolute[id(query)] = _run(query, ("$", ctx.document), ctx)
    return found


def _operand(operand: Operand, current: Node, ctx: _Context) -> Any:
    """A literal's value, or the first value a path selects (``_NOTHING`` if none)."""
    if isinstance(operand, Value):
        return operand.value
    found = _values(operand, current, ctx)
    return found[0][1] if found else _NOTHING


def _compare(operator: Operator, left: Any, right: Any) -> bool:
    if operator in ("==", "!="):
        return _equal(left, right) == (operator == "==")
    if operator in ("<=", ">="):
        strict: Operator = "<" if operator == "<=" else ">"
        return _compare(strict, left, right) or _equal(left, right)
    both_numbers = _number(left) and _number(right)
    if not (both_numbers or (isinstance(left, str) and isinstance(right, str))):
        return False  # only numbers with numbers, strings with strings
    return bool(left < right) if operator == "<" else bool(left > right)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _equal(left: Any, right: Any) -> bool:
    """JSON equality: ``true`` is not ``1``; arrays and objects compare by content."""
    if left is _NOTHING or right is _NOTHING:
        return left is right
    if _number(left) and _number(right):
        return bool(left == right)
    if type(left) is not type(right):
        return False
    if isinstance(left, list):
        return len(left) == len(right) and all(map(_equal, left, right))
    if isinstance(left, dict):
        return left.keys() == right.keys() and all(_equal(left[k], right[k]) for k in left)
    return bool(left == right)
