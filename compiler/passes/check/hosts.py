"""HTTP tools only call the hosts they allow; builtin tools are kiln's own."""

from __future__ import annotations

from collections.abc import Iterator
from fnmatch import fnmatch
from urllib.parse import urlsplit

from compiler.diagnostics import Diagnostic, error
from compiler.symbols import Program
from specs.tool import BuiltinExecutor, HttpExecutor

#: The only package whose functions may run in the runtime's process as builtin tools.
BUILTIN_PACKAGE = "stdlib_tools"


def check_hosts(program: Program) -> Iterator[Diagnostic]:
    """A URL whose host is written out (not templated) must match ``allow_hosts`` when the
    tool has one; templated hosts are checked by the runtime on each call."""
    for name, entry in program.tools.items():
        executor = program.tool(name).spec.executor
        if entry.origin != "user" or not isinstance(executor, HttpExecutor):
            continue
        if not executor.allow_hosts:
            continue
        host = _static_host(executor.url)
        if host is None or any(fnmatch(host, pattern) for pattern in executor.allow_hosts):
            continue
        yield error(
            "K4012",
            f"tool '{name}' calls host '{host}', which its allow_hosts does not include",
            entry.doc.locate(("spec", "executor", "url")),
            f"add '{host}' to allow_hosts ({', '.join(executor.allow_hosts)}), or fix the URL",
        )


def check_builtins(program: Program) -> Iterator[Diagnostic]:
    """A builtin runs in the runtime's own process: only the standard library may."""
    for name, entry in program.tools.items():
        if entry.lost("spec", "executor"):
            continue
        executor = program.tool(name).spec.executor
        if not isinstance(executor, BuiltinExecutor) or is_stdlib(executor.function):
            continue
        yield error(
            "K4013",
            f"tool '{name}' runs {executor.function} as a builtin, in kiln's own process; "
            f"builtins must come from {BUILTIN_PACKAGE}",
            entry.doc.locate(("spec", "executor", "function")),
            "make it a python tool (executor: {type: python, entrypoint: ..., paths: [...]}), "
            "which runs in a sandbox",
        )


def is_stdlib(function: str) -> bool:
    module = function.partition(":")[0]
    return module == BUILTIN_PACKAGE or module.startswith(BUILTIN_PACKAGE + ".")


def _static_host(url: str) -> str | None:
    """The URL's host when it is written out, ``None`` when a template makes it."""
    head = url.split("{", 1)[0]
    _, sep, rest = head.partition("://")
    if not sep or ("{" in url and not any(c in rest for c in "/?#")):
        return None
    try:
        return urlsplit(head).hostname
    except ValueError:
        return None
