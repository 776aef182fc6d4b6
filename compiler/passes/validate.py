"""Pass 2, validate: each document against its kind's model; pydantic errors become diagnostics."""

from __future__ import annotations

import copy
import re
import types
import typing
from collections.abc import Iterator, Mapping
from typing import Any, Final

from pydantic import BaseModel, ValidationError

from compiler.diagnostics import Diagnostic, closest, did_you_mean, error
from compiler.passes.load import Sources
from compiler.symbols import Origin, SpecEntry, Specs
from specs import API_VERSION, KINDS, SpecModel
from specs.source import DataPath, Document, dotted

_YAML_BOOLS = {"yes", "no", "on", "off", "y", "n", "true", "false"}


def validate(sources: Sources) -> tuple[Specs, tuple[Diagnostic, ...]]:
    entries: list[SpecEntry] = []
    invalid: set[str] = set()
    diags: list[Diagnostic] = []
    for origin, docs in (("user", sources.documents), ("stdlib", sources.stdlib)):
        for doc in docs:
            if _is_openapi(doc.data):
                continue  # an openapi tool's document, kept beside its spec
            text = sources.files.get(doc.path, "")
            entry = _validate_document(doc, text, origin, diags)  # type: ignore[arg-type]
            if entry is not None:
                entries.append(entry)
            elif (key := _key_of(doc.data)) is not None:
                invalid.add(key)
    return Specs(tuple(entries), frozenset(invalid)), tuple(diags)


def _is_openapi(data: Any) -> bool:
    """An OpenAPI (or Swagger) document: not a spec, though it is YAML in the folder."""
    return (
        isinstance(data, dict)
        and ("openapi" in data or "swagger" in data)
        and "apiVersion" not in data
        and "kind" not in data
    )


def _key_of(data: Any) -> str | None:
    """``Kind/name`` of a document, when it at least says that much."""
    if not isinstance(data, dict):
        return None
    kind, metadata = data.get("kind"), data.get("metadata")
    name = metadata.get("name") if isinstance(metadata, dict) else None
    return f"{kind}/{name}" if isinstance(kind, str) and isinstance(name, str) else None


def _validate_document(
    doc: Document, text: str, origin: Origin, diags: list[Diagnostic]
) -> SpecEntry | None:
    data = doc.data
    if not isinstance(data, dict):
        diags.append(
            error(
                "K1009",
                f"a spec document must be a mapping, not {_type_name(data)}",
                doc.span,
                "start it with 'apiVersion: kiln/v1' and 'kind: Agent' "
                "(or Tool, MemoryPolicy, Crew, Model)",
            )
        )
        return None
    header_ok = _header_ok(doc, diags)
    kind = data.get("kind")
    if not isinstance(kind, str) or kind not in KINDS:
        return None
    model_cls = KINDS[kind]
    if not header_ok:  # a wrong apiVersion: still check the rest, to report it all at once
        data = {**data, "apiVersion": API_VERSION}
    dropped: tuple[DataPath, ...] = ()
    try:
        model = model_cls.model_validate(data)
    except ValidationError as exc:
        diags.extend(_translate(exc, doc, text, model_cls))
        pruned = _salvage(model_cls, data, exc)
        if pruned is None:
            return None
        model, dropped = pruned
    return SpecEntry(
        kind=model.kind,
        name=model.metadata.name,
        model=model,
        doc=doc,
        origin=origin,
        dropped=dropped,
    )


def _salvage(
    model_cls: type[SpecModel], data: dict[str, Any], exc: ValidationError
) -> tuple[SpecModel, tuple[DataPath, ...]] | None:
    """The document with its invalid parts dropped, when what is left is still a valid spec.

    A salvaged spec takes part in name resolution, so a document with a typo in one field
    still gets its dangling references reported in the same run; checks that a dropped
    field would make misleading skip what was dropped (see ``SpecEntry.lost``).
    """
    pruned = copy.deepcopy(data)
    dropped: list[DataPath] = []
    for _ in range(3):
        paths = sorted({_data_path(pruned, tuple(e["loc"]))[0] for e in exc.errors()}, reverse=True)
        if not paths or not all(_droppable(p) for p in paths):
            return None  # the header or the name is broken: nothing to salvage
        for path in paths:
            _delete(pruned, path)
        dropped += paths
        try:
            return model_cls.model_validate(pruned), tuple(dropped)
        except ValidationError as again:
            exc = again
    return None


