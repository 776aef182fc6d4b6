"""Equivalent YAML forms of the same spec documents, spread over files and folders.

``render(docs, layout)`` writes documents in one of many forms that mean the same data:
PyYAML's emitter with its options (flow, canonical, quoted, narrow, anchors and aliases for
equal subtrees), or a hand-rolled block emitter that mixes flow and block collections,
plain and quoted strings, literal blocks, comments, indentation widths, and YAML 1.1
spellings of booleans, nulls and integers; with keys shuffled, defaults written out,
CRLF line ends, a BOM, directives, empty documents and ``...`` markers, as drawn.
"""

from __future__ import annotations

import copy
import json
import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from hypothesis import strategies as st

Spec = dict[str, Any]
Files = dict[str, str]

#: Folders the loader does not look into (specs/source/loader.py): never drawn as folders.
SKIP_DIRS = frozenset({".git", ".venv", "venv", "node_modules", "__pycache__", ".kiln"})
#: Keys that YAML 1.1 would read as booleans or null if PyYAML read them: always quoted.
_YAML11_WORDS = frozenset({"y", "n", "yes", "no", "on", "off", "true", "false", "null"})

# -- equivalent forms of the data ----------------------------------------------------------

#: Fields written out with their default value: the model (and so the hash) is the same.
DEFAULTS: dict[str, dict[str, Any]] = {
    "Agent": {"strategy": "react", "fallbacks": [], "delegate_to": [], "temperature": None},
    "Tool": {"version": "1", "side_effects": False, "requires_approval": False, "cache": None},
    "MemoryPolicy": {"ttl_s": None, "graph": None},
    "Crew": {"shared_memory": False, "description": "", "memory": None},
}


def with_defaults(doc: Spec) -> Spec:
    out = copy.deepcopy(doc)
    kind, spec, meta = out.get("kind"), out.get("spec"), out.get("metadata")
    if isinstance(spec, dict) and isinstance(kind, str):
        for key, value in DEFAULTS.get(kind, {}).items():
            spec.setdefault(key, value)
    if isinstance(meta, dict):
        meta.setdefault("labels", {})
    return out


def shuffled(value: Any, rng: random.Random) -> Any:
    """The same data with every mapping's keys in a random order (sequences keep theirs)."""
    if isinstance(value, dict):
        items = list(value.items())
        rng.shuffle(items)
        return {k: shuffled(v, rng) for k, v in items}
    if isinstance(value, list):
        return [shuffled(v, rng) for v in value]
    return value


def shared(value: Any, seen: dict[str, Any] | None = None) -> Any:
    """Equal subtrees made one object, so PyYAML writes them once with an anchor and aliases."""
    seen = {} if seen is None else seen
    if isinstance(value, dict | list):
        rebuilt: Any = (
            {k: shared(v, seen) for k, v in value.items()}
            if isinstance(value, dict)
            else [shared(v, seen) for v in value]
        )
        if not rebuilt:
            return rebuilt
        key = json.dumps(rebuilt, sort_keys=True, default=str)
        return seen.setdefault(key, rebuilt)
    return value


# -- a hand-rolled block emitter -----------------------------------------------------------

#: Characters a YAML double-quoted scalar may hold as they are (no line breaks, no BOM).
_PRINTABLE = re.compile(
    "[\x20-\x7e\u00a0-\u2027\u202a-\ud7ff\ue000-\ufefe\uff00-\ufffd\U00010000-\U0010ffff]"
)


def double_quoted(text: str) -> str:
    out = []
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif _PRINTABLE.fullmatch(ch):
            out.append(ch)
        elif ord(ch) <= 0xFF:
            out.append(f"\\x{ord(ch):02x}")
        elif ord(ch) <= 0xFFFF:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    return '"' + "".join(out) + '"'


def _round_trips(snippet: str, expected: Any) -> bool:
    try:
        return bool(yaml.load(snippet, Loader=_LOADER) == {"k": expected})
    except yaml.YAMLError:
        return False


_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_BOOLS = {True: ("true", "True", "TRUE", "yes", "on"), False: ("false", "False", "no", "off")}


