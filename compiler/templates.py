"""Jinja2 templates: parsed once, sandboxed, reduced to the variable paths they read."""

from __future__ import annotations

import functools
from dataclasses import dataclass

from jinja2 import TemplateSyntaxError, meta, nodes
from jinja2.sandbox import SandboxedEnvironment

RefPath = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class Reference:
    """A variable read by a template: ``("tasks", "research", "output", "summary")``."""

    path: RefPath
    lineno: int

    @property
    def dotted(self) -> str:
        out = str(self.path[0])
        for part in self.path[1:]:
            out += f"[{part}]" if isinstance(part, int) else f".{part}"
        return out


@dataclass(frozen=True, slots=True)
class ParsedTemplate:
    source: str
    references: tuple[Reference, ...]

    def roots(self) -> set[str]:
        return {str(r.path[0]) for r in self.references}


@dataclass(frozen=True, slots=True)
class TemplateError:
    message: str
    lineno: int


@functools.cache
def environment() -> SandboxedEnvironment:
    """The one environment templates are parsed (and, at run time, rendered) with."""
    return SandboxedEnvironment(autoescape=False, keep_trailing_newline=True)


def parse(source: str) -> ParsedTemplate | TemplateError:
    """Parse a template and list the variable paths it reads from outside."""
    if "{" not in source:  # fast path: most strings hold no template syntax at all
        return ParsedTemplate(source, ())
    env = environment()
    try:
        ast = env.parse(source)
    except TemplateSyntaxError as exc:
        return TemplateError(exc.message or "invalid template", exc.lineno or 1)
    free = meta.find_undeclared_variables(ast) - set(env.globals)
    refs: list[Reference] = []
    _collect(ast, free, refs)
    return ParsedTemplate(source, tuple(refs))


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
