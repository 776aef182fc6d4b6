"""HTTP and OpenAPI tools: one request per call, only to allowed hosts, within limits.

A call of an ``http`` tool renders the spec's ``method``, ``url``, ``headers`` and ``body``
templates over ``input``; an ``openapi`` tool's call fills the operation's path, query and
header parameters and its JSON body from ``input``. Then, for both:

- only ``http`` and ``https`` URLs are called, and only on allowed hosts: the tool's
  ``allow_hosts`` patterns (fnmatch) and the run's (``kiln run --allow-host``). An ``http``
  tool with no ``allow_hosts`` may call the host its URL writes out, never a host that a
  template makes; an ``openapi`` tool's default is its base URL's host. Redirects are
  followed (at most 5) only to allowed hosts, and the spec's headers are not sent on to
  another host;
- a host that resolves to a loopback, private, link-local or otherwise non-public address
  is refused unless a pattern names it exactly (no wildcard): ``*`` does not open the
  machine's own network. The address is checked when the connection is made, so a name
  that resolves differently the second time gains nothing;
- ``${env:NAME}`` in the templates is read at call time (a header whose variable is unset
  is left out; so is a header that renders empty). Input never expands ``${env:...}``;
- the response is read up to ``max_response_bytes`` and the whole call, redirects
  included, up to ``timeout_s``.

Failures are :class:`ToolError` s: a timeout, a refused connection, 408, 429, 500, 502,
503 and 504 are retryable (with ``retry_after`` from a ``Retry-After`` header); the box
retries them. Other 4xx and 5xx answers are not, and say the status and the start of the
body.

The result of an ``http`` tool (and of an OpenAPI operation the document gives no JSON
response schema)::

    {"status": 200, "content_type": "application/json", "json": <the parsed body>}
    {"status": 200, "content_type": "text/html; charset=utf-8", "text": "<the body>"}

An OpenAPI operation with a JSON response schema returns the parsed body itself.
"""

from __future__ import annotations

import email.utils
import functools
import ipaddress
import json
import os
import re
import socket
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

import anyio
from jinja2 import Template
from jinja2 import TemplateError as JinjaError

from compiler.secrets import ENV_REF
from compiler.templates import environment
from runtime.idempotency import IDEMPOTENCY_KEY
from runtime.tools.box import ToolError
from specs import Tool
from specs.openapi import OpenApiError, Operation, load_document, operations
from specs.openapi import base_url as document_base_url
from specs.tool import HTTP_METHODS, HttpExecutor, OpenApiExecutor

if TYPE_CHECKING:
    import httpcore
    import httpx

__all__ = ["MAX_REDIRECTS", "HostPolicy", "HttpToolExecutor", "literal_host"]

MAX_REDIRECTS = 5
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_RETRYABLE = frozenset({408, 429, 500, 502, 503, 504})
_EXCERPT = 300
_TEXTUAL = re.compile(
    r"^(text/|application/(json|xml|javascript|x-www-form-urlencoded)|.*\+(json|xml))"
)
_JSON = re.compile(r"^application/(json|[\w.-]+\+json)\s*(;|$)", re.I)


class _Refused(Exception):
    """A connection the network guard will not make (raised inside httpx's call)."""


class _Unresolved(Exception):
    """A host name DNS does not know (raised inside httpx's call)."""

    def __init__(self, message: str, *, temporary: bool) -> None:
        super().__init__(message)
        self.temporary = temporary


@dataclass(frozen=True, slots=True)
class HostPolicy:
    """The hosts one tool may call: fnmatch patterns, compared without case."""

    patterns: tuple[str, ...]

    @classmethod
    def of(cls, *groups: Sequence[str]) -> HostPolicy:
        return cls(tuple(dict.fromkeys(p.strip().lower() for g in groups for p in g if p)))

    def allows(self, host: str) -> bool:
        host = host.lower()
        return any(fnmatchcase(host, p) for p in self.patterns)

    def exact(self, host: str) -> bool:
        """Named without a wildcard: then it may be a private address."""
        host = host.lower()
        return any(p == host and not any(c in p for c in "*?[") for p in self.patterns)


