"""Jinja2 templates: parsed once, sandboxed, reduced to the variable paths they read."""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from jinja2 import TemplateSyntaxError, nodes
from jinja2.sandbox import SandboxedEnvironment

from compiler.diagnostics.suggest import closest
from specs.source import dotted

RefPath = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class Reference:
    """A variable read by a template: ``("tasks", "research", "output", "summary")``."""

    path: RefPath
    lineno: int

    @property
    def dotted(self) -> str:
        return dotted(self.path)


@dataclass(frozen=True, slots=True)
class ParsedTemplate:
    source: str
    references: tuple[Reference, ...]


@dataclass(frozen=True, slots=True)
class TemplateError:
    message: str
    lineno: int
    near: str = ""  #: text on that line to point at, when known
    hint: str | None = None


class _Environment(SandboxedEnvironment):
    """Jinja2's sandbox, except that a mapping's keys come before its methods: in
    ``tasks.plan.output.items`` a typed output's field ``items`` is meant, never
    ``dict.items``."""

    def getattr(self, obj: Any, attribute: str) -> Any:
        if isinstance(obj, Mapping) and attribute in obj:
            return obj[attribute]
        return super().getattr(obj, attribute)


@functools.cache
def environment() -> SandboxedEnvironment:
    """The one environment templates are parsed (and, at run time, rendered) with."""
    return _Environment(autoescape=False, keep_trailing_newline=True)


def parse(source: str) -> ParsedTemplate | TemplateError:
    """Parse a template and list the variable paths it reads from outside."""
    if "{" not in source:  # fast path: most strings hold no template syntax at all
        return ParsedTemplate(source, ())
    return _simple(source) or parse_with_jinja(source)


def parse_with_jinja(source: str) -> ParsedTemplate | TemplateError:
    """``parse`` without its fast path (the tests compare the two)."""
    env = environment()
    try:
        ast = env.parse(source)
        every = _nodes(ast)
        problem = _unsupported(every, env)
        if problem is not None:
            return problem
        refs: list[Reference] = []
        _collect(ast, _free_names(every, env), refs)
    except TemplateSyntaxError as exc:
        line, near = _block_line(source, exc)
        return TemplateError(exc.message or "invalid template", line, near)
    except RecursionError:  # Jinja's parser and our walk recurse once per nesting level
        return TemplateError(
            "the template nests too deeply to be read",
            1,
            "{{",
            "split the expression, or compute the value in a tool",
        )
    return ParsedTemplate(source, tuple(refs))


_EXPRESSION = re.compile(
    r"\{\{[ \t\n]*"
    r"([A-Za-z_]\w*(?:\.[A-Za-z_]\w*|\[(?:0|[1-9]\d{0,8})\]|\['[\w ./:-]*'\])*)"
    r"[ \t\n]*\}\}"
)
_PART = re.compile(r"\.([A-Za-z_]\w*)|\[(\d+)\]|\['([^']*)'\]")
#: words the Jinja parser reads as operators or constants, never as names
_RESERVED = frozenset("and or not in is if else elif true false none True False None".split())


def _simple(source: str) -> ParsedTemplate | None:
    """The references of a template that is only text and ``{{ a.b[0]['c'] }}`` expressions,
    read without Jinja (most templates in specs are; Jinja's parser costs ~0.15 ms each).
    ``None`` when anything else is there: Jinja then parses it, and judges it."""
    if "{%" in source or "{#" in source:
        return None
    refs: list[Reference] = []
    last = 0
    line, counted = 1, 0  # lines are counted as the matches go, not from the start each time
    for match in _EXPRESSION.finditer(source):
        if "{{" in source[last : match.start() + 1]:  # +1: a '{' glued to the '{{' too
            return None  # an expression the pattern does not cover
        dotted = match.group(1)
        root = dotted.split(".", 1)[0].split("[", 1)[0]
        parts: list[str | int] = [root]
        names = [root]
        for part in _PART.finditer(dotted, len(root)):
            name, index, key = part.groups()
            if name is not None:
                names.append(name)
            parts.append(name if name is not None else int(index) if index is not None else key)
        if any(n in _RESERVED for n in names) or root in environment().globals:
            return None
        line += source.count("\n", counted, match.start(1))
        counted = match.start(1)
        refs.append(Reference(tuple(parts), line))
        last = match.end()
    if "{{" in source[last:]:
        return None
    return ParsedTemplate(source, tuple(refs))


