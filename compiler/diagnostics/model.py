"""A diagnostic is data: collected by the passes, sorted and rendered apart."""

from __future__ import annotations

from dataclasses import dataclass

from compiler.diagnostics.codes import CODES, Severity
from specs.source import Span


@dataclass(frozen=True, slots=True)
class Diagnostic:
    code: str
    message: str
    span: Span
    hint: str | None = None

    @property
    def severity(self) -> Severity:
        return CODES[self.code].severity

    @property
    def is_error(self) -> bool:
        return self.severity == "error"

    def sort_key(self) -> tuple[str, int, int, str, str]:
        return (self.span.path, self.span.line, self.span.col, self.code, self.message)

    def as_json(self) -> dict[str, object]:
        return {
            "path": self.span.path,
            "line": self.span.line,
            "col": self.span.col,
            "code": self.code,
            "severity": self.severity,
            "message": self.message,
            "hint": self.hint,
        }


def error(code: str, message: str, span: Span, hint: str | None = None) -> Diagnostic:
    """Build a diagnostic; the code must exist in the catalogue (a typo here is a bug)."""
    if code not in CODES:
        raise KeyError(f"undefined diagnostic code {code}")
    return Diagnostic(code, message, span, hint)
