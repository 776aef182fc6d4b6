"""Python tools can be found and run: their code parses and defines ``run``, and the folders
they import from exist inside the spec's own folder (a sandbox never sees anything else)."""

from __future__ import annotations

import ast
import warnings
from collections.abc import Iterator
from pathlib import Path

from compiler.diagnostics import Diagnostic, error
from compiler.symbols import Program, SpecEntry
from specs.source.paths import path_problem
from specs.tool import PythonExecutor


def check_python_tools(program: Program) -> Iterator[Diagnostic]:
    for name, entry in program.tools.items():
        if entry.origin != "user" or entry.lost("spec", "executor"):
            continue
        if not entry.lost("spec", "sandbox"):
            yield from _folders(name, entry, program.tool(name).spec.sandbox.folders)
        executor = program.tool(name).spec.executor
        if not isinstance(executor, PythonExecutor):
            continue
        if executor.code is not None:
            yield from _code(name, entry, executor.code)
        yield from _paths(name, entry, executor.paths)


def check_tool_cache(program: Program) -> Iterator[Diagnostic]:
    """A cache on a side-effecting tool is never used: say so rather than let it look on."""
    for name, entry in program.tools.items():
        if entry.origin != "user" or entry.lost("spec"):
            continue
        spec = program.tool(name).spec
        if spec.side_effects and spec.cache is not None:
            yield error(
                "K5007",
                f"tool '{name}' has side effects, so its results are never cached",
                entry.doc.locate(("spec", "cache"), key=True),
                "remove the cache, or set side_effects: false if calling it twice changes nothing",
            )


def _code(name: str, entry: SpecEntry, code: str) -> Iterator[Diagnostic]:
    where = entry.doc.locate(("spec", "executor", "code"))
    try:
        with warnings.catch_warnings():  # a SyntaxWarning in a spec's code is not kiln's to print
            warnings.simplefilter("ignore")
            tree = ast.parse(code, filename=f"<tool {name}>")
    except SyntaxError as exc:
        yield error(
            "K4016",
            f"the code of tool '{name}' does not parse: {exc.msg} (line {exc.lineno} of the code)",
            where,
            "fix the Python in executor.code",
        )
        return
    defined = {
        node.name for node in tree.body if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    }
    if "run" not in defined:
        yield error(
            "K4016",
            f"the code of tool '{name}' defines no function run(**input)",
            where,
            "define def run(<the input's fields>): ... returning the tool's output",
        )


def _folders(name: str, entry: SpecEntry, folders: tuple[str, ...]) -> Iterator[Diagnostic]:
    base = Path(entry.doc.path).parent.resolve()
    seen: dict[str, str] = {}
    for i, path in enumerate(folders):
        where = entry.doc.locate(("spec", "sandbox", "folders", i))
        resolved = _resolved(base, path)
        if isinstance(resolved, str):
            yield error("K4015", f"tool '{name}' mounts {path[:100]!r}: {resolved}", where,
                        "folders are relative to the spec's file")  # fmt: skip
        elif not resolved.is_relative_to(base):
            yield error(
                "K4015",
                f"tool '{name}' mounts the folder '{path}', outside the folder of its spec",
                where,
                "a sandbox sees only folders beside or below the spec: move the spec up",
            )
        elif not resolved.is_dir():
            yield error(
                "K4015",
                f"tool '{name}' mounts '{path}', which is not a folder",
                where,
                "folders are relative to the spec's file: make it, or fix the path",
            )
        elif resolved.name in seen:
            yield error(
                "K4015",
                f"tool '{name}' mounts '{path}' and '{seen[resolved.name]}', both as "
                f"/folders/{resolved.name}",
                where,
                "each folder is mounted by its own name: give folders with different names",
            )
        else:
            seen[resolved.name] = path


def _paths(name: str, entry: SpecEntry, paths: tuple[str, ...]) -> Iterator[Diagnostic]:
    folder = Path(entry.doc.path).parent.resolve()
    for i, path in enumerate(paths):
        where = entry.doc.locate(("spec", "executor", "paths", i))
        resolved = _resolved(folder, path)
        if isinstance(resolved, str):
            yield error("K4015", f"tool '{name}' imports from {path[:100]!r}: {resolved}", where,
                        "paths are folders, relative to the spec's file")  # fmt: skip
        elif not resolved.is_relative_to(folder):
            yield error(
                "K4015",
                f"tool '{name}' imports from '{path}', outside the folder of its spec",
                where,
                "a sandbox sees only folders beside or below the spec: move the code there",
            )
        elif not resolved.is_dir():
            yield error(
                "K4015",
                f"tool '{name}' imports from '{path}', which is not a folder "
                f"(looked for {resolved})",
                where,
                "paths are folders, relative to the spec's file, that hold the entrypoint's module",
            )


def _resolved(base: Path, path: str) -> Path | str:
    """``path`` under ``base``, resolved, or why it cannot be."""
    problem = path_problem(path)
    if problem is not None:
        return f"not a usable path ({problem})"
    try:
        return (base / path).resolve()
    except (OSError, RuntimeError) as exc:
        return f"not a usable path ({exc})"
