"""A quick, conservative test that a JSON Schema is valid (Draft 2020-12).

Checking a schema against the metaschema with ``jsonschema`` costs about a millisecond per
schema, spent resolving the metaschema's own references, and importing it costs 80 ms more;
a project of a thousand tools would spend a second there. Almost every schema in a spec uses a
handful of keywords in their plain forms, so this module answers "valid" for exactly those,
and "not sure" for everything else, which then goes to ``jsonschema`` for the real verdict and
its error messages. It must never call an invalid schema valid: each rule below is the
metaschema's own, restated.
"""

from __future__ import annotations

import re
from typing import Any

_TYPES = frozenset({"string", "number", "integer", "boolean", "object", "array", "null"})
_TEXT = frozenset({"title", "description", "$comment", "format", "$schema"})
_ANY = frozenset({"default", "const"})
_COUNTS = frozenset(
    {"minLength", "maxLength", "minItems", "maxItems", "minProperties", "maxProperties"}
)
_NUMBERS = frozenset({"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"})
_FLAGS = frozenset({"uniqueItems", "deprecated", "readOnly", "writeOnly"})
_ONE_SCHEMA = frozenset({"items", "additionalProperties", "not", "contains", "propertyNames"})
_SCHEMA_LISTS = frozenset({"allOf", "anyOf", "oneOf", "prefixItems"})
_SCHEMA_MAPS = frozenset({"properties", "$defs"})


def plainly_valid(schema: Any, depth: int = 0) -> bool:
    """True only when ``schema`` is certainly a valid Draft 2020-12 schema."""
    if isinstance(schema, bool):
        return True
    if not isinstance(schema, dict) or depth > 32:
        return False
    for key, value in schema.items():
        if not _keyword_ok(key, value, depth):
            return False
    return True


def _keyword_ok(key: str, value: Any, depth: int) -> bool:  # noqa: C901 - a flat table
    if key in _TEXT:
        return isinstance(value, str) and (key != "$schema" or "2020-12" in value)
    if key in _ANY:
        return True
    if key == "type":
        if isinstance(value, str):
            return value in _TYPES
        return (
            isinstance(value, list)
            and len(value) > 0
            and all(isinstance(t, str) and t in _TYPES for t in value)
            and len(set(value)) == len(value)
        )
    if key in _COUNTS:
        return isinstance(value, int) and not isinstance(value, bool) and value >= 0
    if key in _NUMBERS:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if key == "multipleOf":
        return isinstance(value, int | float) and not isinstance(value, bool) and value > 0
    if key in _FLAGS:
        return isinstance(value, bool)
    if key == "required":
        return (
            isinstance(value, list)
            and all(isinstance(v, str) for v in value)
            and len(set(value)) == len(value)
        )
    if key in ("enum", "examples"):
        return isinstance(value, list)
    if key == "pattern":
        return isinstance(value, str) and _regex_ok(value)
    if key in _ONE_SCHEMA:
        return plainly_valid(value, depth + 1)
    if key in _SCHEMA_LISTS:
        return (
            isinstance(value, list)
            and len(value) > 0
            and all(plainly_valid(v, depth + 1) for v in value)
        )
    if key in _SCHEMA_MAPS:
        return isinstance(value, dict) and all(plainly_valid(v, depth + 1) for v in value.values())
    return False  # any other keyword: let jsonschema decide


def _regex_ok(pattern: str) -> bool:
    try:
        re.compile(pattern)
    except re.error:
        return False
    return True