@dataclass(frozen=True, slots=True)
class Emitter:
    """One way of writing YAML by hand; every choice is made by ``rng``."""

    rng: random.Random
    width: int  # spaces per indentation level
    indent_sequences: bool  # "key:\n  - a" rather than "key:\n- a"
    quoting: str  # "plain", "single", "double" or "mixed"
    flow: float  # chance that a collection is written in flow style
    comments: float  # chance of a comment line before an entry, or after a scalar
    literal: float  # chance that multi-line text is a literal block (|)

    def document(self, data: Any) -> list[str]:
        return self.block(data, 0) if isinstance(data, dict) else [self.scalar(data)]

    def block(self, value: dict[str, Any] | list[Any], depth: int) -> list[str]:
        pad = " " * (self.width * depth)
        lines: list[str] = []
        entries: list[tuple[str | None, Any]] = (
            [(str(k), v) for k, v in value.items()]
            if isinstance(value, dict)
            else [(None, v) for v in value]
        )
        for key, item in entries:
            if self.rng.random() < self.comments:
                lines.append(f"{pad}# {self.rng.choice(('note', 'TODO: x', 'key: v', '- a'))}")
            lead = f"{pad}{self.key(key)}:" if key is not None else f"{pad}-"
            lines.extend(self.entry(lead, item, depth, key is None))
        return lines

    def entry(self, lead: str, item: Any, depth: int, in_seq: bool) -> list[str]:
        if isinstance(item, dict | list) and item and self.rng.random() >= self.flow:
            if in_seq:
                nested = self.block(item, 0)
                pad = " " * (len(lead) + 1)
                if nested[0].lstrip().startswith("#"):
                    return [lead, *(pad + line for line in nested)]
                return [f"{lead} {nested[0]}", *(pad + line for line in nested[1:])]
            deeper = isinstance(item, dict) or self.indent_sequences
            return [lead, *self.block(item, depth + 1 if deeper else depth)]
        if isinstance(item, str) and "\n" in item and self.rng.random() < self.literal:
            block = self.literal_block(item)
            if block is not None:
                column = " " * (len(lead) - len(lead.lstrip()))
                return [
                    f"{lead} {block[0]}",
                    *(column + line if line else "" for line in block[1:]),
                ]
        text = self.flow_text(item) if isinstance(item, dict | list) else self.scalar(item)
        if self.rng.random() < self.comments:
            text += "  # " + self.rng.choice(("why", "a: b", "#", "'q'"))
        return [f"{lead} {text}"]

    def literal_block(self, text: str) -> list[str] | None:
        """``|`` with an explicit indentation (relative to the entry's column) and chomping."""
        body = text.rstrip("\n")
        trailing = len(text) - len(body)
        chomp = "-" if trailing == 0 else ("" if trailing == 1 else "+")
        pad = " " * self.width
        lines = [f"|{self.width}{chomp}"] + [
            pad + line if line else "" for line in body.split("\n")
        ]
        lines += [""] * max(0, trailing - 1)
        return lines if _round_trips("k: " + "\n".join(lines) + "\n", text) else None

    def key(self, key: str) -> str:
        plain_ok = re.fullmatch(r"[A-Za-z_][\w-]*", key) and key.lower() not in _YAML11_WORDS
        if plain_ok and self.quoting in ("plain", "mixed") and self.rng.random() < 0.9:
            return key
        if self.rng.random() < 0.5 or not all(_PRINTABLE.fullmatch(c) for c in key):
            return double_quoted(key)
        return "'" + key.replace("'", "''") + "'"

    def scalar(self, value: Any) -> str:
        if isinstance(value, bool):
            return self.rng.choice(_BOOLS[value])
        if value is None:
            return self.rng.choice(("null", "~", "Null", "NULL"))
        if isinstance(value, int):
            forms = [str(value)]
            if value >= 0:
                forms += [hex(value), f"{value:_}", f"!!int '{value}'"]
            return self.rng.choice(forms)
        if isinstance(value, float):
            return yaml.safe_dump(value).removesuffix("\n...\n").strip()
        assert isinstance(value, str)
        return self.string(value)

    def string(self, text: str) -> str:
        quoting = self.quoting
        style = (self.rng.choice(("plain", "single", "double")) if quoting == "mixed" else quoting)[
            0
        ]
        if style == "p" and "#" not in text and _round_trips(f"k: {text}\n", text):
            return text
        single = "'" + text.replace("'", "''") + "'"
        if style in "ps" and _round_trips(f"k: {single}\n", text):
            return single
        if style == "d" and self.rng.random() < 0.2:
            return "!!str " + double_quoted(text)
        return double_quoted(text)

    def flow_text(self, value: Any) -> str:
        text = yaml.dump(
            value,
            Dumper=yaml.SafeDumper,
            default_flow_style=True,
            width=10**9,
            allow_unicode=self.rng.random() < 0.5,
        )
        return text.removesuffix("\n...\n").strip()


# -- layouts: how documents are spread over files ------------------------------------------


@dataclass(frozen=True, slots=True)
class Layout:
    """Every choice of how to write a project, drawn by hypothesis."""

    seed: int
    engine: str  # "pyyaml" or "hand"
    files: int  # how many files the documents are spread over (1: one multi-document file)
    folders: tuple[str, ...]
    names: tuple[str, ...]
    crlf: bool
    bom: bool
    explicit_defaults: bool
    aliases: bool
    extras: bool  # comments between documents, empty documents, directives, '...'