@dataclass(frozen=True, slots=True)
class _Request:
    tool: str
    method: str
    url: str
    headers: dict[str, str]
    content: bytes | None
    policy: HostPolicy
    timeout_s: float
    max_bytes: int


@dataclass(frozen=True, slots=True)
class _Response:
    status: int
    content_type: str
    body: bytes
    encoding: str | None
    retry_after: float | None = None


@dataclass(slots=True)
class _OpenApiTool:
    """An openapi spec's document, read once: its operations and where they are served."""

    base_url: str
    operations: dict[str, Operation] = field(default_factory=dict)


class HttpToolExecutor:
    """Calls ``http`` and ``openapi`` tools (``target``: the operationId to call).

    ``folders`` maps a tool's name to the folder of its spec file (OpenAPI documents are
    found relative to it); ``allow_hosts`` are host patterns the whole run may call, on top
    of each tool's own.
    """

    def __init__(
        self, folders: Mapping[str, Path] | None = None, allow_hosts: Sequence[str] = ()
    ) -> None:
        self.folders = dict(folders or {})
        self.allow_hosts = tuple(allow_hosts)
        self._clients: dict[bool, httpx.AsyncClient] = {}
        self._documents: dict[int, tuple[Tool, _OpenApiTool]] = {}

    async def aclose(self) -> None:
        clients, self._clients = self._clients, {}
        for client in clients.values():
            await client.aclose()

    async def call(
        self, tool: Tool, arguments: Mapping[str, Any], target: str | None = None
    ) -> Any:
        executor = tool.spec.executor
        if isinstance(executor, HttpExecutor):
            response = await self._send(self._http_request(tool, executor, arguments))
            return _result(response)
        if isinstance(executor, OpenApiExecutor):
            loaded = self.document(tool)
            op = _pick(tool.metadata.name, loaded, target)
            response = await self._send(self._openapi_request(tool, loaded, op, arguments))
            if op.output_schema is None:
                return _result(response)
            return _parsed(tool.metadata.name, op, response)
        raise ToolError(f"{executor.type} tools are not HTTP tools")

    # -- building requests ----------------------------------------------------------------

    def _http_request(
        self, tool: Tool, executor: HttpExecutor, arguments: Mapping[str, Any]
    ) -> _Request:
        name = tool.metadata.name
        method = executor.method
        if method not in HTTP_METHODS:
            method = _render(method, arguments, name, "method").strip().upper()
            if method not in HTTP_METHODS:
                raise ToolError(
                    f"{name}: method {method!r} is not one of {', '.join(HTTP_METHODS)}"
                )
        url = _render(executor.url, arguments, name, "url").strip()
        headers = _headers(executor.headers, arguments, name)
        content = None
        if executor.body is not None:
            body = _render(executor.body, arguments, name, "body")
            if body:
                content = body.encode()
                if not any(k.lower() == "content-type" for k in headers):
                    headers["Content-Type"] = _content_type(body)
        own = executor.allow_hosts
        if not own:
            literal = literal_host(executor.url)
            own = (literal,) if literal else ()
        return _Request(
            tool=name,
            method=method,
            url=url,
            headers=headers,
            content=content,
            policy=HostPolicy.of(own, self.allow_hosts),
            timeout_s=executor.timeout_s,
            max_bytes=executor.max_response_bytes,
        )

    def _openapi_request(
        self, tool: Tool, loaded: _OpenApiTool, op: Operation, arguments: Mapping[str, Any]
    ) -> _Request:
        executor = tool.spec.executor
        assert isinstance(executor, OpenApiExecutor)
        name = tool.metadata.name
        path = op.path
        query: list[tuple[str, str]] = []
        headers = _headers(executor.headers, arguments, name)
        for param in op.params:
            if param.name not in arguments or arguments[param.name] is None:
                if param.required:
                    raise ToolError(f"{name}: {op.id} needs the parameter {param.name!r}")
                continue
            value = arguments[param.name]
            if param.location == "path":
                # "." and ".." would climb out of the operation's path once the URL is
                # normalised: encoded, they stay a value
                segment = quote(_scalar(value), safe="").replace(".", "%2E")
                path = path.replace("{" + param.name + "}", segment)
            elif param.location == "query":
                query.extend(_query(param.name, value))
            else:
                headers[param.name] = _scalar(value)
        url = loaded.base_url.rstrip("/") + path
        if query:
            import httpx

            url = str(httpx.URL(url, params=query))
        content = None
        if op.body and "body" in arguments:
            content = json.dumps(arguments["body"], ensure_ascii=False).encode()
            headers["Content-Type"] = "application/json"
        if op.output_schema is not None:
            headers.setdefault("Accept", "application/json")
        own = executor.allow_hosts or (urlsplit(loaded.base_url).hostname or "",)
        return _Request(
            tool=name,
            method=op.method,
            url=url,
            headers=headers,
            content=content,
            policy=HostPolicy.of(own, self.allow_hosts),
            timeout_s=executor.timeout_s,
            max_bytes=executor.max_response_bytes,
        )

    def document(self, tool: Tool) -> _OpenApiTool:
        """The tool's OpenAPI operations, read once per spec (a run calls the document it
        was compiled with; :func:`~specs.openapi.load_document` parses each content once)."""
        loaded = self._documents.get(id(tool))
        if loaded is not None and loaded[0] is tool:
            return loaded[1]
        executor = tool.spec.executor
        assert isinstance(executor, OpenApiExecutor)
        name = tool.metadata.name
        path = self.folders.get(name, Path.cwd()) / executor.document
        try:
            document = load_document(path)
            ops = operations(document, executor.operations)
        except OpenApiError as exc:
            raise ToolError(f"{name}: its OpenAPI document is unusable: {exc}") from None
        base = executor.base_url or document_base_url(document)
        if base is None:
            raise ToolError(
                f"{name}: its OpenAPI document names no absolute server URL; set base_url"
            )
        made = _OpenApiTool(base, {op.id: op for op in ops})
        self._documents[id(tool)] = (tool, made)
        return made

    # -- sending ----------------------------------------------------------------------------

    async def _send(self, request: _Request) -> _Response:
        import httpx

        try:
            url = httpx.URL(request.url)
        except (httpx.InvalidURL, TypeError, ValueError) as exc:
            raise ToolError(f"{request.tool}: {request.url!r} is not a valid URL: {exc}") from None
        method = request.method
        headers, content = dict(request.headers), request.content
        key = IDEMPOTENCY_KEY.get()
        if key is not None and not any(k.lower() == "idempotency-key" for k in headers):
            headers["Idempotency-Key"] = key  # the same on every retry and resume
        try:
            with anyio.fail_after(request.timeout_s):
                for hop in range(MAX_REDIRECTS + 1):
                    self._check(request, url, redirected=hop > 0)
                    client = self._client(request.policy.exact(url.host))
                    sent = client.stream(
                        method, url, headers=headers, content=content, timeout=request.timeout_s
                    )
                    async with sent as response:
                        location = response.headers.get("location")
                        if response.status_code not in _REDIRECTS or location is None:
                            return await _read(request, url, response)
                    target = url.join(location)
                    if url.scheme == "https" and target.scheme != "https":
                        raise _Refused(f"a redirect from https to {target.scheme} ({target.host})")
                    if response.status_code == 303 or (
                        response.status_code in (301, 302) and method == "POST"
                    ):
                        method, content = "GET", None
                        headers = {k: v for k, v in headers.items() if k.lower() != "content-type"}
                    if _origin(target) != _origin(url):
                        # another origin gets neither the spec's headers (credentials, often)
                        # nor the body
                        headers, content = {}, None
                    url = target
        except TimeoutError:
            raise ToolError(
                f"{request.tool}: {_shown(method, url)} took longer than its "
                f"{request.timeout_s:g} s",
                retryable=True,
            ) from None
        except (_Refused, _Unresolved, httpx.HTTPError) as exc:
            raise _failure(request.tool, method, url, exc) from None
        raise ToolError(
            f"{request.tool}: {_shown(method, url)} redirected more than {MAX_REDIRECTS} times"
        )

    def _check(self, request: _Request, url: httpx.URL, *, redirected: bool) -> None:
        if url.scheme not in ("http", "https"):
            raise ToolError(
                f"{request.tool}: only http and https URLs are called, not {url.scheme!r} "
                f"({_shown(request.method, url)})"
            )
        host = url.host
        if not host:
            raise ToolError(f"{request.tool}: the URL {request.url!r} names no host")
        if not request.policy.allows(host):
            allowed = ", ".join(request.policy.patterns) or "none"
            what = f"was redirected to host {host!r}, which" if redirected else f"host {host!r}"
            raise ToolError(
                f"{request.tool}: {what} is not allowed (allowed: {allowed}); add it to the "
                "tool's allow_hosts, or allow it for the run (kiln run --allow-host)"
            )

    def _client(self, private_ok: bool) -> httpx.AsyncClient:
        """One client for hosts named exactly (any address) and one that connects only to
        public addresses: their connections are never shared."""
        client = self._clients.get(private_ok)
        if client is None:
            import httpx

            transport = _transport(private_ok)
            client = httpx.AsyncClient(transport=transport, trust_env=False, follow_redirects=False)
            self._clients[private_ok] = client
        return client