def _droppable(path: DataPath) -> bool:
    """Whether a document is still itself without ``path``: not its header or its name."""
    if len(path) < 2 or path[0] not in ("spec", "metadata"):
        return False
    return path[:2] != ("metadata", "name")


def _delete(data: Any, path: DataPath) -> None:
    parent = data
    for part in path[:-1]:
        try:
            parent = parent[part]
        except (KeyError, IndexError, TypeError):
            return
    last = path[-1]
    if isinstance(parent, dict) and last in parent:
        del parent[last]
    elif isinstance(parent, list) and isinstance(last, int) and 0 <= last < len(parent):
        del parent[last]


_TURN_KEYS = frozenset({"thought", "tool", "input", "final", "score", "raw", "error"})


def _looks_like_script(data: dict[str, Any]) -> bool:
    """A mapping of names to lists of turns (``{thought, tool, input}``, ...)."""
    lists = [v for v in data.values() if isinstance(v, list) and v]
    return bool(lists) and all(
        isinstance(turn, dict) and set(map(str, turn)) & _TURN_KEYS
        for turns in lists
        for turn in turns
    )


def _header_ok(doc: Document, diags: list[Diagnostic]) -> bool:
    data = doc.data
    version = data.get("apiVersion")
    kind = data.get("kind")
    ok = True
    if version != API_VERSION:
        span = doc.locate(("apiVersion",)) if "apiVersion" in data else doc.span
        what = f"unknown apiVersion {version!r}" if "apiVersion" in data else "missing apiVersion"
        fix: str | None = f"write 'apiVersion: {API_VERSION}'"
        if "apiVersion" not in data and "kind" not in data and _looks_like_script(data):
            fix = (
                "this looks like a scripted model's turns, not a spec: keep it outside the "
                "spec folder, or give it another extension (every *.yaml here is read as specs)"
            )
        diags.append(error("K2001", what, span, fix))
        ok = False
    if not isinstance(kind, str) or kind not in KINDS:
        if "kind" in data:
            message = f"unknown kind {kind!r}"
            hint = did_you_mean(str(kind), KINDS)
            span = doc.locate(("kind",))
        else:
            message, hint, span = (
                "missing kind",
                "add 'kind: Agent' (or Tool, MemoryPolicy, Crew, Model)",
                doc.span,
            )
        diags.append(error("K2002", message, span, hint))
        ok = False
    return ok


def _translate(
    exc: ValidationError, doc: Document, text: str, model_cls: type[BaseModel]
) -> Iterator[Diagnostic]:
    kind = model_cls.__name__
    errors = exc.errors(include_url=False)
    for err in errors:
        loc = tuple(err["loc"])
        if err["type"] == "too_short" and _items_failed(loc, errors):
            continue  # the list is empty only because its items were invalid (reported)
        etype = err["type"]
        path, is_key = _data_path(doc.data, loc, leaf=etype in ("missing", "extra_forbidden"))
        where = dotted(path)
        if etype == "extra_forbidden":
            key = str(path[-1])
            allowed = _fields_at(model_cls, loc[:-1])
            yield error(
                "K2003",
                f"unknown key '{key}' in {kind} {dotted(path[:-1]) or 'document'}",
                doc.locate(path, key=True),
                _key_hint(key, allowed),
            )
        elif etype in ("missing", "union_tag_not_found"):
            field = str(loc[-1]) if etype == "missing" else err["ctx"]["discriminator"].strip("'")
            parent = path[:-1] if path and path[-1] == field else path
            yield error(
                "K2005",
                f"missing required field '{field}' in {kind} {dotted(parent) or 'document'}",
                doc.locate(parent, key=True),
                None,
            )
        elif etype in ("kiln_name", "kiln_input_name"):
            yield error("K2006", err["msg"], doc.locate(path, key=is_key), None)
        elif etype == "union_tag_invalid":
            tag = str(err["ctx"]["tag"])
            tags = [t.strip("' ") for t in str(err["ctx"]["expected_tags"]).split(",")]
            yield error(
                "K2004",
                f"{where}.type: unknown type '{tag}'",
                doc.locate((*path, "type")),
                did_you_mean(tag, tags),
            )
        else:
            yield error(
                "K2004",
                f"{where}: {_message(err)}",
                doc.locate(path, key=is_key),
                _hint(err, _written(doc, text, path)),
            )