#: names Jinja defines itself inside loops, macros and call blocks
_IMPLICIT = frozenset({"loop", "caller", "varargs", "kwargs", "self", "super"})


def _nodes(ast: nodes.Template) -> list[nodes.Node]:
    """Every node of a template, in one walk."""
    out: list[nodes.Node] = []
    todo: list[nodes.Node] = [ast]
    while todo:
        node = todo.pop()
        out.append(node)
        todo.extend(node.iter_child_nodes())
    return out


def _free_names(every: list[nodes.Node], env: SandboxedEnvironment) -> set[str]:
    """Names read but never set in the template (by for, set, with, macro parameters).

    Coarser than Jinja's own scoping (a name set anywhere counts as set everywhere), and far
    cheaper: this is only used to tell the template's inputs from its own variables.
    """
    loaded: set[str] = set()
    stored: set[str] = set(_IMPLICIT) | set(env.globals)
    for node in every:
        if isinstance(node, nodes.Name):
            (loaded if node.ctx == "load" else stored).add(node.name)
        elif isinstance(node, nodes.Macro):  # a macro's name is a string, not a Name node
            stored.add(node.name)
    return loaded - stored


_UNCLOSED = re.compile(r"innermost block that needs to be closed is '(\w+)'")


def _block_line(source: str, exc: TemplateSyntaxError) -> tuple[int, str]:
    """The line to blame: for an unclosed block, the line of the last block of that kind
    opened (Jinja blames the end of the template), else Jinja's own line."""
    match = _UNCLOSED.search(exc.message or "")
    if match:
        opened = list(re.finditer(r"\{%-?\s*" + match.group(1) + r"\b", source))
        if opened:
            return source.count("\n", 0, opened[-1].start()) + 1, opened[-1].group(0)
    return exc.lineno or 1, ""


_INCLUDES = (nodes.Include, nodes.Import, nodes.FromImport, nodes.Extends)


def _unsupported(every: list[nodes.Node], env: SandboxedEnvironment) -> TemplateError | None:
    """Unknown filters and tests, and includes, which would only fail when rendered."""
    odd = (nodes.Filter, nodes.Test, *_INCLUDES)
    for node in sorted((n for n in every if isinstance(n, odd)), key=lambda n: n.lineno):
        if isinstance(node, nodes.Filter | nodes.Test):
            known = env.filters if isinstance(node, nodes.Filter) else env.tests
            if node.name in known:
                continue
            what = "filter" if isinstance(node, nodes.Filter) else "test"
            near = closest(node.name, known)
            hint = f"did you mean '{near}'?" if near else f"see Jinja2's list of built-in {what}s"
            return TemplateError(f"unknown {what} '{node.name}'", node.lineno, node.name, hint)
        if isinstance(node, _INCLUDES):
            return TemplateError(
                "templates cannot include, import or extend other templates", node.lineno, "{%"
            )
    return None


def _collect(node: nodes.Node, free: set[str], out: list[Reference]) -> None:
    """Record the longest constant attribute/item chain rooted at a free name."""
    if isinstance(node, nodes.Call) and isinstance(node.node, nodes.Getattr):
        # a method call such as inputs.topic.upper(): the method name is not data
        _collect(node.node.node, free, out)
        for arg in (*node.args, *(k.value for k in node.kwargs), node.dyn_args, node.dyn_kwargs):
            if arg is not None:
                _collect(arg, free, out)
        return
    if isinstance(node, nodes.Getattr | nodes.Getitem):
        parts: list[str | int] = []
        current: nodes.Node = node
        while isinstance(current, nodes.Getattr | nodes.Getitem):
            if isinstance(current, nodes.Getattr):
                parts.append(current.attr)
            elif isinstance(current.arg, nodes.Const) and isinstance(current.arg.value, str | int):
                parts.append(current.arg.value)
            else:
                _collect(current.arg, free, out)
                parts.clear()  # a computed key: only the chain below it is static
            current = current.node
        if isinstance(current, nodes.Name) and current.name in free:
            out.append(Reference((current.name, *reversed(parts)), node.lineno))
        else:
            _collect(current, free, out)
        return
    if isinstance(node, nodes.Name) and node.ctx == "load" and node.name in free:
        out.append(Reference((node.name,), node.lineno))
        return
    for child in node.iter_child_nodes():
        _collect(child, free, out)
