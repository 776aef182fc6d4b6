"""Conventions that review would otherwise have to catch: layering, lazy imports, docs, APIs."""

from __future__ import annotations

import ast
import importlib
import importlib.util
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("specs", "compiler", "runtime", "sandbox", "stdlib_tools")

#: package -> the packages of this repository it must not import (DESIGN.md, "Layout").
FORBIDDEN: dict[str, frozenset[str]] = {
    "specs": frozenset({"compiler", "runtime"}),
    "compiler": frozenset({"runtime"}),
    "sandbox": frozenset({"specs", "compiler", "runtime"}),
    "stdlib_tools": frozenset({"specs", "compiler", "runtime"}),
}

#: Modules that cost seconds or need a server: never imported by `kiln validate`.
HEAVY = frozenset(
    {
        "litellm",
        "chromadb",
        "xllamacpp",
        "torch",
        "sentence_transformers",
        "redis",
        "neo4j",
        "starlette",
        "uvicorn",
        "httpx",
    }
)


def _sources(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def _existing(packages: tuple[str, ...]) -> list[str]:
    return [p for p in packages if (ROOT / p).is_dir()]


def _imported_packages(tree: ast.Module, package: str) -> Iterator[tuple[int, str]]:
    """(line, top-level package) of every import anywhere in the module, even in functions."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name.partition(".")[0]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: stays inside its own package
                yield node.lineno, package
            elif node.module:
                yield node.lineno, node.module.partition(".")[0]


@pytest.mark.parametrize("package", _existing(tuple(FORBIDDEN)))
def test_import_layering(package: str) -> None:
    forbidden = FORBIDDEN[package]
    violations = [
        f"{path.relative_to(ROOT)}:{line}: imports {imported}"
        for path in _sources(package)
        for line, imported in _imported_packages(ast.parse(path.read_bytes(), str(path)), package)
        if imported in forbidden
    ]
    assert not violations, f"{package} must not import {sorted(forbidden)}:\n" + "\n".join(
        violations
    )


_VALIDATE_SNIPPET = """
import json, sys
from runtime.cli import main
import runtime.memory, runtime.memory.registry, runtime.memory.service  # stores stay lazy
try:
    code = main(["validate", "examples/quickstart", "examples/memory-chat"])
except SystemExit as exc:
    code = exc.code
with open(sys.argv[1], "w") as out:
    json.dump({"code": code, "modules": sorted(sys.modules)}, out)
"""


def test_validate_imports_no_heavy_module(tmp_path: Path) -> None:
    report = tmp_path / "modules.json"
    proc = subprocess.run(
        [sys.executable, "-c", _VALIDATE_SNIPPET, str(report)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, f"the snippet failed:\n{proc.stdout}\n{proc.stderr}"
    result = json.loads(report.read_text())
    # Exit code 0 means every pass ran, so no import was skipped by an early error.
    assert result["code"] == 0, f"kiln validate of the examples failed:\n{proc.stdout}"
    heavy = sorted(m for m in result["modules"] if m.partition(".")[0] in HEAVY)
    assert not heavy, f"`kiln validate` imported {heavy}: import them lazily, where used"


def _load_script(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_diagnostics_doc_is_current() -> None:
    gen_docs = _load_script(ROOT / "tools" / "gen_docs.py")
    assert gen_docs.is_current(), "docs/diagnostics.md is stale: run `make docs`"


def _modules_with_all() -> Iterator[Path]:
    for package in _existing(PACKAGES):
        for path in _sources(package):
            if "__all__" in path.read_text("utf-8"):
                yield path


def _declared_all(tree: ast.Module) -> list[str] | None:
    for node in tree.body:
        if isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id == "__all__" for t in targets):
                assert node.value is not None
                value = ast.literal_eval(node.value)
                assert isinstance(value, list | tuple), "__all__ must be a literal list"
                return [str(name) for name in value]
    return None


def _top_level_names(tree: ast.Module) -> set[str]:
    """Names bound at module level (also under `if` and `try`), not inside defs or classes."""
    names: set[str] = set()
    todo: list[ast.AST] = list(tree.body)
    while todo:
        node = todo.pop()
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
            continue  # what is bound inside is not a module attribute
        if isinstance(node, ast.Import | ast.ImportFrom):
            names.update((a.asname or a.name).partition(".")[0] for a in node.names)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        todo.extend(ast.iter_child_nodes(node))
    return names


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@pytest.mark.parametrize("path", list(_modules_with_all()), ids=lambda p: str(p.relative_to(ROOT)))
def test_all_lists_only_names_that_exist(path: Path) -> None:
    tree = ast.parse(path.read_bytes(), str(path))
    declared = _declared_all(tree)
    assert declared is not None, "__all__ is mentioned but not set to a list of names"
    assert len(declared) == len(set(declared)), f"__all__ has duplicates: {declared}"
    bound = _top_level_names(tree)
    lazy = "__getattr__" in bound or "*" in bound
    if lazy:  # names may come from a module __getattr__ or a star import: ask the module
        module = importlib.import_module(_module_name(path))
        missing = [name for name in declared if not hasattr(module, name)]
    else:
        missing = [name for name in declared if name not in bound]
    assert not missing, f"__all__ of {_module_name(path)} lists undefined names: {missing}"


def test_every_schema_property_has_a_description() -> None:
    """Editors show a property's description on hover: none may be missing, and the table
    of descriptions may not name fields that no longer exist."""
    from specs.descriptions import DESCRIPTIONS

    schema = json.loads((ROOT / "specs" / "schema" / "kiln.json").read_text(encoding="utf-8"))
    properties = {
        f"{name}.{prop}": body
        for name, sub in schema["$defs"].items()
        for prop, body in (sub.get("properties") or {}).items()
    }
    assert len(properties) > 150
    assert [p for p, body in properties.items() if not body.get("description")] == []
    assert sorted(set(DESCRIPTIONS) - set(properties)) == []
