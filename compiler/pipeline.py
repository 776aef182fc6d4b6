"""The compiler: an ordered tuple of passes, each a small function over immutable data.

load -> validate -> templates -> resolve -> check -> lower -> analyze -> emit

Every pass returns its result and the diagnostics it found; the driver collects them all.
The graph is lowered only when no pass found an error, so a broken program still gets every
diagnostic of the checking passes in one run.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from compiler.diagnostics import Diagnostic
from compiler.hashing import fingerprints
from compiler.ir import Graph
from compiler.passes.analyze import Reach, analyze
from compiler.passes.check import check
from compiler.passes.emit import emit
from compiler.passes.load import load
from compiler.passes.lower import lower
from compiler.passes.resolve import resolve
from compiler.passes.templates import templates
from compiler.passes.validate import validate
from compiler.symbols import Program
from specs.source import DEFAULT_LIMITS, Limits


@dataclass(frozen=True, slots=True, kw_only=True)
class Compilation:
    """Everything one compile produced. ``plan`` is ``None`` when there were errors."""

    files: Mapping[str, str] = field(repr=False)
    diagnostics: tuple[Diagnostic, ...]
    program: Program | None = field(default=None, repr=False)
    graphs: tuple[Graph, ...] = ()
    reach: Mapping[str, Reach] = field(default_factory=dict)
    plan: Mapping[str, Any] | None = field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        return not any(d.is_error for d in self.diagnostics)

    @property
    def errors(self) -> tuple[Diagnostic, ...]:
        return tuple(d for d in self.diagnostics if d.is_error)


def compile_paths(
    paths: Sequence[str | Path],
    *,
    limits: Limits = DEFAULT_LIMITS,
    stdlib: bool = True,
    extra: Sequence[tuple[str, str]] = (),
    confine: str | Path | None = None,
) -> Compilation:
    """Compile the spec files and folders at ``paths``, and the ``extra`` spec texts (name,
    text: specs a program makes, such as its in-process tools'). With ``confine``, the
    files specs name (OpenAPI documents, scripted turns) must lie in that folder: for
    specs nobody trusted yet (a pull request, a server's upload). Never raises for bad
    input."""
    from specs.source.paths import confined

    with gc_paused(), confined(Path(confine) if confine is not None else None):
        return _compile(paths, limits, stdlib, extra)


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Compiling allocates many small objects that form no cycles: the cyclic collector would
    only scan them over and over (a third of the time of a large compile)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _compile(
    paths: Sequence[str | Path], limits: Limits, stdlib: bool, extra: Sequence[tuple[str, str]]
) -> Compilation:
    diags: list[Diagnostic] = []
    sources, found = load(paths, limits, stdlib=stdlib, extra=extra)
    diags += found
    specs, found = validate(sources)
    diags += found
    parsed, found = templates(specs, sources.files)
    diags += found
    program, found = resolve(parsed)
    diags += found
    diags += check(program, sources.files)
    if any(d.is_error for d in diags):
        return Compilation(files=sources.files, diagnostics=_sorted(diags), program=program)
    prints = fingerprints(program)
    graphs = lower(program, prints)
    reach = analyze(program)
    return Compilation(
        files=sources.files,
        diagnostics=_sorted(diags),
        program=program,
        graphs=graphs,
        reach=reach,
        plan=emit(program, prints, graphs, reach),
    )


#: diagnostics of one code shown per file; the rest are counted in one last diagnostic
MAX_PER_KIND = 50
#: characters of a message shown (a value it quotes may be a whole file)
MAX_MESSAGE = 600


def _sorted(diags: list[Diagnostic]) -> tuple[Diagnostic, ...]:
    """Sorted, duplicates dropped, at most :data:`MAX_PER_KIND` of one code per file (a
    20,000-line mistake is one mistake, and a CI log must stay readable), messages
    bounded."""
    out: list[Diagnostic] = []
    seen: dict[tuple[str, str], int] = {}
    ordered = sorted(set(diags), key=Diagnostic.sort_key)
    for d in ordered:
        key = (d.span.path, d.code)
        count = seen[key] = seen.get(key, 0) + 1
        if count <= MAX_PER_KIND:
            message = d.message
            if len(message) > MAX_MESSAGE:
                message = message[: MAX_MESSAGE - 40] + f"… ({len(d.message):,} characters)"
                d = Diagnostic(d.code, message, d.span, d.hint)
            out.append(d)
        elif count == MAX_PER_KIND + 1:
            more = sum(1 for x in ordered if (x.span.path, x.code) == key) - MAX_PER_KIND
            out.append(Diagnostic(
                d.code,
                f"… and {more:,} more {d.code} in this file (only the first {MAX_PER_KIND} "
                "are shown)",
                d.span,
                "fix these first, then compile again",
            ))  # fmt: skip
    return tuple(out)
