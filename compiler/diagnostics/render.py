"""Rendering diagnostics for people (text with source and caret) and machines (JSON)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

from compiler.diagnostics.model import Diagnostic
from specs.source.loader import split_lines

_COLORS = {"error": "\x1b[1;31m", "warning": "\x1b[1;33m", "hint": "\x1b[1;36m", "dim": "\x1b[2m"}
_RESET = "\x1b[0m"
#: characters of a source line shown around a diagnostic's place
_WIDE = 4000


def render_text(
    diagnostics: Sequence[Diagnostic], sources: Mapping[str, str], *, color: bool = False
) -> str:
    """``path:line:col: error[K1234]: message``, the source line, a caret, then the hint."""
    lines_of: dict[str, list[str]] = {}
    out: list[str] = []

    def paint(kind: str, text: str) -> str:
        return f"{_COLORS[kind]}{text}{_RESET}" if color else text

    for d in diagnostics:
        span = d.span
        out.append(f"{span}: {paint(d.severity, f'{d.severity}[{d.code}]')}: {d.message}")
        text = sources.get(span.path)
        if text is not None:
            # lines as YAML counts them (str.splitlines also splits at U+2028, U+001C…)
            lines = lines_of.get(span.path)
            if lines is None:
                lines = lines_of[span.path] = split_lines(text)
            if 1 <= span.line <= len(lines):
                full = lines[span.line - 1].replace("\t", " ")
                width = (
                    span.end_col - span.col
                    if span.end_line == span.line
                    else len(full) - span.col + 1
                )
                width = max(1, min(width, len(full) - span.col + 1, _WIDE))
                src, col = full, span.col
                if len(full) > _WIDE:  # a window around the place: a line may be a whole file
                    shift = max(0, span.col - 1 - _WIDE // 2)
                    src = ("…" if shift else "") + full[shift : shift + _WIDE] + "…"
                    col = span.col - shift + (1 if shift else 0)
                gutter = " " * len(str(span.line))
                out.append(paint("dim", f" {span.line} | ") + src)
                out.append(
                    paint("dim", f" {gutter} | ") + " " * (col - 1) + paint(d.severity, "^" * width)
                )
        if d.hint:
            out.append(f"{paint('hint', 'hint')}: {d.hint}")
    return "\n".join(out)


def render_json(diagnostics: Sequence[Diagnostic]) -> str:
    return json.dumps([d.as_json() for d in diagnostics], indent=2)


def summary(diagnostics: Sequence[Diagnostic]) -> str:
    errors = sum(d.is_error for d in diagnostics)
    warnings = len(diagnostics) - errors
    parts = []
    if errors:
        parts.append(f"{errors} error{'s' * (errors != 1)}")
    if warnings:
        parts.append(f"{warnings} warning{'s' * (warnings != 1)}")
    return ", ".join(parts)
