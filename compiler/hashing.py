"""Content hashes that depend on meaning only.

A spec is hashed from its validated model with every default filled in, dumped as JSON with
sorted keys: YAML formatting, key order, comments, anchors and the file a spec lives in do
not change it; any value that changes the model does, and so does writing out a default
differently only if the value differs.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Set
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from compiler.symbols import Program, SpecEntry
from specs import SpecModel


def canonical_json(data: Any) -> str:
    """One byte sequence per value: sorted keys, no insignificant whitespace, UTF-8 as is."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def digest(data: Any) -> str:
    return "sha256:" + hashlib.sha256(canonical_json(data).encode("utf-8")).hexdigest()


def spec_data(model: SpecModel) -> dict[str, Any]:
    """The spec as plain JSON data, defaults included, keys as written in YAML."""
    return model.model_dump(mode="json", by_alias=True)


@dataclass(frozen=True, slots=True)
class Fingerprint:
    """A spec's canonical data and its hash, computed once per compile. ``files``: the
    files it pulls in (a python tool's code, an OpenAPI document, scripted turns), by path
    relative to the spec's folder, to their content hashes; they are part of the hash."""

    data: dict[str, Any]
    hash: str
    files: dict[str, str] = field(default_factory=dict)


def fingerprints(program: Program) -> dict[str, Fingerprint]:
    """``Kind/name`` to fingerprint, for every spec of the program."""
    out: dict[str, Fingerprint] = {}
    # the spec files are hashed as specs (by meaning): a tool whose code folder holds them
    # must not hash their bytes, or reformatting a spec would change the plan
    specs = {str(Path(e.doc.path).absolute()) for e in program.entries()}
    for entry in program.entries():
        data = spec_data(entry.model)
        files = pulled_in(entry, skip=specs) if entry.origin == "user" else {}
        hashed = digest({"spec": data, "files": files}) if files else digest(data)
        out[entry.key] = Fingerprint(data, hashed, files)
    return out


#: how much of a python tool's folders is hashed at most
MAX_FILES, MAX_BYTES = 2_000, 64 << 20


def pulled_in(entry: SpecEntry, skip: Set[str] = frozenset()) -> dict[str, str]:
    """The files a spec makes the run read, with their content hashes: a python tool's
    modules (every file under its ``paths``), an OpenAPI tool's document, an agent's
    scripted turns. A file that cannot be read is listed as such (the checks say why)."""
    from compiler.models import parse_model

    folder = Path(entry.doc.path).parent
    spec = getattr(entry.model, "spec", None)
    named: list[str] = []
    trees: list[str] = []
    executor = getattr(spec, "executor", None)
    if executor is not None and executor.type == "python" and executor.entrypoint:
        trees.extend(executor.paths)
    elif executor is not None and executor.type == "openapi":
        named.append(executor.document)
    for model in (getattr(spec, "model", None), *(getattr(spec, "fallbacks", None) or ())):
        if isinstance(model, str) and model.startswith("scripted:"):
            ref = parse_model(model)
            name = getattr(ref, "name", None)
            if isinstance(name, str):
                named.append(name)
    out: dict[str, str] = {}
    budget = [MAX_FILES, MAX_BYTES]
    for name in named:
        out[name] = _file_hash(folder, name, budget)
    for tree in trees:
        out.update(_tree_hashes(folder, tree, budget, skip))
    return out


def _file_hash(folder: Path, name: str, budget: list[int]) -> str:
    from specs.source.paths import outside, path_problem, read_regular

    path = folder / name
    if path_problem(name) is not None or outside(path) is not None:
        return "unreadable"
    try:
        data = read_regular(path, min(budget[1], 16 << 20))
    except OSError:
        return "unreadable"
    budget[0] -= 1
    budget[1] -= len(data)
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _tree_hashes(folder: Path, tree: str, budget: list[int], skip: Set[str]) -> dict[str, str]:
    from specs.source.paths import path_problem

    if path_problem(tree) is not None:
        return {tree: "unreadable"}
    root = folder / tree
    out: dict[str, str] = {}
    try:
        files = sorted(
            p for p in root.rglob("*")
            if p.is_file() and "__pycache__" not in p.parts
            and not any(part.startswith(".") for part in p.relative_to(root).parts)
            and str(p.absolute()) not in skip
        )  # fmt: skip
    except OSError:
        return {tree: "unreadable"}
    for path in files:
        if budget[0] <= 0 or budget[1] <= 0:
            out[f"{tree}/..."] = "more files than are hashed"
            break
        relative = path.relative_to(folder).as_posix()
        out[relative] = _file_hash(folder, path.relative_to(folder).as_posix(), budget)
    return out