_MAPPING = "expected a mapping (key: value pairs)"
_PLAIN = {
    "dict_type": _MAPPING,
    "model_type": _MAPPING,
    "model_attributes_type": _MAPPING,
    "tuple_type": "expected a list",
    "list_type": "expected a list",
    "string_type": "expected a string",
    "int_type": "expected an integer",
    "int_parsing": "expected an integer",
    "int_from_float": "expected a whole number",
    "float_type": "expected a number",
    "float_parsing": "expected a number",
    "bool_type": "expected true or false",
    "bool_parsing": "expected true or false",
    "finite_number": "expected a finite number",
}
_ENTRYPOINT_HINT = "write module:function, such as my_tools.search:run"


#: Keys of other frameworks' agent and task files, and where their meaning goes in kiln.
#: Checked before "did you mean": 'output_file' is not a typo of 'output_schema'.
_FOREIGN_KEYS: Final[Mapping[str, str]] = {
    "role": "CrewAI's role, goal and backstory go into spec.instructions, e.g. "
    "'You are <role>. Your goal: <goal>. <backstory>' ('kiln import crewai' converts them)",
    "goal": "CrewAI's role, goal and backstory go into spec.instructions "
    "('kiln import crewai' converts them)",
    "backstory": "CrewAI's role, goal and backstory go into spec.instructions "
    "('kiln import crewai' converts them)",
    "expected_output": "say what the answer must hold in the task's prompt, and its shape "
    "with output_schema (a JSON Schema the answer is checked against)",
    "output_file": "kiln does not write task outputs to files: give the agent the "
    "file_write tool and ask for the file in the prompt, or save the output of "
    "'kiln run --format json'",
    "toolsets": "list tools by name under 'tools'; an MCP server is a Tool spec with "
    "executor: {type: mcp, ...} ('kiln import cagent' converts toolsets)",
    "sub_agents": "list the agents this one may hand work to under 'delegate_to'",
}


def _key_hint(key: str, allowed: list[str]) -> str | None:
    if not allowed:
        return None
    foreign = _FOREIGN_KEYS.get(key)
    if foreign is not None and key not in allowed:
        return foreign
    near = closest(key, allowed)
    if near is not None:
        return f"did you mean '{near}'?"
    return "the keys allowed here are: " + ", ".join(sorted(allowed))


def _items_failed(loc: tuple[Any, ...], errors: list[Any]) -> bool:
    """Whether other errors sit inside the list at ``loc`` (items that were rejected)."""
    return any(len(e["loc"]) > len(loc) and tuple(e["loc"][: len(loc)]) == loc for e in errors)


def _message(err: Any) -> str:
    etype = err["type"]
    ctx = err.get("ctx") or {}
    if etype in _PLAIN:
        msg = _PLAIN[etype]
    elif etype in ("too_short", "too_long"):
        bound = ctx.get("min_length" if etype == "too_short" else "max_length")
        word = "at least" if etype == "too_short" else "at most"
        msg = f"needs {word} {bound} item{'s' * (bound != 1)}"
    elif etype == "string_too_short" and ctx.get("min_length") == 1:
        msg = "must not be empty"
    elif etype == "literal_error":
        msg = f"expected one of {ctx.get('expected', '')}"
    elif etype == "string_pattern_mismatch" and "[A-Za-z_][\\w.]*:" in str(ctx.get("pattern")):
        msg = "expected module:function"
    else:
        msg = str(err["msg"]).removeprefix("Value error, ")
        if msg.startswith("Input should be "):
            rest = msg.removeprefix("Input should be ")
            msg = ("expected " if rest.startswith(("a ", "an ")) else "must be ") + rest
    value = err.get("input")
    if etype != "missing" and not isinstance(value, dict | list | tuple) and "got" not in msg:
        msg += " (got nothing)" if value is None else f" (got {_as_yaml(value)})"
    return msg