# -- helpers: requests ----------------------------------------------------------------------


def literal_host(url: str) -> str | None:
    """The host a URL template writes out, ``None`` when a template (or ``${env:...}``)
    makes it."""
    head = re.split(r"\{|\$\{", url, maxsplit=1)[0]
    scheme, sep, rest = head.partition("://")
    if not sep or (head != url and not any(c in rest for c in "/?#")):
        return None
    try:
        return urlsplit(head).hostname
    except ValueError:
        return None


@functools.lru_cache(maxsize=1024)
def _template(source: str) -> tuple[Template, tuple[str, ...]]:
    """A template with its ``${env:NAME}`` references read from a variable of its own, so
    that nothing in ``input`` can expand one."""
    names = tuple(ENV_REF.findall(source))
    text = ENV_REF.sub(lambda m: f"{{{{ kiln_env_[{m.group(1)!r}] }}}}", source)
    return environment().from_string(text), names


def _render(source: str, arguments: Mapping[str, Any], tool: str, what: str) -> str:
    rendered = _render_or_none(source, arguments, tool, what)
    if rendered is None:
        missing = [n for n in ENV_REF.findall(source) if n not in os.environ]
        raise ToolError(
            f"{tool}: its {what} reads the environment variable {missing[0]}, which is not set"
        )
    return rendered


