"""JSON Schemas written in specs (tool inputs and outputs, agent and task outputs) are valid."""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from compiler.diagnostics import Diagnostic, closest, error
from compiler.hashing import canonical_json
from compiler.jsonschema_lite import plainly_valid
from compiler.symbols import Program, SpecEntry
from specs import Agent, Crew, Tool
from specs.source import DataPath

if TYPE_CHECKING:
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import ValidationError


def schema_sites(entry: SpecEntry) -> Iterator[tuple[DataPath, dict[str, Any]]]:
    """Every JSON Schema a spec holds, with its path in the document."""
    model = entry.model
    if isinstance(model, Tool):
        yield ("spec", "input_schema"), model.spec.input_schema
        if model.spec.output_schema is not None:
            yield ("spec", "output_schema"), model.spec.output_schema
    elif isinstance(model, Agent) and model.spec.output_schema is not None:
        yield ("spec", "output_schema"), model.spec.output_schema
    elif isinstance(model, Crew):
        for i, task in enumerate(model.spec.tasks):
            if task.output_schema is not None:
                yield ("spec", "tasks", i, "output_schema"), task.output_schema


def check_schemas(program: Program) -> Iterator[Diagnostic]:
    for entry in program.user_entries():
        for path, schema in schema_sites(entry):
            if plainly_valid(schema):  # nearly every schema: no $ref, nothing unusual
                continue
            for where, message in _schema_problems(canonical_json(schema)):
                yield error(
                    "K4002",
                    f"{'.'.join(map(str, path[1:]))} is not a valid JSON Schema: {message}",
                    entry.doc.locate((*path, *where)),
                    "see https://json-schema.org/understanding-json-schema/ "
                    "(kiln uses Draft 2020-12)",
                )


@functools.lru_cache(maxsize=4096)
def _schema_problems(text: str) -> tuple[tuple[DataPath, str], ...]:
    """Every problem of the schema whose canonical JSON is ``text``, one per place (cached:
    projects repeat the same small schemas many times)."""
    schema = json.loads(text)
    found: dict[DataPath, str] = {}
    try:
        for exc in _metaschema().iter_errors(schema):
            best = _deepest(exc)
            where: DataPath = tuple(p for p in best.path if isinstance(p, str | int))
            found.setdefault(where, _describe(best))
    except Exception as exc:  # noqa: BLE001 - jsonschema itself can fail on odd input
        return (((), str(exc)),)
    refs = list(_refs(schema, "$ref"))
    anchors = {"#" + name for _, name in _refs(schema, "$anchor")}
    for where, ref in refs:
        if ref in anchors:
            continue
        if not ref.startswith("#"):
            found.setdefault(where, f"$ref '{ref}' is not local: kiln never fetches schemas")
        elif _pointer(schema, ref[1:]) is _MISSING:
            found.setdefault(where, f"$ref '{ref}' points at nothing in this schema")
    return tuple(sorted(found.items(), key=lambda item: [str(p) for p in item[0]]))


@functools.cache
def _metaschema() -> Draft202012Validator:
    from jsonschema import Draft202012Validator  # imported here: it costs ~80 ms at start-up

    return Draft202012Validator(
        Draft202012Validator.META_SCHEMA, format_checker=Draft202012Validator.FORMAT_CHECKER
    )


_MISSING = object()


def _refs(node: Any, keyword: str, path: DataPath = ()) -> Iterator[tuple[DataPath, str]]:
    """Every string value of ``keyword`` (``$ref``, ``$anchor``) in a schema, with its path."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == keyword and isinstance(value, str):
                yield (*path, key), value
            else:
                yield from _refs(value, keyword, (*path, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _refs(value, keyword, (*path, i))


def _pointer(document: Any, pointer: str) -> Any:
    """What a JSON Pointer (RFC 6901, without the leading '#') names, or ``_MISSING``."""
    if pointer == "":
        return document
    if not pointer.startswith("/"):
        return _MISSING  # an anchor name ('#foo') that no $anchor defines
    node = document
    for raw in pointer[1:].split("/"):
        part = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return _MISSING
    return node


def _deepest(exc: ValidationError) -> ValidationError:
    """jsonschema reports the outermost failing keyword; the innermost one is the useful one."""
    best = exc
    for sub in exc.context or ():
        if len(sub.path) > len(best.path):
            best = sub
    return best


_TYPES = ("string", "number", "integer", "boolean", "object", "array", "null")
_ALIASES = {
    "float": "number", "double": "number", "decimal": "number", "int": "integer",
    "str": "string", "text": "string", "bool": "boolean", "dict": "object", "map": "object",
    "list": "array", "tuple": "array", "none": "null",
}  # fmt: skip


def _describe(exc: ValidationError) -> str:
    if exc.path and exc.path[-1] == "type" and isinstance(exc.instance, str):
        near = _ALIASES.get(exc.instance.lower()) or closest(exc.instance, _TYPES)
        guess = f" (did you mean '{near}'?)" if near else ""
        return f"'{exc.instance}' is not a JSON Schema type{guess}; use one of {', '.join(_TYPES)}"
    return exc.message
