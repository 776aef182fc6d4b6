"""Content hashes that depend on meaning only.

A spec is hashed from its validated model with every default filled in, dumped as JSON with
sorted keys: YAML formatting, key order, comments, anchors and the file a spec lives in do
not change it; any value that changes the model does, and so does writing out a default
differently only if the value differs.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from compiler.symbols import Program
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
    """A spec's canonical data and its hash, computed once per compile."""

    data: dict[str, Any]
    hash: str


def fingerprints(program: Program) -> dict[str, Fingerprint]:
    """``Kind/name`` to fingerprint, for every spec of the program."""
    out: dict[str, Fingerprint] = {}
    for entry in program.entries():
        data = spec_data(entry.model)
        out[entry.key] = Fingerprint(data, digest(data))
    return out