def _render_or_none(source: str, arguments: Mapping[str, Any], tool: str, what: str) -> str | None:
    """The rendered template, or ``None`` when a variable it reads is not set."""
    try:
        template, names = _template(source)
    except JinjaError as exc:  # the compiler reports these first (K4003)
        raise ToolError(f"{tool}: its {what} template does not parse: {exc}") from None
    if any(n not in os.environ for n in names):
        return None
    try:
        from runtime.masking import remember

        env = {n: os.environ[n] for n in names}
        for name, value in env.items():
            remember(name, value)
        return template.render(input=arguments, kiln_env_=env)
    except JinjaError as exc:
        raise ToolError(f"{tool}: cannot render its {what}: {exc}") from None


def _headers(
    templates: Mapping[str, str], arguments: Mapping[str, Any], tool: str
) -> dict[str, str]:
    headers: dict[str, str] = {}
    for key, source in templates.items():
        value = _render_or_none(source, arguments, tool, f"header {key}")
        if not value:
            continue
        value = value.strip()
        if "\n" in value or "\r" in value:
            raise ToolError(f"{tool}: header {key} would hold a line break")
        headers[key] = value
    return headers


def _content_type(body: str) -> str:
    try:
        json.loads(body)
    except ValueError:
        return "text/plain; charset=utf-8"
    return "application/json"


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return ",".join(map(_scalar, value))
    if isinstance(value, dict):
        return ",".join(f"{k},{_scalar(v)}" for k, v in value.items())
    return str(value)


