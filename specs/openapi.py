"""OpenAPI 3.0 and 3.1 documents read as tools: one :class:`Operation` per operation.

Pure data work, shared by the compiler (which checks a tool's document) and the runtime
(which calls the operations): no network, no compiler or runtime imports.

An operation's tool input is one JSON Schema object: its path, query and header parameters
as properties (each with its own schema) and its JSON request body under ``body``. Local
``$ref`` s (``#/components/...``) are inlined; remote references and reference cycles are
refused with an :class:`OpenApiError` that names where they are written. OpenAPI 3.0's
schema dialect is brought to JSON Schema 2020-12 (3.1's own): ``nullable`` becomes a
``"null"`` type, boolean ``exclusiveMinimum``/``exclusiveMaximum`` become numbers.
"""

from __future__ import annotations

import difflib
import functools
import json
import re
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal
from urllib.parse import unquote

from specs.source import DataPath, Limits, Span, load_text
from specs.source.paths import outside, path_problem, read_regular

__all__ = [
    "MAX_DOCUMENT_BYTES",
    "MAX_SCHEMA_NODES",
    "OpenApiDocument",
    "OpenApiError",
    "Operation",
    "Param",
    "base_url",
    "derived_id",
    "load_document",
    "operation_ids",
    "operations",
    "survey",
]

#: Documents larger than this are refused (large public APIs are a few MiB).
MAX_DOCUMENT_BYTES: Final = 32 * 1024 * 1024
#: Nodes of one operation's input or output schema once its references are inlined: a
#: document whose references fan out (A uses B twice, B uses C twice, ...) stops here.
MAX_SCHEMA_NODES: Final = 50_000

_LIMITS = Limits(max_file_bytes=MAX_DOCUMENT_BYTES, max_documents=1, max_nodes=5_000_000)
_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
#: headers an OpenAPI parameter may not define (the specification says to ignore them)
_IGNORED_HEADERS = frozenset({"accept", "content-type", "authorization"})
#: keywords of OpenAPI's schema dialect that are not JSON Schema: dropped
_OPENAPI_ONLY = frozenset({"nullable", "discriminator", "xml", "externalDocs", "example"})
#: JSON Schema keywords whose value is a schema, a list of schemas or a map of schemas
_ONE = frozenset(
    {
        "items",
        "additionalProperties",
        "not",
        "contains",
        "if",
        "then",
        "else",
        "propertyNames",
        "unevaluatedItems",
        "unevaluatedProperties",
        "additionalItems",
        "contentSchema",
    }
)
_MANY = frozenset({"allOf", "anyOf", "oneOf", "prefixItems"})
_MAP = frozenset({"properties", "patternProperties", "dependentSchemas", "$defs", "definitions"})

Location = Literal["path", "query", "header"]
_LOCATIONS: Final[dict[str, Location]] = {"path": "path", "query": "query", "header": "header"}