def _as_yaml(value: Any) -> str:
    """A value as YAML would print it: ``false``, not Python's ``False``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value)


def _hint(err: Any, written: str) -> str | None:
    value = err.get("input")
    etype = err["type"]
    if isinstance(value, bool) and etype == "string_type":
        if written.lower() in _YAML_BOOLS:
            return f"YAML reads an unquoted {written} as {str(value).lower()}: quote it"
    if isinstance(value, int | float) and etype == "string_type":
        shown = written or str(value)
        return f"YAML reads an unquoted {shown} as a number: quote it, '{shown}'"
    if value is None and etype in _PLAIN:
        return "YAML reads an empty value as null: give it a value, or remove the key"
    if etype == "literal_error":
        options = re.findall(r"'([^']*)'", str((err.get("ctx") or {}).get("expected", "")))
        near = closest(str(value), options)
        return f"did you mean '{near}'?" if near else None
    if etype in ("tuple_type", "list_type") and isinstance(value, str | int | float):
        return f"write a list, even of one item: [{value}]"
    if etype == "string_pattern_mismatch" and "expected module:function" in _message(err):
        return _ENTRYPOINT_HINT
    return None


def _written(doc: Document, text: str, path: DataPath) -> str:
    """The text of a one-line value as it stands in the file."""
    span = doc.locate(path)
    if span.line != span.end_line:
        return ""
    lines = text.splitlines()
    return lines[span.line - 1][span.col - 1 : span.end_col - 1] if span.line <= len(lines) else ""


def _data_path(data: Any, loc: tuple[Any, ...], *, leaf: bool = True) -> tuple[DataPath, bool]:
    """Follow a pydantic error location through the data, skipping union tags.

    Returns the data path and whether the error is about a mapping key (pydantic's
    ``[key]`` marker).
    """
    path: list[str | int] = []
    node = data
    is_key = False
    for part in loc:
        if part == "[key]":
            is_key = True
            break
        if isinstance(node, dict) and isinstance(part, str) and part in node:
            node = node[part]
            path.append(part)
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
            path.append(part)
        elif leaf and isinstance(node, dict) and isinstance(part, str) and part == loc[-1]:
            path.append(part)  # a missing or unknown key: point at it (or its parent)
        # else: a union tag or model name in the location; it has no place in the data
    return tuple(path), is_key


def _unwrap(tp: Any) -> Any:
    while typing.get_origin(tp) is typing.Annotated:
        tp = typing.get_args(tp)[0]
    return tp


def _union_members(tp: Any) -> tuple[Any, ...]:
    origin = typing.get_origin(tp)
    if origin is typing.Union or origin is types.UnionType:
        return tuple(_unwrap(a) for a in typing.get_args(tp) if a is not type(None))
    return (tp,)


def _fields_at(model_cls: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """The keys allowed at ``loc`` (for 'did you mean'), or [] when it is not a model."""
    current: Any = model_cls
    for part in loc:
        current = _step(_unwrap(current), part)
        if current is None:
            return []
    members = [m for m in _union_members(_unwrap(current)) if _is_model(m)]
    if len(members) != 1:
        return []
    return [f.alias or name for name, f in members[0].model_fields.items()]


def _step(tp: Any, part: Any) -> Any:
    members = _union_members(tp)
    for member in members:
        if _is_model(member):
            fields = {f.alias or n: f for n, f in member.model_fields.items()}
            fields.update(member.model_fields)
            if part in fields:
                return fields[part].annotation
            tag = member.model_fields.get("type")
            if tag is not None and typing.get_args(tag.annotation) == (part,):
                return member  # the location names the union member by its tag
        else:
            origin = typing.get_origin(member)
            args = typing.get_args(member)
            if origin is dict and isinstance(part, str):
                return args[1]
            if origin in (tuple, list) and isinstance(part, int):
                return args[0]
    return None


def _is_model(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def _type_name(value: Any) -> str:
    return {
        list: "a list",
        str: "a string",
        int: "a number",
        float: "a number",
        bool: "a boolean",
    }.get(type(value), type(value).__name__)
