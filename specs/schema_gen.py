"""JSON Schema files for editors, generated from the spec models.

``python -m specs.schema_gen`` writes one schema per kind into ``specs/schema/``, plus
``kiln.json`` that accepts a document of any kind (told apart by ``kind``).
``python -m specs.schema_gen --check`` exits 1 and names the stale files instead.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from specs.descriptions import DESCRIPTIONS
from specs.kinds import KINDS, SpecModel
from specs.source.atomic import write_if_changed

__all__ = ["BASE_URL", "DRAFT", "SCHEMA_DIR", "check", "generate", "main", "write"]

#: The folder the generated files live in (and are shipped from, as package data).
SCHEMA_DIR = Path(__file__).resolve().parent / "schema"
#: The JSON Schema dialect of every generated file.
DRAFT = "https://json-schema.org/draft/2020-12/schema"
#: Where the files are published; each file's ``$id`` is this plus its name.
BASE_URL = "https://agentkiln.dev/schema/v1/"

_ANY_KIND = "kiln.json"


def _file_name(kind: str) -> str:
    """``MemoryPolicy`` -> ``memory_policy.json``."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", kind).lower() + ".json"


def _describe(name: str, schema: dict[str, Any]) -> None:
    """Add the descriptions of :data:`DESCRIPTIONS` that a model's fields do not carry."""
    for field, prop in (schema.get("properties") or {}).items():
        text = DESCRIPTIONS.get(f"{name}.{field}")
        if text is not None and "description" not in prop:
            prop["description"] = text


def _kind_schema(kind: str, model: type[SpecModel]) -> dict[str, Any]:
    schema = model.model_json_schema(by_alias=True, mode="validation")
    _describe(kind, schema)  # the kind's name: kiln.json keeps each kind's body under it
    for name, sub in schema.get("$defs", {}).items():
        _describe(name, sub)
    if "description" not in schema:
        # The kind's module docstring says what the kind is for: editors show it on hover.
        doc = sys.modules[model.__module__].__doc__
        if doc:
            schema["description"] = doc.strip().splitlines()[0].replace("``", "`")
    return schema


def _dump(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def _header(name: str, title: str) -> dict[str, Any]:
    return {"$schema": DRAFT, "$id": BASE_URL + name, "title": title}


def _any_kind(schemas: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """One schema for a document of any kind: each kind under ``$defs``, picked by ``kind``."""
    defs: dict[str, Any] = {}
    for kind, schema in schemas.items():
        body = dict(schema)
        for name, sub in body.pop("$defs", {}).items():
            if defs.setdefault(name, sub) != sub:
                # Two models with one name would make every $ref to it ambiguous.
                raise ValueError(f"two different spec models are both named {name!r}")
        if defs.setdefault(kind, body) != body:
            raise ValueError(f"a spec model is named like the kind {kind!r}")
    return {
        **_header(_ANY_KIND, "agentkiln spec (any kind)"),
        "description": "A kiln/v1 document of any kind: " + ", ".join(schemas) + ".",
        "oneOf": [{"$ref": f"#/$defs/{kind}"} for kind in schemas],
        "$defs": defs,
    }


def generate() -> dict[str, str]:
    """Every schema file's name mapped to its exact text (sorted keys, trailing newline)."""
    schemas = {kind: _kind_schema(kind, model) for kind, model in KINDS.items()}
    files = {
        _file_name(kind): _dump({**schema, **_header(_file_name(kind), f"agentkiln {kind}")})
        for kind, schema in schemas.items()
    }
    files[_ANY_KIND] = _dump(_any_kind(schemas))
    return dict(sorted(files.items()))


def check(directory: Path = SCHEMA_DIR) -> list[str]:
    """Names of files in ``directory`` that are missing, differ from ``generate()`` or are extra."""
    expected = generate()
    stale = [
        name
        for name, text in expected.items()
        if not (directory / name).is_file() or (directory / name).read_text("utf-8") != text
    ]
    extra = [p.name for p in directory.glob("*.json") if p.name not in expected]
    return sorted(stale + extra)


def write(directory: Path = SCHEMA_DIR) -> list[str]:
    """Bring ``directory`` up to date (each file replaced atomically); return what changed.

    A ``.json`` file that ``generate()`` no longer makes (a renamed kind) is removed.
    """
    directory.mkdir(parents=True, exist_ok=True)
    expected = generate()
    changed: list[str] = []
    for extra in sorted(p for p in directory.glob("*.json") if p.name not in expected):
        extra.unlink()
        changed.append(extra.name)
    for name, text in expected.items():
        if write_if_changed(directory / name, text):
            changed.append(name)
    return changed


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: write the schema files, or with ``--check`` only report stale ones."""
    parser = argparse.ArgumentParser(prog="python -m specs.schema_gen", description=__doc__)
    parser.add_argument("--check", action="store_true", help="exit 1 if any file is stale")
    parser.add_argument("--dir", type=Path, default=SCHEMA_DIR, help="output folder")
    args = parser.parse_args(argv)
    if args.check:
        stale = check(args.dir)
        for name in stale:
            print(f"stale: {args.dir / name}", file=sys.stderr)
        if stale:
            print("run `make schema` to regenerate", file=sys.stderr)
        return 1 if stale else 0
    for name in write(args.dir):
        print(f"updated {args.dir / name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
