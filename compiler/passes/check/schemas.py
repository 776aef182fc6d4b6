"""JSON Schemas written in specs (tool inputs and outputs, agent and task outputs) are valid."""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from compiler.diagnostics import Diagnostic, closest, error
from compiler.hashing import canonical_json
from compiler.symbols import Program, SpecEntry
from specs import Agent, Crew, Tool
from specs.source import DataPath

if TYPE_CHECKING:
    from jsonschema.exceptions import SchemaError


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
            problem = _schema_problem(canonical_json(schema))
            if problem is None:
                continue
            where, message = problem
            yield error(
                "K4002",
                f"{'.'.join(map(str, path[1:]))} is not a valid JSON Schema: {message}",
                entry.doc.locate((*path, *where), key=False),
                "see https://json-schema.org/understanding-json-schema/ (kiln uses Draft 2020-12)",
            )


@functools.lru_cache(maxsize=4096)
def _schema_problem(text: str) -> tuple[DataPath, str] | None:
    """What is wrong with the schema whose canonical JSON is ``text`` (cached: projects
    repeat the same small schemas many times)."""
    from jsonschema import Draft202012Validator  # imported here: it costs ~80 ms at start-up
    from jsonschema.exceptions import SchemaError

    try:
        Draft202012Validator.check_schema(json.loads(text))
    except SchemaError as exc:
        best = _deepest(exc)
        where: DataPath = tuple(p for p in best.path if isinstance(p, str | int))
        return where, _describe(best)
    except Exception as exc:  # noqa: BLE001 - a malformed $ref can make jsonschema itself fail
        return (), str(exc)
    return None


def _deepest(exc: SchemaError) -> SchemaError:
    """jsonschema reports the outermost failing keyword; the innermost one is the useful one."""
    best = exc
    for sub in exc.context or ():
        if isinstance(sub, SchemaError) and len(sub.path) > len(best.path):
            best = sub
    return best


_TYPES = ("string", "number", "integer", "boolean", "object", "array", "null")


def _describe(exc: SchemaError) -> str:
    if exc.path and exc.path[-1] == "type" and isinstance(exc.instance, str):
        near = closest(exc.instance, _TYPES)
        guess = f" (did you mean '{near}'?)" if near else ""
        return f"'{exc.instance}' is not a JSON Schema type{guess}; use one of {', '.join(_TYPES)}"
    return exc.message
