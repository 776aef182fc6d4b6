"""What an answer's schema means at run time: a required string is a non-empty one.

An ``output_schema`` that requires ``{"answer": {"type": "string"}}`` is met by
``{"answer": ""}``, which is no answer. Unless the schema says how short a string may be
(``minLength``, ``const``, ``enum``, ``pattern``), a required string field (and an answer
that is a string) gets ``minLength: 1``: the answer check refuses an empty one and
constrained decoding never produces it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["non_empty"]

_SAID = ("minLength", "const", "enum", "pattern")
_CACHE: dict[int, tuple[Mapping[str, Any], Mapping[str, Any]]] = {}


def non_empty(schema: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    """``schema`` with ``minLength: 1`` on its required strings (the same object for the
    same schema: validators are cached by identity)."""
    if schema is None:
        return None
    known = _CACHE.get(id(schema))
    if known is not None and known[0] is schema:
        return known[1]
    out = _strict(schema, required=True)
    _CACHE[id(schema)] = (schema, out)
    return out


def _strict(schema: Mapping[str, Any], *, required: bool) -> dict[str, Any]:
    out = dict(schema)
    if out.get("type") == "string" and required and not any(k in out for k in _SAID):
        out["minLength"] = 1
    properties = out.get("properties")
    if out.get("type") == "object" and isinstance(properties, Mapping):
        needed = set(out.get("required") or ())
        out["properties"] = {
            name: _strict(value, required=name in needed) if isinstance(value, Mapping) else value
            for name, value in properties.items()
        }
    return out