def _query(name: str, value: Any) -> list[tuple[str, str]]:
    """Form style, exploded (OpenAPI's default): arrays repeat the name, objects spread."""
    if isinstance(value, list | tuple):
        return [(name, _scalar(v)) for v in value]
    if isinstance(value, dict):
        return [(str(k), _scalar(v)) for k, v in value.items()]
    return [(name, _scalar(value))]


def _pick(name: str, loaded: _OpenApiTool, target: str | None) -> Operation:
    if target is None:
        if len(loaded.operations) == 1:
            return next(iter(loaded.operations.values()))
        raise ToolError(f"{name} imports {len(loaded.operations)} operations: name one")
    op = loaded.operations.get(target)
    if op is None:
        known = ", ".join(loaded.operations) or "none"
        raise ToolError(f"{name} has no operation {target!r} (it has: {known})")
    return op


def _shown(method: str, url: httpx.URL | None) -> str:
    """The request as messages show it: without query or credentials, which may hold
    secrets read from the environment."""
    if url is None:
        return method
    return f"{method} {url.scheme}://{url.netloc.decode(errors='replace').rpartition('@')[2]}{url.path}"


# -- helpers: responses ---------------------------------------------------------------------


async def _read(request: _Request, url: httpx.URL, response: httpx.Response) -> _Response:
    limit = request.max_bytes
    declared = response.headers.get("content-length")
    too_big = ToolError(
        f"{request.tool}: the response of {_shown(request.method, url)} is larger than "
        f"{limit:,} bytes (max_response_bytes)"
    )
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_big
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > limit:
            raise too_big
        chunks.append(chunk)
    body = b"".join(chunks)
    status = response.status_code
    content_type = response.headers.get("content-type", "")
    if status >= 400:
        excerpt = " ".join(body[: _EXCERPT * 4].decode(errors="replace").split())[:_EXCERPT]
        reason = response.reason_phrase or ""
        raise ToolError(
            f"{request.tool}: {_shown(request.method, url)} answered {status} {reason}".rstrip()
            + (f": {excerpt}" if excerpt else ""),
            retryable=status in _RETRYABLE,
            retry_after=_retry_after(response.headers.get("retry-after")),
        )
    return _Response(status, content_type, body, response.charset_encoding)


def _retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header: a number, or an HTTP date."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - time.time(), 0.0)


def _result(response: _Response) -> dict[str, Any]:
    out: dict[str, Any] = {"status": response.status, "content_type": response.content_type}
    kind = response.content_type.split(";", 1)[0].strip().lower()
    if _JSON.match(response.content_type) and response.body.strip():
        try:
            out["json"] = json.loads(response.body)
            return out
        except ValueError:
            pass  # it says JSON, and is not: the model gets the text
    if not kind or _TEXTUAL.match(kind):
        try:
            out["text"] = response.body.decode(response.encoding or "utf-8", errors="replace")
        except LookupError:  # a charset Python does not know
            out["text"] = response.body.decode("utf-8", errors="replace")
    else:
        out["text"] = f"({len(response.body):,} bytes of {kind}, not shown)"
    return out


def _parsed(tool: str, op: Operation, response: _Response) -> Any:
    try:
        return json.loads(response.body)
    except ValueError:
        raise ToolError(
            f"{tool}: {op.id} answered {response.status} with "
            f"{response.content_type or 'no content type'}, not the JSON its document promises"
        ) from None