folder_names = st.from_regex(r"[a-z0-9][a-z0-9_ -]{0,8}", fullmatch=True).filter(
    lambda s: s not in SKIP_DIRS and not s.endswith(" ")
)
file_names = st.from_regex(r"[a-z0-9][a-z0-9_. -]{0,8}", fullmatch=True).filter(
    lambda s: not s.endswith((" ", "."))
)
layouts = st.builds(
    Layout,
    seed=st.integers(0, 2**32),
    engine=st.sampled_from(("pyyaml", "hand")),
    files=st.integers(1, 4),
    folders=st.lists(folder_names, min_size=1, max_size=3).map(tuple),
    names=st.lists(file_names, min_size=4, max_size=4, unique=True).map(tuple),
    crlf=st.booleans(),
    bom=st.booleans(),
    explicit_defaults=st.booleans(),
    aliases=st.booleans(),
    extras=st.booleans(),
)


def canonical(docs: list[Spec]) -> Files:
    """The reference form: one file, documents in order, PyYAML's block style."""
    dump = [yaml.safe_dump(d, sort_keys=False, allow_unicode=True) for d in docs]
    return {"specs.yaml": "---\n".join(dump)}


def _pyyaml(doc: Spec, rng: random.Random) -> str:
    for _ in range(5):
        text = yaml.dump(
            doc,
            Dumper=yaml.SafeDumper,
            sort_keys=rng.random() < 0.3,
            default_flow_style=rng.choice((False, True, None)),
            indent=rng.randint(2, 9),
            width=rng.choice((20, 80, 10**6)),
            allow_unicode=rng.random() < 0.5,
            default_style=rng.choice((None, None, "'", '"')),
            explicit_start=rng.random() < 0.5,
            canonical=rng.random() < 0.15,
        )
        # PyYAML's emitter breaks long double-quoted lines wrongly when the indentation
        # nears the width: keep only what PyYAML itself reads back.
        if yaml.load(text, Loader=_LOADER) == doc:
            return text
    return yaml.safe_dump(doc, allow_unicode=True)


def _hand(doc: Spec, rng: random.Random) -> str:
    emitter = Emitter(
        rng=rng,
        width=rng.choice((1, 2, 3, 4, 8)),
        indent_sequences=rng.random() < 0.5,
        quoting=rng.choice(("plain", "single", "double", "mixed")),
        flow=rng.choice((0.0, 0.2, 0.6)),
        comments=rng.choice((0.0, 0.1, 0.3)),
        literal=rng.choice((0.0, 0.5, 1.0)),
    )
    return "\n".join(emitter.document(doc)) + "\n"


def render_document(doc: Spec, layout: Layout, rng: random.Random) -> str:
    data = with_defaults(doc) if layout.explicit_defaults else doc
    data = shuffled(data, rng) if layout.engine == "hand" or rng.random() < 0.7 else data
    if layout.aliases:
        data = shared(data)
    return (_pyyaml if layout.engine == "pyyaml" else _hand)(data, rng)


def _join(texts_: list[str], layout: Layout, rng: random.Random) -> str:
    out = "%YAML 1.1\n---\n" if layout.extras and rng.random() < 0.3 else ""
    for i, text in enumerate(texts_):
        if i:
            out += "---\n" if not text.startswith("---") else ""
        if layout.extras:
            out += rng.choice(("", "# between documents\n", "---\n# empty\n", "---\n"))
        out += text
        if layout.extras and rng.random() < 0.3:
            out += "...\n"
    return out


def render(docs: list[Spec], layout: Layout) -> Files:
    """The documents written as files (relative path -> text) in the layout's way."""
    rng = random.Random(layout.seed)
    order = list(range(len(docs)))
    rng.shuffle(order)
    groups: dict[int, list[str]] = {}
    for i in order:
        groups.setdefault(rng.randrange(layout.files), []).append(
            render_document(docs[i], layout, rng)
        )
    files: Files = {}
    for index, texts_ in sorted(groups.items()):
        folder = Path(*rng.sample(layout.folders, rng.randint(0, len(layout.folders))))
        suffix = rng.choice((".yaml", ".yml"))
        text = _join(texts_, layout, rng)
        if layout.crlf:
            text = text.replace("\n", "\r\n")
        if layout.bom:
            text = "\ufeff" + text
        files[str(folder / f"{layout.names[index]}{suffix}")] = text
    return files


def write(root: Path, files: Files) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text.encode("utf-8"))
