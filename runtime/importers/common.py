"""What every importer shares: the result type, names, templates and the YAML writer."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from specs.source.atomic import write_atomic

__all__ = [
    "Imported",
    "Leftover",
    "document",
    "escape_jinja",
    "kiln_name",
    "template",
    "write_specs",
]

_VARIABLE = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_JINJA_OPENERS = re.compile(r"\{(?=[{%#])")
_NOT_NAME = re.compile(r"[^a-z0-9_-]+")


@dataclass(frozen=True, slots=True)
class Leftover:
    """Something of the source that the specs do not carry, and what to do about it."""

    where: str
    what: str
    hint: str = ""

    def render(self) -> str:
        hint = f" ({self.hint})" if self.hint else ""
        return f"  {self.where}: {self.what}{hint}"


@dataclass(slots=True)
class Imported:
    """Spec documents by file name, and what was left out."""

    files: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    leftovers: list[Leftover] = field(default_factory=list)

    def add(self, filename: str, document: dict[str, Any]) -> None:
        self.files.setdefault(filename, []).append(document)

    def leave(self, where: str, what: str, hint: str = "") -> None:
        self.leftovers.append(Leftover(where, what, hint))


def document(kind: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    """A kiln/v1 spec document of ``kind`` named ``name``."""
    return {"apiVersion": "kiln/v1", "kind": kind, "metadata": {"name": name}, "spec": spec}


def kiln_name(text: str) -> str:
    """A spec name (lower case, digits, ``-`` and ``_``, at most 63) made from ``text``."""
    name = _NOT_NAME.sub("-", text.strip().lower()).strip("-_")
    return (name or "imported")[:63].rstrip("-_") or "imported"


def escape_jinja(text: str) -> str:
    """``text`` with every brace that Jinja would read as a tag escaped."""
    return _JINJA_OPENERS.sub("{{ '{' }}", text)


def template(text: str, variables: set[str]) -> str:
    """CrewAI-style ``{name}`` placeholders as kiln's ``{{ inputs.name }}``; every other
    brace that Jinja would read is escaped. The names found are added to ``variables``."""
    escaped = escape_jinja(text)

    def swap(match: re.Match[str]) -> str:
        variables.add(match.group(1))
        return "{{ inputs." + match.group(1) + " }}"

    return _VARIABLE.sub(swap, escaped)


class _Dumper(yaml.SafeDumper):
    pass


def _text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _text)


def dump(documents: list[dict[str, Any]]) -> str:
    header = "# Written by 'kiln import': review it, then run 'kiln validate' on this folder.\n"
    body = yaml.dump_all(documents, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)
    return header + body


def write_specs(imported: Imported, out: Path, *, force: bool = False) -> list[Path]:
    """Write every file of ``imported`` under ``out``; never overwrite without ``force``."""
    targets = [out / name for name in imported.files]
    existing = [p for p in targets if p.exists()]
    if existing and not force:
        names = ", ".join(str(p) for p in existing)
        raise FileExistsError(f"{names} already exist{'s' * (len(existing) == 1)}: use --force")
    for path in targets:
        write_atomic(path, dump(imported.files[path.name]))
    return targets