def _failure(tool: str, method: str, url: httpx.URL | None, exc: Exception) -> ToolError:
    import httpx

    shown = _shown(method, url)
    if isinstance(exc, _Refused):
        return ToolError(f"{tool}: {shown}: {exc}")
    if isinstance(exc, _Unresolved):
        return ToolError(f"{tool}: {shown}: {exc}", safe_to_retry=exc.temporary)
    if isinstance(exc, httpx.TimeoutException):
        return ToolError(f"{tool}: {shown} timed out", retryable=True)
    if isinstance(exc, httpx.ConnectError):
        return ToolError(f"{tool}: {shown}: cannot connect ({exc})", safe_to_retry=True)
    if isinstance(exc, httpx.TransportError):
        return ToolError(f"{tool}: {shown}: the connection failed ({exc})", retryable=True)
    return ToolError(f"{tool}: {shown}: {type(exc).__name__}: {exc}")


# -- the network guard ----------------------------------------------------------------------


def _transport(private_ok: bool) -> httpx.AsyncHTTPTransport:
    import httpcore
    import httpx

    transport = httpx.AsyncHTTPTransport(trust_env=False, retries=0)
    if not private_ok:
        # httpx takes no network backend: its pool is rebuilt with one that checks the
        # address of every connection it opens (a test pins this: a wildcard pattern does
        # not reach 127.0.0.1)
        transport._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(),
            max_connections=100,
            max_keepalive_connections=20,
            keepalive_expiry=5.0,
            network_backend=_public_only()(),
        )
    return transport


def _public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Whether an address is on the public internet (not loopback, private, link-local,
    shared, reserved or multicast)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


@functools.cache
def _public_only() -> type[httpcore.AsyncNetworkBackend]:
    """The network backend that connects only to public addresses (a class made on first
    use: httpcore is imported only when a tool calls out)."""
    import httpcore

    class PublicOnly(httpcore.AsyncNetworkBackend):
        def __init__(self) -> None:
            self.inner = httpcore.AnyIOBackend()

        async def connect_tcp(
            self,
            host: str,
            port: int,
            timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
            local_address: str | None = None,
            socket_options: Iterable[Any] | None = None,
        ) -> httpcore.AsyncNetworkStream:
            addresses = await _resolve(host, port)
            for address in addresses:
                if not _public(address):
                    raise _Refused(
                        f"{host} resolves to {address}, a {_kind(address)} address; only a "
                        "host allowed by its exact name or address (no wildcard) may be one"
                    )
            failure: Exception | None = None
            for address in addresses:  # connect to the address checked, not a new lookup
                try:
                    return await self.inner.connect_tcp(
                        str(address), port, timeout, local_address, socket_options
                    )
                except httpcore.ConnectError as exc:
                    failure = exc
            assert failure is not None
            raise failure

        async def connect_unix_socket(
            self,
            path: str,
            timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
            socket_options: Any = None,
        ) -> httpcore.AsyncNetworkStream:
            raise _Refused("unix sockets are not called")

        async def sleep(self, seconds: float) -> None:
            await self.inner.sleep(seconds)

    return PublicOnly


async def _resolve(host: str, port: int) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    try:
        infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        temporary = exc.errno == socket.EAI_AGAIN
        raise _Unresolved(f"cannot resolve {host} ({exc.strerror})", temporary=temporary) from None
    found = []
    for info in infos:
        text = str(info[4][0]).split("%", 1)[0]  # an IPv6 scope id is not part of the address
        found.append(ipaddress.ip_address(text))
    if not found:
        raise _Unresolved(f"cannot resolve {host}", temporary=False)
    return list(dict.fromkeys(found))


def _kind(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    for kind in ("loopback", "link_local", "private", "multicast", "reserved", "unspecified"):
        if getattr(address, f"is_{kind}"):
            return kind.replace("_", "-")
    return "non-public"


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    return (url.scheme, url.host, url.port)