class OpenApiError(Exception):
    """A document that cannot be read, or an operation that cannot be made a tool.

    ``path``, ``line`` and ``col`` say where in the document, when known; ``operation``
    names the operation it is about, if any.
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        line: int | None = None,
        col: int | None = None,
        operation: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.path = path
        self.line = line
        self.col = col
        self.operation = operation

    @property
    def where(self) -> str:
        """``file:line:col`` (as much of it as is known), or ``""``."""
        if self.path is None:
            return ""
        if self.line is None:
            return self.path
        return f"{self.path}:{self.line}:{self.col or 1}"

    def __str__(self) -> str:
        return f"{self.where}: {self.message}" if self.where else self.message


class OpenApiDocument(dict[str, Any]):
    """A loaded document: its data, and where each node is written (YAML documents only;
    JSON documents keep no locations)."""

    def __init__(
        self, data: Mapping[str, Any], path: str, spans: Mapping[DataPath, Span] | None = None
    ) -> None:
        super().__init__(data)
        self.path = path
        self.spans: Mapping[DataPath, Span] = spans or {}

    def error(self, message: str, at: DataPath = (), operation: str | None = None) -> OpenApiError:
        """An error about the node at ``at`` (or its nearest located ancestor)."""
        probe = tuple(at)
        while probe and probe not in self.spans:
            probe = probe[:-1]
        span = self.spans.get(probe)
        return OpenApiError(
            message,
            path=self.path,
            line=span.line if span else None,
            col=span.col if span else None,
            operation=operation,
        )


@dataclass(frozen=True, slots=True)
class Param:
    """A parameter of an operation: where it goes in the request."""

    name: str
    location: Location
    required: bool


@dataclass(frozen=True, slots=True)
class Operation:
    """One operation of a document, as a tool.

    ``id`` is the operationId, or ``<method>_<path words>`` when the document gives none.
    ``input_schema`` holds ``params`` by name and the JSON body under ``body``.
    ``output_schema`` is the JSON schema of the first success response (200, 201, ...)
    that has one, else ``None``.
    """

    id: str
    method: str
    path: str
    description: str
    input_schema: dict[str, Any]
    params: tuple[Param, ...]
    body: bool
    body_required: bool
    output_schema: dict[str, Any] | None


# -- loading -------------------------------------------------------------------------------------


def load_document(path: str | Path) -> OpenApiDocument:
    """Read a JSON or YAML OpenAPI 3 document (safely: no tags, bounded size and aliases).

    A document is parsed once per content: the compiler's checks and the registry all ask
    for it, and a large one takes a second to parse. Treat the result as read-only."""
    problem = path_problem(str(path))
    if problem is not None:
        raise OpenApiError(f"not a usable path: {problem}", path=repr(str(path))[1:-1][:200])
    root = outside(Path(path))
    if root is not None:
        raise OpenApiError(
            f"outside the folder being compiled ({root}): only files in it may be read",
            path=str(path),
        )
    try:
        stat = Path(path).stat()
    except OSError:
        return _load(str(path), -1, -1)  # says why, uncached
    return _load(str(path), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=32)
def _load(where: str, mtime_ns: int, size_: int) -> OpenApiDocument:
    path = Path(where)
    try:
        size = Path(path).stat().st_size
        if size > MAX_DOCUMENT_BYTES:
            raise OpenApiError(
                f"the document is {size:,} bytes, more than the limit of {MAX_DOCUMENT_BYTES:,}",
                path=where,
            )
        raw = read_regular(path, MAX_DOCUMENT_BYTES)
    except FileNotFoundError:
        raise OpenApiError("no such file", path=where) from None
    except OSError as exc:
        raise OpenApiError(f"cannot read it: {exc.strerror or exc}", path=where) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise OpenApiError(f"not UTF-8 text (byte {exc.start})", path=where) from None
    if Path(path).suffix.lower() == ".json" or text.lstrip().startswith("{"):
        document = _load_json(text, where)
    else:
        document = _load_yaml(text, where)
    _check_version(document)
    return document


def _load_json(text: str, where: str) -> OpenApiDocument:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise OpenApiError(
            f"invalid JSON: {exc.msg}", path=where, line=exc.lineno, col=exc.colno
        ) from None
    except RecursionError:
        raise OpenApiError("the JSON nests too deeply", path=where) from None
    if not isinstance(data, dict):
        raise OpenApiError("the document is not a JSON object", path=where, line=1, col=1)
    return OpenApiDocument(data, where)


def _load_yaml(text: str, where: str) -> OpenApiDocument:
    documents, issues = load_text(text, where, _LIMITS)
    if issues:
        issue = issues[0]
        raise OpenApiError(issue.message, path=where, line=issue.span.line, col=issue.span.col)
    if not documents:
        raise OpenApiError("the document is empty", path=where)
    doc = documents[0]
    if not isinstance(doc.data, dict):
        raise OpenApiError("the document is not a mapping", path=where, line=1, col=1)
    return OpenApiDocument(doc.data, where, doc.spans)


def _check_version(document: OpenApiDocument) -> None:
    version = document.get("openapi")
    if version is None and "swagger" in document:
        raise document.error(
            f"this is a Swagger {document['swagger']} document; only OpenAPI 3.0 and 3.1 are "
            "read (convert it, e.g. with swagger2openapi)",
            ("swagger",),
        )
    if not isinstance(version, str) or not re.match(r"3\.[01]\.", version + "."):
        raise document.error(
            f"'openapi: {version}' is not an OpenAPI 3.0 or 3.1 version"
            if version is not None
            else "not an OpenAPI document: it has no 'openapi' field",
            ("openapi",),
        )
    if not isinstance(document.get("paths", {}), dict):
        raise document.error("'paths' is not a mapping", ("paths",))


def base_url(document: Mapping[str, Any]) -> str | None:
    """The URL of the document's first server, with its variables at their defaults;
    ``None`` when there is none or it is relative (a document read from a file has no
    URL to resolve it against)."""
    servers = document.get("servers")
    if not isinstance(servers, list) or not servers or not isinstance(servers[0], dict):
        return None
    url = servers[0].get("url")
    if not isinstance(url, str):
        return None
    variables = servers[0].get("variables")
    if isinstance(variables, dict):
        for name, var in variables.items():
            if isinstance(var, dict) and "default" in var:
                url = url.replace("{" + str(name) + "}", str(var["default"]))
    if not re.match(r"https?://[^/{}]", url):
        return None
    return url


# -- operations ----------------------------------------------------------------------------------


def operation_ids(document: Mapping[str, Any]) -> list[str]:
    """The id of every operation, in document order (cheap: no schema is read)."""
    return [op_id for op_id, _, _ in _each(document)]


def operations(document: Mapping[str, Any], only: Collection[str] = ()) -> list[Operation]:
    """The operations named in ``only`` (all of them when empty), in document order.

    Raises :class:`OpenApiError` for the first that cannot be made a tool, or for a name
    in ``only`` that the document does not have."""
    found, problems = survey(document, only)
    if problems:
        raise problems[0]
    return found


def survey(
    document: Mapping[str, Any], only: Collection[str] = ()
) -> tuple[list[Operation], list[OpenApiError]]:
    """Like :func:`operations`, but every problem is returned instead of the first raised."""
    doc = document if isinstance(document, OpenApiDocument) else OpenApiDocument(document, "")
    found: list[Operation] = []
    problems: list[OpenApiError] = []
    seen: dict[str, DataPath] = {}
    for op_id, (path, method), at in _each(doc):
        if only and op_id not in only:
            continue
        if op_id in seen:
            problems.append(
                doc.error(f"two operations are named '{op_id}'", (*at, "operationId"), op_id)
            )
            continue
        seen[op_id] = at
        try:
            found.append(_Reader(doc, op_id).operation(path, method))
        except OpenApiError as exc:
            problems.append(exc)
        except RecursionError:
            problems.append(doc.error(f"operation '{op_id}': its schemas nest too deeply", at))
    for name in only:
        if name not in seen:
            hint = difflib.get_close_matches(name, operation_ids(doc), n=1)
            more = f" (did you mean '{hint[0]}'?)" if hint else ""
            problems.append(doc.error(f"the document has no operation '{name}'{more}"))
    return found, problems


def _each(document: Mapping[str, Any]) -> Iterator[tuple[str, tuple[str, str], DataPath]]:
    paths = document.get("paths")
    if not isinstance(paths, dict):
        return
    for path, item in paths.items():
        if not isinstance(item, dict):
            continue
        for method in _METHODS:
            op = item.get(method)
            if not isinstance(op, dict):
                continue
            op_id = op.get("operationId")
            if not isinstance(op_id, str) or not op_id.strip():
                op_id = derived_id(method, str(path))
            yield op_id, (str(path), method), ("paths", path, method)


def derived_id(method: str, path: str) -> str:
    """The name of an operation without an operationId: ``get /pets/{id}`` → ``get_pets_id``."""
    words = re.findall(r"[A-Za-z0-9]+", path)
    return "_".join([method.lower(), *words]) if words else f"{method.lower()}_root"


class _Reader:
    """Builds one operation, following references with a budget of nodes."""

    def __init__(self, doc: OpenApiDocument, op_id: str) -> None:
        self.doc = doc
        self.op_id = op_id
        self.nodes = 0

    def error(self, message: str, at: DataPath) -> OpenApiError:
        return self.doc.error(f"operation '{self.op_id}': {message}", at, self.op_id)

    def operation(self, path: str, method: str) -> Operation:
        item_at: DataPath = ("paths", path)
        item, item_at = self.deref(self.doc["paths"][path], item_at)
        op_at: DataPath = (*item_at, method)
        op = item[method]
        params, properties, required = self.parameters(item, item_at, op, op_at, path)
        body, body_required = False, False
        if "requestBody" in op:
            schema, body_required = self.request_body(op["requestBody"], (*op_at, "requestBody"))
            if schema is not None:
                body = True
                if "body" in properties:
                    raise self.error(
                        "a parameter is named 'body', which is where the request body goes",
                        (*op_at, "parameters"),
                    )
                properties["body"] = schema
                if body_required:
                    required.append("body")
        input_schema: dict[str, Any] = {
            "type": "object",
            "properties": properties,
            "additionalProperties": False,
        }
        if required:
            input_schema["required"] = required
        text = [op.get("summary"), op.get("description")]
        description = "\n\n".join(t.strip() for t in text if isinstance(t, str) and t.strip())
        return Operation(
            id=self.op_id,
            method=method.upper(),
            path=path,
            description=description or f"{method.upper()} {path}",
            input_schema=input_schema,
            params=tuple(params),
            body=body,
            body_required=body_required,
            output_schema=self.output(op.get("responses"), (*op_at, "responses")),
        )

    def parameters(
        self,
        item: dict[str, Any],
        item_at: DataPath,
        op: dict[str, Any],
        op_at: DataPath,
        path: str,
    ) -> tuple[list[Param], dict[str, Any], list[str]]:
        # operation parameters override the path item's of the same name and place
        chosen: dict[tuple[str, str], tuple[dict[str, Any], DataPath]] = {}
        for owner, at in ((item, item_at), (op, op_at)):
            listed = owner.get("parameters", [])
            if not isinstance(listed, list):
                raise self.error("'parameters' is not a list", (*at, "parameters"))
            for i, raw in enumerate(listed):
                param, param_at = self.deref(raw, (*at, "parameters", i))
                name, where = param.get("name"), param.get("in")
                if not isinstance(name, str) or where not in ("path", "query", "header", "cookie"):
                    raise self.error("a parameter needs a 'name' and an 'in'", param_at)
                chosen[(name, where)] = (param, param_at)
        params: list[Param] = []
        properties: dict[str, Any] = {}
        required: list[str] = []
        folded: dict[str, str] = {}
        for (name, where), (param, at) in chosen.items():
            needed = where == "path" or param.get("required") is True
            if where == "cookie" or (where == "header" and name.lower() in _IGNORED_HEADERS):
                if needed and where == "cookie":
                    raise self.error(f"cookie parameter '{name}' is required: not supported", at)
                continue
            key = name.lower() if where == "header" else name
            if key in folded:
                raise self.error(
                    f"parameter '{name}' ({where}) has the name of another ({folded[key]}): "
                    "both cannot be inputs of one tool",
                    at,
                )
            folded[key] = where
            properties[name] = self.param_schema(param, at)
            params.append(Param(name, _LOCATIONS[where], needed))
            if needed:
                required.append(name)
        for name in re.findall(r"\{([^{}]+)\}", path):
            if (name, "path") not in chosen:
                raise self.error(f"path parameter '{{{name}}}' is not declared", item_at)
        return params, properties, required

    def param_schema(self, param: dict[str, Any], at: DataPath) -> Any:
        if "schema" in param:
            schema = self.schema(param["schema"], (*at, "schema"), request=True)
        elif isinstance(param.get("content"), dict) and param["content"]:
            media, node = next(iter(param["content"].items()))
            schema = self.schema(
                node.get("schema", {}) if isinstance(node, dict) else {},
                (*at, "content", media, "schema"),
                request=True,
            )
        else:
            schema = {}
        description = param.get("description")
        if isinstance(description, str) and isinstance(schema, dict):
            schema = {"description": description.strip(), **schema}
        return schema

    def request_body(self, raw: Any, at: DataPath) -> tuple[Any, bool]:
        body, at = self.deref(raw, at)
        required = body.get("required") is True
        content = body.get("content")
        if not isinstance(content, dict):
            raise self.error("the request body has no 'content'", at)
        for media, entry in content.items():
            if _is_json(str(media)) and isinstance(entry, dict):
                where = (*at, "content", media, "schema")
                schema = self.schema(entry.get("schema", {}), where, True)
                description = body.get("description")
                if isinstance(description, str) and isinstance(schema, dict):
                    schema = {"description": description.strip(), **schema}
                return schema, required
        if required:
            kinds = ", ".join(map(str, content)) or "none"
            raise self.error(f"the request body must be JSON, not {kinds}: not supported", at)
        return None, False

    def output(self, responses: Any, at: DataPath) -> dict[str, Any] | None:
        if not isinstance(responses, dict):
            return None
        codes = sorted(str(c) for c in responses if re.fullmatch(r"2\d\d", str(c)))
        for code in [*codes, *(c for c in responses if str(c).upper() == "2XX")]:
            response, response_at = self.deref(responses[code], (*at, code))
            content = response.get("content")
            if not isinstance(content, dict):
                continue
            for media, entry in content.items():
                if _is_json(str(media)) and isinstance(entry, dict) and "schema" in entry:
                    schema = self.schema(
                        entry["schema"], (*response_at, "content", media, "schema"), False
                    )
                    return schema if isinstance(schema, dict) else None
        return None

    # -- references and schemas ------------------------------------------------------------

    def deref(self, node: Any, at: DataPath) -> tuple[dict[str, Any], DataPath]:
        """An object that may be a ``$ref`` to one, followed to its end."""
        chain: list[str] = []
        while isinstance(node, dict) and "$ref" in node:
            ref = node["$ref"]
            if ref in chain:
                raise self.error("$ref cycle: " + " → ".join([*chain, ref]), at)
            chain.append(ref)
            node, at = self.lookup(ref, at)
        if not isinstance(node, dict):
            raise self.error("expected a mapping here", at)
        return node, at

    def lookup(self, ref: Any, at: DataPath) -> tuple[Any, DataPath]:
        if not isinstance(ref, str) or not ref.startswith("#/"):
            raise self.error(
                f"$ref '{ref}' points outside the document: only local references "
                "('#/components/...') are followed",
                (*at, "$ref"),
            )
        node: Any = self.doc
        target: list[str | int] = []
        for raw in ref[2:].split("/"):
            part = _unescape(raw)
            if isinstance(node, dict) and part in node:
                node = node[part]
                target.append(part)
            elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
                target.append(int(part))
            else:
                raise self.error(f"$ref '{ref}' points to nothing in the document", (*at, "$ref"))
        return node, tuple(target)

    def schema(self, node: Any, at: DataPath, request: bool, stack: tuple[str, ...] = ()) -> Any:
        """``node`` as a JSON Schema 2020-12 schema with its references inlined."""
        self.nodes += 1
        if self.nodes > MAX_SCHEMA_NODES:
            raise self.error(
                f"its schemas hold more than {MAX_SCHEMA_NODES:,} nodes once their $refs are "
                "inlined",
                at,
            )
        if isinstance(node, bool):
            return node
        if not isinstance(node, dict):
            raise self.error("a schema must be a mapping", at)
        if "$ref" in node:
            return self.reference(node, at, request, stack)
        out = {
            key: self.keyword(key, value, at, request, stack)
            for key, value in node.items()
            if key not in _OPENAPI_ONLY and not (isinstance(key, str) and key.startswith("x-"))
        }
        if "example" in node and "examples" not in node:
            out["examples"] = [node["example"]]
        _exclusive(out)
        if node.get("nullable") is True:
            out = _nullable(out)
        if request:
            out = _without_read_only(out)
        return out

    def reference(
        self, node: dict[str, Any], at: DataPath, request: bool, stack: tuple[str, ...]
    ) -> Any:
        ref = node["$ref"]
        if ref in stack:
            cycle = " → ".join([*stack[stack.index(ref) :], ref])
            raise self.error(
                f"the schema refers to itself ({cycle}): recursive schemas are not "
                "supported as tool inputs or outputs",
                (*at, "$ref"),
            )
        target, target_at = self.lookup(ref, at)
        resolved = self.schema(target, target_at, request, (*stack, ref))
        extra = {k: v for k, v in node.items() if k != "$ref"}
        if not extra:
            return resolved
        merged = self.schema(extra, at, request, stack)
        if isinstance(resolved, dict) and not set(merged) & set(resolved):
            return {**resolved, **merged}
        return {"allOf": [resolved], **merged}

    def keyword(
        self, key: str, value: Any, at: DataPath, request: bool, stack: tuple[str, ...]
    ) -> Any:
        """The value of one keyword of a schema, its subschemas converted."""
        if key in _ONE and isinstance(value, dict | bool):
            return self.schema(value, (*at, key), request, stack)
        if key in _MANY and isinstance(value, list):
            return [self.schema(v, (*at, key, i), request, stack) for i, v in enumerate(value)]
        if key in _MAP and isinstance(value, dict):
            return {k: self.schema(v, (*at, key, k), request, stack) for k, v in value.items()}
        return value


def _is_json(media: str) -> bool:
    kind = media.split(";", 1)[0].strip().lower()
    return kind == "application/json" or kind.endswith("+json")


def _unescape(part: str) -> str:
    return unquote(part).replace("~1", "/").replace("~0", "~")


def _exclusive(schema: dict[str, Any]) -> None:
    """OpenAPI 3.0's boolean ``exclusiveMinimum: true`` beside ``minimum`` → 2020-12."""
    for bound, flag in (("minimum", "exclusiveMinimum"), ("maximum", "exclusiveMaximum")):
        if isinstance(schema.get(flag), bool):
            if schema.pop(flag) and bound in schema:
                schema[flag] = schema.pop(bound)


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    kind = schema.get("type")
    if isinstance(kind, str):
        schema = {**schema, "type": [kind, "null"]}
    elif isinstance(kind, list):
        schema = {**schema, "type": [*kind, *(["null"] if "null" not in kind else [])]}
    else:
        return {"anyOf": [schema, {"type": "null"}]}
    if isinstance(schema.get("enum"), list) and None not in schema["enum"]:
        schema["enum"] = [*schema["enum"], None]
    return schema


def _without_read_only(schema: dict[str, Any]) -> dict[str, Any]:
    """Properties marked ``readOnly`` are the server's to set: not inputs."""
    properties = schema.get("properties")
    if not isinstance(properties, dict):
        return schema
    dropped = {
        k for k, v in properties.items() if isinstance(v, dict) and v.get("readOnly") is True
    }
    if not dropped:
        return schema
    out = {**schema, "properties": {k: v for k, v in properties.items() if k not in dropped}}
    if isinstance(schema.get("required"), list):
        out["required"] = [r for r in schema["required"] if r not in dropped]
        if not out["required"]:
            del out["required"]
    return out
