"""OpenAPI tools can be made: the document reads, the operations listed exist, and each
operation becomes a tool with valid schemas and distinct parameter names."""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Iterator
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from compiler.diagnostics import Diagnostic, did_you_mean, error
from compiler.jsonschema_lite import plainly_valid
from compiler.symbols import Program, SpecEntry
from specs.openapi import OpenApiError, base_url, load_document, operation_ids, survey
from specs.source import Span
from specs.tool import OpenApiExecutor


def check_openapi(program: Program) -> Iterator[Diagnostic]:
    for name, entry in program.tools.items():
        if entry.origin != "user" or entry.lost("spec", "executor"):
            continue
        executor = program.tool(name).spec.executor
        if isinstance(executor, OpenApiExecutor):
            yield from _check(name, entry, executor)


def _check(name: str, entry: SpecEntry, executor: OpenApiExecutor) -> Iterator[Diagnostic]:
    document_at = entry.doc.locate(("spec", "executor", "document"))
    path = Path(os.path.normpath(Path(entry.doc.path).parent / executor.document))
    try:
        document = load_document(path)
    except OpenApiError as exc:
        yield error(
            "K4017",
            f"tool '{name}' cannot read its OpenAPI document: {exc}",
            document_at,
            "document is a path relative to this file, of an OpenAPI 3.0 or 3.1 document "
            "in JSON or YAML",
        )
        return
    base = executor.base_url or base_url(document)
    if base is None:
        yield error(
            "K4017",
            f"tool '{name}': its OpenAPI document ({executor.document}) names no absolute "
            "server URL to call",
            document_at,
            "set executor.base_url, e.g. base_url: https://api.example.com/v1",
        )
    elif executor.allow_hosts:
        host = urlsplit(base).hostname or ""
        if not any(fnmatchcase(host.lower(), p.lower()) for p in executor.allow_hosts):
            yield error(
                "K4012",
                f"tool '{name}' calls host '{host}' (its base URL), which its allow_hosts "
                "does not include",
                entry.doc.locate(("spec", "executor", "allow_hosts")),
                f"add '{host}' to allow_hosts, or leave allow_hosts out: it defaults to the "
                "base URL's host",
            )
    ids = operation_ids(document)
    wanted = []
    for i, op_id in enumerate(executor.operations):
        if op_id in ids:
            wanted.append(op_id)
            continue
        yield error(
            "K4018",
            f"tool '{name}' imports operation '{op_id}', which its document ({path.name}) "
            "does not have",
            entry.doc.locate(("spec", "executor", "operations", i)),
            did_you_mean(op_id, ids) or "list operationIds of the document (none: all of them)",
        )
    if executor.operations and not wanted:
        return
    yield from _operations(name, entry, executor, document, wanted)


def _operations(
    name: str, entry: SpecEntry, executor: OpenApiExecutor, document: Any, wanted: list[str]
) -> Iterator[Diagnostic]:
    def where(op_id: str | None) -> Span:
        """The operation's line in ``operations``, or the document's when none lists it."""
        if op_id is not None and op_id in executor.operations:
            at = executor.operations.index(op_id)
            return entry.doc.locate(("spec", "executor", "operations", at))
        return entry.doc.locate(("spec", "executor", "document"))

    found, problems = survey(document, wanted)
    for problem in problems:
        yield error(
            "K4019",
            f"tool '{name}': {problem.message}" + (f" ({problem.where})" if problem.where else ""),
            where(problem.operation),
            "fix the document, or list in executor.operations only the operations you need",
        )
    for op in found:
        schemas = [("input", op.input_schema)]
        if op.output_schema is not None:
            schemas.append(("output", op.output_schema))
        for what, schema in schemas:
            if plainly_valid(schema):  # nearly every schema: jsonschema is not even imported
                continue
            message = _schema_problem(json.dumps(schema, sort_keys=True))
            if message is not None:
                yield error(
                    "K4019",
                    f"tool '{name}': the {what} schema of operation '{op.id}' "
                    f"({op.method} {op.path}) is not a valid JSON Schema: {message}",
                    where(op.id),
                    "fix the operation's schemas in the document",
                )


@functools.lru_cache(maxsize=1024)
def _schema_problem(text: str) -> str | None:
    """The most relevant problem of the schema whose JSON is ``text``, if any."""
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import best_match

    meta = Draft202012Validator(Draft202012Validator.META_SCHEMA)
    found = best_match(meta.iter_errors(json.loads(text)))
    if found is None:
        return None
    at = "/".join(map(str, found.absolute_path))
    return str(found.message) + (f" (at {at})" if at else "")
