"""The HTTP API of ``kiln serve``: a Starlette application over one :class:`Engine`.

Every route but ``/healthz`` and ``/readyz`` needs a key (``Authorization: Bearer``; see
runtime/server/keys.py) unless the server was started with ``--no-auth`` (loopback
only). A key's tenant owns the runs and approvals it makes: another tenant's are ``404``.
Errors are JSON, ``{"error": {"code", "message"}}``, never a traceback.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    JSONResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Route

from runtime.engine import Engine
from runtime.events import Event
from runtime.memory.records import DEFAULT_TENANT
from runtime.otel import Tracing
from runtime.run import RunSetupError
from runtime.server.deploy import Deployer, DeployError
from runtime.server.keys import Key, KeyStore
from runtime.server.metrics import Metrics
from runtime.server.runs import LiveRuns, TokenBucket
from runtime.trace import ApprovalRow, RunRow, TraceError, TraceStore

__all__ = ["Limits", "Server", "create_app"]

log = logging.getLogger("kiln.server")

#: the tenant of a server without keys (``--no-auth``)
LOCAL = Key(id="local", tenant="local", scopes=frozenset({"admin"}), name=None, created=0.0)

#: kiln's event types as the SSE stream names them where they differ (agent targets)
_SSE_NAMES = {"run.start": "agent.start", "run.complete": "agent.complete"}
_CREW_SSE_NAMES = {"run.start": "crew.start", "run.complete": "crew.complete"}
_TERMINAL = {"succeeded", "failed", "cancelled", "limit_exceeded", "loop_detected"}


@dataclass(frozen=True, slots=True)
class Limits:
    """What one key and one tenant may do."""

    #: requests a second per key, on average, and at once
    rate: float = 20.0
    burst: int = 40
    #: the largest request body, in bytes
    max_body: int = 1 << 20
    #: runs in flight per tenant
    runs_per_tenant: int = 32


class Problem(Exception):
    """An HTTP error with a JSON body."""

    def __init__(
        self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers = dict(headers or {})


@dataclass
class Server:
    """What the routes share: the deployments (the engine serving now), the keys, the
    runs in flight."""

    deployer: Deployer
    keys: KeyStore | None
    limits: Limits = field(default_factory=Limits)
    live: LiveRuns = field(default_factory=LiveRuns)
    buckets: dict[str, TokenBucket] = field(default_factory=dict)
    draining: bool = False
    #: how often the source is checked for a new revision (``None``: never)
    poll_s: float | None = None
    #: the secret of ``POST /v1/deploy/hook`` (``None``: no webhook)
    webhook_secret: bytes | None = None
    metrics: Metrics = field(default_factory=Metrics)
    #: OpenTelemetry spans of the runs, over OTLP (``None``: none)
    tracing: Tracing | None = None
    _group: anyio.abc.TaskGroup | None = None

    def __post_init__(self) -> None:
        self.metrics.gauges["kiln_runs_in_flight"] = lambda: float(len(self.live))
        self.metrics.gauges["kiln_deployments"] = lambda: float(len(self.deployer.history))
        self.metrics.gauges["kiln_deployments_rejected"] = lambda: float(
            sum(1 for d in self.deployer.history if d.status == "rejected")
        )

    @property
    def engine(self) -> Engine:
        """The engine serving now."""
        try:
            return self.deployer.engine
        except DeployError as exc:
            raise Problem(503, "not_deployed", str(exc)) from None

    # -- who is asking --------------------------------------------------------------------

    def key(self, request: Request, scope: str) -> Key:
        """The key of ``request``, allowed ``scope`` and within its rate; else a Problem."""
        if self.keys is None:
            key = LOCAL
        else:
            header = request.headers.get("authorization", "")
            kind, _, presented = header.partition(" ")
            if not header and "kiln_key" in request.cookies:
                # the web view's sign-in; a cross-site page cannot add the header, so a
                # cookie alone never changes anything (no CSRF)
                if request.method not in ("GET", "HEAD") and "x-kiln-ui" not in request.headers:
                    raise Problem(403, "forbidden", "a signed-in browser sends X-Kiln-UI")
                kind, presented = "bearer", request.cookies["kiln_key"]
            found = self.keys.verify(presented) if kind.lower() == "bearer" else None
            if found is None:
                raise Problem(
                    401, "unauthorized", "send a live API key: Authorization: Bearer kiln_...",
                    {"WWW-Authenticate": 'Bearer realm="kiln"'},
                )  # fmt: skip
            key = found
        if not key.allows(scope):
            raise Problem(
                403, "forbidden", f"this key's scopes ({', '.join(sorted(key.scopes))}) do "
                f"not include {scope}",
            )  # fmt: skip
        now = time.monotonic()
        bucket = self.buckets.get(key.id)
        if bucket is None:
            bucket = self.buckets[key.id] = TokenBucket(
                self.limits.rate, self.limits.burst, now
            )
        wait = bucket.take(now)
        if wait > 0:
            raise Problem(
                429, "rate_limited", f"more than {self.limits.rate:g} requests a second",
                {"Retry-After": str(max(1, math.ceil(wait)))},
            )  # fmt: skip
        return key

    def visible(self, key: Key, row: RunRow) -> bool:
        tenant = (row.request or {}).get("tenant")
        return key.admin or tenant == key.tenant

    # -- runs -----------------------------------------------------------------------------

    def start(
        self,
        key: Key,
        target: str,
        *,
        run: Callable[[Engine, list[Callable[[Event], None]], str], Awaitable[Any]],
        run_id: str | None = None,
    ) -> tuple[str, anyio.Event, dict[str, Any]]:
        """Start a run as the server's own task (it outlives the request that asked for
        it) on the engine serving now, which stays open until the run ends; returns its
        id, an event set when it ends, and where its result will be."""
        if self.draining:
            raise Problem(503, "draining", "the server is shutting down: try another one")
        if self.live.of(key.tenant) >= self.limits.runs_per_tenant:
            raise Problem(
                429, "too_many_runs",
                f"tenant {key.tenant} has {self.limits.runs_per_tenant} runs in flight",
                {"Retry-After": "1"},
            )  # fmt: skip
        assert self._group is not None, "the server is not started"
        deployment = self.deployer.current
        engine = self.engine
        assert deployment is not None
        run_id = run_id or uuid.uuid4().hex
        live = self.live.start(run_id, key.tenant, target)
        done = anyio.Event()
        outcome: dict[str, Any] = {}
        deployment.runs += 1

        tracing = self.tracing

        def emit(event: Event) -> None:
            live.emit(event)
            self.metrics.event(event)
            if tracing is not None:
                tracing.sink(event)

        async def go() -> None:
            try:
                with live.scope:
                    outcome["result"] = await run(engine, [emit], run_id)
            except RunSetupError as exc:
                outcome["error"] = str(exc)
            except Exception as exc:  # a bug: the run is recorded as failed by execute
                log.exception("run %s failed in kiln", run_id)
                outcome["error"] = f"internal error: {type(exc).__name__}"
            finally:
                self.live.end(run_id)
                done.set()
                deployment.runs -= 1
                if deployment.runs == 0 and deployment is not self.deployer.current:
                    await self.deployer.retire(deployment)  # its last run: close it

        self._group.start_soon(go)
        return run_id, done, outcome

    def run_row(self, key: Key, run_id: str) -> RunRow:
        store = self._store()
        try:
            row = store.get_run(run_id)
        except TraceError:
            raise Problem(404, "not_found", f"no run {run_id}") from None
        if not self.visible(key, row):
            raise Problem(404, "not_found", f"no run {run_id}")
        return row

    def _store(self) -> TraceStore:
        if self.engine.store is None:
            raise Problem(501, "no_store", "this server records no runs")
        return self.engine.store


# -- helpers ------------------------------------------------------------------------------


async def _body(request: Request, server: Server) -> dict[str, Any]:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > server.limits.max_body:
        raise Problem(413, "too_large", f"the body is over {server.limits.max_body} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > server.limits.max_body:
            raise Problem(413, "too_large", f"the body is over {server.limits.max_body} bytes")
        chunks.append(chunk)
    raw = b"".join(chunks)
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise Problem(400, "bad_json", f"the body is not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise Problem(422, "bad_request", "the body must be a JSON object")
    return body


def _field(body: Mapping[str, Any], name: str, kind: type | tuple[type, ...], what: str) -> Any:
    value = body.get(name)
    if value is not None and not isinstance(value, kind):
        raise Problem(422, "bad_request", f"'{name}' must be {what}")
    return value


def _json(data: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    return JSONResponse(data, status_code=status, headers=dict(headers or {}))


def _sse(event: Event, kind: str) -> bytes:
    names = _CREW_SSE_NAMES if kind == "crew" else _SSE_NAMES
    name = names.get(event.type, event.type)
    data = json.dumps(event.as_json(), ensure_ascii=False, default=str)
    return f"id: {event.seq}\nevent: {name}\ndata: {data}\n\n".encode()


def _run_json(row: RunRow) -> dict[str, Any]:
    request = row.request or {}
    kind, _, name = row.target.partition("/")
    return {
        "id": row.id,
        "target": row.target,
        "kind": kind.lower(),
        "name": name,
        "status": row.state,
        "started": row.started,
        "ended": row.ended,
        "inputs": row.inputs,
        "input": request.get("text"),
        "output": row.output,
        "error": row.error,
        "usage": row.usage,
        "plan_hash": row.plan_hash,
        "user": request.get("user"),
        "session": request.get("session"),
        "tenant": request.get("tenant"),
    }


def _approval_json(row: ApprovalRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "run_id": row.run_id,
        "tool": row.tool,
        "input": row.arguments,
        "agent": row.agent,
        "created": row.created,
        "status": row.status,
        "reason": row.reason,
        "decided_by": row.decided_by,
    }


def _who(key: Key, context: Mapping[str, Any]) -> str:
    """The memory tenant of a request: the key's tenant, and its user within it."""
    user = context.get("user_id")
    if key is LOCAL:
        return str(user) if user else DEFAULT_TENANT
    return f"{key.tenant}/{user}" if user else key.tenant


# -- routes -------------------------------------------------------------------------------

Handler = Callable[[Request, Server], Awaitable[Response]]
#: the handlers of the API's routes, by name (their docstrings describe them)
_HANDLERS: dict[str, Handler] = {}


def create_app(server: Server) -> Starlette:
    """The application; its lifespan owns the runs' task group and drains it on shutdown."""

    def route(path: str, handler: Handler, methods: list[str]) -> Route:
        async def endpoint(request: Request) -> Response:
            try:
                response = await handler(request, server)
            except Problem as problem:
                response = _json(
                    {"error": {"code": problem.code, "message": problem.message}},
                    problem.status,
                    problem.headers,
                )
            server.metrics.count(
                "kiln_http_requests_total", route=path, code=str(response.status_code)
            )
            return response

        _HANDLERS[handler.__name__] = handler
        return Route(path, endpoint, methods=methods, name=handler.__name__)

    routes = [
        route("/healthz", healthz, ["GET"]),
        route("/readyz", readyz, ["GET"]),
        route("/metrics", metrics, ["GET"]),
        route("/openapi.json", openapi, ["GET"]),
        route("/v1/agents", list_agents, ["GET"]),
        route("/v1/agents/{name}", get_agent, ["GET"]),
        route("/v1/tools", list_tools, ["GET"]),
        route("/v1/tools/{name}", get_tool, ["GET"]),
        route("/v1/crews", list_crews, ["GET"]),
        route("/v1/crews/{name}", get_crew, ["GET"]),
        route("/v1/agents/{name}/execute", execute_agent, ["POST"]),
        route("/v1/crews/{name}/execute", execute_crew, ["POST"]),
        route("/v1/orchestration/tasks", orchestration_task, ["POST"]),
        route("/v1/runs", list_runs, ["GET"]),
        route("/v1/runs/{id}", get_run, ["GET"]),
        route("/v1/runs/{id}/events", run_events, ["GET"]),
        route("/v1/runs/{id}/cancel", cancel_run, ["POST"]),
        route("/v1/runs/{id}/resume", resume_run, ["POST"]),
        route("/v1/approvals", list_approvals, ["GET"]),
        route("/v1/approvals/{id}", decide_approval, ["POST"]),
        route("/v1/agents/{name}/memory/query", query_memory, ["POST"]),
        route("/v1/agents/{name}/memory", forget_memory, ["DELETE"]),
        route("/v1/validate", validate, ["POST"]),
        route("/v1/deployments", list_deployments, ["GET"]),
        route("/v1/deploy/hook", deploy_hook, ["POST"]),
        route("/v1/agents", write_agent, ["POST"]),
        route("/v1/tools", write_tool, ["POST"]),
        route("/v1/models", list_models, ["GET"]),
        route("/v1/chat/completions", chat_completions, ["POST"]),
    ]

    from runtime.server.web import PAGES

    routes += [_page(server, path, handler, methods) for path, handler, methods in PAGES]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if server.deployer.current is None:  # the first deployment, before any request
            first = await server.deployer.check()
            if first is None or first.status != "serving":
                for found in first.diagnostics if first else []:
                    log.warning(
                        "%s:%s:%s: %s[%s]: %s", found["path"], found["line"], found["col"],
                        found["severity"], found["code"], found["message"],
                    )  # fmt: skip
                log.warning(
                    "%s: serving nothing until a revision compiles (GET /v1/deployments)",
                    server.deployer.error or "the specs do not compile",
                )
        async with anyio.create_task_group() as group:
            server._group = group
            watching = anyio.CancelScope()
            if server.poll_s is not None:

                async def watch() -> None:
                    with watching:
                        await server.deployer.watch(server.poll_s or 1.0)

                group.start_soon(watch)
            _resume_drained(server)
            try:
                yield
            finally:
                server.draining = True
                watching.cancel()
                # runs in flight end as cancelled (recorded, journaled) and the next server
                # on this trace store carries them on: a server that stops does not wait
                # on a model for minutes, and loses nothing
                drained = [live.run_id for live in server.live.runs()]
                server.live.cancel_all()
                if drained and server.deployer.current is not None:
                    store = server.engine.store
                    if store is not None:
                        store.set_meta("server.drained", drained)
        await server.deployer.aclose()
        if server.tracing is not None:
            await anyio.to_thread.run_sync(server.tracing.shutdown)  # flushes the last spans

    async def not_found(request: Request, exc: HTTPException) -> Response:
        return _json({"error": {"code": "not_found", "message": exc.detail}}, exc.status_code)

    async def crashed(request: Request, exc: Exception) -> Response:
        log.exception("%s %s failed", request.method, request.url.path)
        message = "kiln failed to answer this request; the server's log has the details"
        return _json({"error": {"code": "internal", "message": message}}, 500)

    return Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={HTTPException: not_found, Exception: crashed},  # type: ignore[dict-item]
    )


def _resume_drained(server: Server) -> None:
    """Carry on the runs the last server on this trace store stopped when it drained."""
    if server.deployer.current is None or server.engine.store is None:
        return
    store = server.engine.store
    drained = store.get_meta("server.drained") or []
    store.set_meta("server.drained", None)
    for run_id in drained:
        try:
            row = store.get_run(run_id)
        except TraceError:
            continue
        if row.status != "cancelled":
            continue
        tenant = (row.request or {}).get("tenant") or LOCAL.tenant
        owner = Key(id="drain", tenant=tenant, scopes=frozenset({"run"}), name=None, created=0)
        log.info("resuming run %s, drained by the last server", run_id)
        _resume(server, owner, row)


async def healthz(request: Request, server: Server) -> Response:
    return _json({"status": "ok"})


def _page(server: Server, path: str, handler: Handler, methods: list[str]) -> Route:
    """A web view page: a missing key sends the browser to sign in, other problems are
    shown as a page."""

    async def endpoint(request: Request) -> Response:
        try:
            return await handler(request, server)
        except Problem as problem:
            if problem.status == 401:
                return RedirectResponse("/ui/login", status_code=303)
            from html import escape

            body = f"<h1>{problem.status}</h1><p>{escape(problem.message)}</p>"
            return HTMLResponse(body, status_code=problem.status)

    return Route(path, endpoint, methods=methods, name=f"page_{handler.__name__}")


async def openapi(request: Request, server: Server) -> Response:
    """This API as an OpenAPI 3.1 document, made from the application's routes."""
    return _json(openapi_document(request.app.routes))


def openapi_document(routes: Any) -> dict[str, Any]:
    import re

    from runtime.cli.app import version

    paths: dict[str, Any] = {}
    public = {"/healthz", "/readyz", "/metrics", "/openapi.json", "/v1/deploy/hook"}
    for found in routes:
        if not isinstance(found, Route) or found.path.startswith("/ui") or found.path == "/":
            continue
        handler = _HANDLERS.get(found.name)
        doc = (handler.__doc__ or "").strip() if handler else ""
        summary = doc.split("\n\n")[0].replace("\n", " ") or found.name.replace("_", " ")
        for method in sorted((found.methods or set()) - {"HEAD"}):
            operation: dict[str, Any] = {
                "operationId": found.name if method != "DELETE" else f"{found.name}_delete",
                "summary": summary,
                "parameters": [
                    {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
                    for name in re.findall(r"{(\w+)}", found.path)
                ],
                "responses": {"200": {"description": "JSON (see docs/server.md)"},
                              "default": {"description": "{error: {code, message}}"}},
            }  # fmt: skip
            if method == "POST":
                operation["requestBody"] = {
                    "content": {"application/json": {"schema": {"type": "object"}}}
                }
            if found.path in public:
                operation["security"] = []
            paths.setdefault(found.path, {})[method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": "kiln", "version": version(),
                 "description": "Agents and crews compiled from YAML specs, served."},
        "paths": paths,
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        "security": [{"bearer": []}],
    }  # fmt: skip


async def metrics(request: Request, server: Server) -> Response:
    """Prometheus metrics (no key: scrape it from inside your network only)."""
    return Response(server.metrics.render(), media_type="text/plain; version=0.0.4")


async def readyz(request: Request, server: Server) -> Response:
    if server.draining:
        return _json({"status": "draining"}, 503)
    return _json({"status": "ready", "plan_hash": _plan(server).get("plan_hash")})


def _plan(server: Server) -> Mapping[str, Any]:
    return server.engine.compilation.plan or {}


def _described(server: Server, kind: str, name: str) -> dict[str, Any]:
    plan = _plan(server)
    entry = plan.get("specs", {}).get(f"{kind}/{name}")
    if entry is None:
        raise Problem(404, "not_found", f"no {kind.lower()} named {name!r} is deployed")
    program = server.engine.compilation.program
    assert program is not None
    table = {"Agent": program.agents, "Tool": program.tools, "Crew": program.crews}[kind]
    span = table[name].doc.span
    out = {
        "name": name,
        "kind": kind,
        "hash": entry.get("hash"),
        "origin": entry.get("origin"),
        "source": {"path": span.path, "line": span.line, "col": span.col},
        "spec": entry.get("spec", {}).get("spec"),
    }
    reach = plan.get("analysis", {}).get(f"{kind}/{name}")
    if reach is not None:
        out["reach"] = reach
    return out


async def list_agents(request: Request, server: Server) -> Response:
    return _list(request, server, "Agent")


async def list_tools(request: Request, server: Server) -> Response:
    return _list(request, server, "Tool")


async def list_crews(request: Request, server: Server) -> Response:
    return _list(request, server, "Crew")


def _list(request: Request, server: Server, kind: str) -> Response:
    server.key(request, "read")
    program = server.engine.compilation.program
    assert program is not None
    names = {"Agent": program.agents, "Tool": program.tools, "Crew": program.crews}[kind]
    items = [_described(server, kind, name) for name in sorted(names)]
    return _json({"items": items, "plan_hash": _plan(server).get("plan_hash")})


async def get_agent(request: Request, server: Server) -> Response:
    server.key(request, "read")
    return _json(_described(server, "Agent", request.path_params["name"]))


async def get_tool(request: Request, server: Server) -> Response:
    server.key(request, "read")
    return _json(_described(server, "Tool", request.path_params["name"]))


async def get_crew(request: Request, server: Server) -> Response:
    server.key(request, "read")
    return _json(_described(server, "Crew", request.path_params["name"]))


async def execute_agent(request: Request, server: Server) -> Response:
    return await _execute(request, server, "Agent", request.path_params["name"])


async def execute_crew(request: Request, server: Server) -> Response:
    return await _execute(request, server, "Crew", request.path_params["name"])


async def orchestration_task(request: Request, server: Server) -> Response:
    """The seed's name for running a crew: ``{"crew": NAME, ...}`` and the execute body."""
    body = await _body(request, server)
    crew = _field(body, "crew", str, "a crew's name")
    if not crew:
        raise Problem(422, "bad_request", "say which crew runs: {\"crew\": NAME, ...}")
    return await _execute(request, server, "Crew", crew, body)


_CONFIG = {"stream", "background", "durability"}


async def _execute(
    request: Request,
    server: Server,
    kind: str,
    name: str,
    body: dict[str, Any] | None = None,
) -> Response:
    key = server.key(request, "run")
    if body is None:
        body = await _body(request, server)
    program = server.engine.compilation.program
    assert program is not None
    if name not in (program.agents if kind == "Agent" else program.crews):
        raise Problem(404, "not_found", f"no {kind.lower()} named {name!r} is deployed")
    text = _field(body, "input", str, "a string (the request)")
    inputs = _field(body, "inputs", dict, "an object (the declared inputs)") or {}
    context = _field(body, "context", dict, "an object ({user_id, session_id})") or {}
    config = _field(body, "config", dict, "an object ({stream, background, durability})") or {}
    unknown = sorted(set(config) - _CONFIG)
    if unknown:
        raise Problem(
            422, "bad_request",
            f"config: unknown {', '.join(unknown)} (known: {', '.join(sorted(_CONFIG))})",
        )  # fmt: skip
    for field_name in ("user_id", "session_id"):
        _field(context, field_name, str, "a string")
    durability = config.get("durability", "default")
    if durability not in ("default", "sync", "async", "exit", None):
        raise Problem(422, "bad_request", "config.durability: sync, async, exit or null")
    target = f"{kind}/{name}"
    try:  # bad inputs are the caller's, before anything runs
        server.engine.prepare(target, input=text, inputs=inputs)
    except RunSetupError as exc:
        raise Problem(422, "bad_input", str(exc)) from None

    async def run(engine: Engine, sinks: list[Callable[[Event], None]], run_id: str) -> Any:
        return await engine.run(
            target, input=text, inputs=inputs, user=_who(key, context),
            session=context.get("session_id"), sinks=sinks, run_id=run_id,
            durability=durability, tenant=key.tenant,
        )  # fmt: skip

    run_id, done, outcome = server.start(key, target, run=run)
    if config.get("stream"):
        return _stream(server, run_id, kind.lower(), after=0)
    if config.get("background"):
        return _json(
            {"run_id": run_id, "status": "running", "events": f"/v1/runs/{run_id}/events"},
            202,
            {"Location": f"/v1/runs/{run_id}"},
        )
    await done.wait()
    if "error" in outcome:
        raise Problem(422, "bad_input", outcome["error"])
    if "result" not in outcome:  # cancelled: what the trace store says of it
        return _json(_run_json(server.run_row(key, run_id)))
    return _json(outcome["result"].as_json())


def _stream(server: Server, run_id: str, kind: str, *, after: int) -> Response:
    """Server-sent events of a run: the ones after ``after`` (from the run in flight, or
    the trace store), then each one as it happens, until the run ends."""

    async def events() -> AsyncIterator[bytes]:
        live = server.live.get(run_id)
        if live is not None:
            async for event in live.follow(after):
                yield _sse(event, kind)
            return
        for event in server._store().events(run_id):
            if event.seq > after:
                yield _sse(event, kind)

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no", "X-Run-Id": run_id},
    )


async def list_runs(request: Request, server: Server) -> Response:
    key = server.key(request, "read")
    query = request.query_params
    target = None
    if query.get("agent") and query.get("crew"):
        raise Problem(422, "bad_request", "filter by agent or by crew, not both")
    if query.get("agent"):
        target = f"Agent/{query['agent']}"
    elif query.get("crew"):
        target = f"Crew/{query['crew']}"
    try:
        limit = int(query.get("limit", "50"))
        since = float(query["since"]) if "since" in query else None
    except ValueError:
        raise Problem(422, "bad_request", "limit is a number, since Unix seconds") from None
    status = query.get("status")
    rows = server._store().list_runs(
        limit=None if status == "interrupted" else max(1, min(limit, 1000)),
        status="running" if status == "interrupted" else status,
        target=target,
        tenant=None if key.admin else key.tenant,
        user=query.get("user") and _who(key, {"user_id": query["user"]}),
        since=since,
    )
    if status == "interrupted":
        rows = [r for r in rows if r.state == "interrupted"][:limit]
    return _json({"items": [_run_json(r) for r in rows]})


async def get_run(request: Request, server: Server) -> Response:
    key = server.key(request, "read")
    return _json(_run_json(server.run_row(key, request.path_params["id"])))


async def run_events(request: Request, server: Server) -> Response:
    key = server.key(request, "read")
    row = server.run_row(key, request.path_params["id"])
    last = request.headers.get("last-event-id") or request.query_params.get("after") or "0"
    if not last.isdigit():
        raise Problem(422, "bad_request", "Last-Event-ID is an event number")
    return _stream(server, row.id, row.kind, after=int(last))


async def cancel_run(request: Request, server: Server) -> Response:
    key = server.key(request, "run")
    row = server.run_row(key, request.path_params["id"])
    live = server.live.get(row.id)
    if live is None:
        raise Problem(409, "not_running", f"run {row.id} is not running here ({row.state})")
    live.scope.cancel()
    return _json({"run_id": row.id, "status": "cancelling"}, 202)


async def resume_run(request: Request, server: Server) -> Response:
    key = server.key(request, "run")
    row = server.run_row(key, request.path_params["id"])
    body = await _body(request, server)
    force = bool(_field(body, "force", bool, "true or false"))
    if server.live.get(row.id) is not None or row.state == "running":
        raise Problem(409, "running", f"run {row.id} is running")
    if row.status == "succeeded":
        raise Problem(409, "finished", f"run {row.id} succeeded: nothing to resume")
    _resume(server, key, row, force=force)
    return _json({"run_id": row.id, "status": "running"}, 202)


def _resume(server: Server, key: Key, row: RunRow, *, force: bool = False) -> None:
    async def run(engine: Engine, sinks: list[Callable[[Event], None]], run_id: str) -> Any:
        return await engine.resume(run_id, force=force, sinks=sinks)

    server.start(key, row.target, run=run, run_id=row.id)


async def list_approvals(request: Request, server: Server) -> Response:
    key = server.key(request, "read")
    pending = request.query_params.get("status", "pending") == "pending"
    rows = server._store().list_approvals(
        pending_only=pending, tenant=None if key.admin else key.tenant
    )
    return _json({"items": [_approval_json(r) for r in rows]})


async def decide_approval(request: Request, server: Server) -> Response:
    key = server.key(request, "approve")
    store = server._store()
    try:
        approval = store.get_approval(request.path_params["id"])
    except TraceError:
        raise Problem(404, "not_found", f"no approval {request.path_params['id']}") from None
    row = server.run_row(key, approval.run_id)  # another tenant's: 404
    body = await _body(request, server)
    decision = body.get("decision")
    if decision not in ("approve", "deny"):
        raise Problem(422, "bad_request", "decision: approve or deny")
    reason = _field(body, "reason", str, "a string")
    if decision == "deny" and not reason:
        raise Problem(422, "bad_request", "a denial needs a reason: the agent is told it")
    try:
        decided = store.decide_approval(
            approval.id, approved=decision == "approve", reason=reason,
            by=f"{key.tenant}:{key.id}",
        )  # fmt: skip
    except TraceError as exc:
        raise Problem(409, "decided", str(exc)) from None
    resumed = False
    waiting = not store.list_approvals(run_id=row.id)
    if waiting and row.status == "waiting_approval" and server.live.get(row.id) is None:
        _resume(server, key, row)  # every approval of the run is decided: it carries on
        resumed = True
    return _json({**_approval_json(decided), "run_resumed": resumed})


async def validate(request: Request, server: Server) -> Response:
    """A bundle of spec files in (``{"files": {"agents/a.yaml": TEXT, ...}}``), kiln's
    located diagnostics out: for CI jobs and editors that do not run kiln."""
    server.key(request, "read")
    body = await _body(request, server)
    files = body.get("files")
    if not isinstance(files, dict) or not files:
        raise Problem(422, "bad_request", "files: an object of spec file names to their text")
    import tempfile
    from pathlib import PurePosixPath

    from compiler.pipeline import compile_paths

    with tempfile.TemporaryDirectory(prefix="kiln-validate-") as folder:
        root = Path(folder)
        for name, text in files.items():
            path = PurePosixPath(name)
            if (
                path.is_absolute()
                or ".." in path.parts
                or path.suffix not in (".yaml", ".yml")
                or not isinstance(text, str)
            ):
                raise Problem(
                    422, "bad_request",
                    f"files: {name!r} must be a relative .yaml or .yml path with text",
                )  # fmt: skip
            target = root / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
        compilation = await anyio.to_thread.run_sync(
            lambda: compile_paths([root], confine=root)  # may read nothing outside it
        )
        prefix = f"{root}/"
        diagnostics = []
        for d in compilation.diagnostics:
            found = d.as_json()
            found["path"] = str(found["path"]).removeprefix(prefix)
            diagnostics.append(found)
    plan = compilation.plan or {}
    return _json(
        {"ok": compilation.ok, "diagnostics": diagnostics, "plan_hash": plan.get("plan_hash")}
    )


async def list_models(request: Request, server: Server) -> Response:
    """The agents, as OpenAI-compatible models."""
    server.key(request, "read")
    program = server.engine.compilation.program
    assert program is not None
    return _json(
        {
            "object": "list",
            "data": [
                {"id": name, "object": "model", "created": 0, "owned_by": "kiln"}
                for name in sorted(program.agents)
            ],
        }
    )


async def chat_completions(request: Request, server: Server) -> Response:
    """OpenAI's chat completions over an agent (``model`` names it): the last user message
    is the request, earlier messages are given as the conversation so far; ``user`` is the
    user memory is kept for."""
    key = server.key(request, "run")
    body = await _body(request, server)
    model = _field(body, "model", str, "an agent's name")
    program = server.engine.compilation.program
    assert program is not None
    if not model or model not in program.agents:
        raise Problem(
            404, "model_not_found", f"no agent named {model!r} (GET /v1/models lists them)"
        )
    messages = _field(body, "messages", list, "a list of messages")
    if not messages:
        raise Problem(422, "bad_request", "messages: at least one message")
    said: list[tuple[str, str]] = []
    for message in messages:
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise Problem(422, "bad_request", "each message is {role, content}")
        said.append((message["role"], _content(message.get("content"))))
    if said[-1][0] != "user":
        raise Problem(422, "bad_request", "the last message must be the user's")
    text = said[-1][1]
    earlier = [f"{role}: {content}" for role, content in said[:-1] if role != "system"]
    if earlier:
        text = "Our conversation so far:\n" + "\n".join(earlier) + f"\n\nNow: {text}"
    user = _field(body, "user", str, "a string")
    target = f"Agent/{model}"
    try:
        server.engine.prepare(target, input=text)
    except RunSetupError as exc:
        raise Problem(422, "bad_input", str(exc)) from None

    async def run(engine: Engine, sinks: list[Callable[[Event], None]], run_id: str) -> Any:
        return await engine.run(
            target, input=text, user=_who(key, {"user_id": user}), sinks=sinks,
            run_id=run_id, tenant=key.tenant,
        )  # fmt: skip

    run_id, done, outcome = server.start(key, target, run=run)
    created = int(time.time())
    completion_id = f"chatcmpl-{run_id}"
    if body.get("stream"):

        async def chunks() -> AsyncIterator[bytes]:
            def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
                data = {
                    "id": completion_id, "object": "chat.completion.chunk",
                    "created": created, "model": model,
                    "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
                }  # fmt: skip
                return f"data: {json.dumps(data, ensure_ascii=False)}\n\n".encode()

            yield chunk({"role": "assistant", "content": ""})
            await done.wait()
            yield chunk({"content": _answer(outcome)})
            yield chunk({}, "stop")
            yield b"data: [DONE]\n\n"

        return StreamingResponse(chunks(), media_type="text/event-stream")
    await done.wait()
    result = outcome.get("result")
    usage = result.usage if result is not None else None
    return _json(
        {
            "id": completion_id,
            "object": "chat.completion",
            "created": created,
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": _answer(outcome)},
                    "finish_reason": "stop",
                }
            ],
            "usage": {
                "prompt_tokens": usage.prompt_tokens if usage else 0,
                "completion_tokens": usage.completion_tokens if usage else 0,
                "total_tokens": usage.total_tokens if usage else 0,
            },
            "kiln": {"run_id": run_id, "status": result.status if result else "failed"},
        }
    )


def _content(content: Any) -> str:
    """A message's text: a string, or the text parts of a list of parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            str(part.get("text", "")) for part in content
            if isinstance(part, dict) and part.get("type") == "text"
        )  # fmt: skip
    if content is None:
        return ""
    raise Problem(422, "bad_request", "a message's content is text or a list of text parts")


def _answer(outcome: Mapping[str, Any]) -> str:
    result = outcome.get("result")
    if result is None:
        return f"(the run did not start: {outcome.get('error', 'cancelled')})"
    if not result.ok:
        return f"(the run ended {result.status}: {result.error})"
    output = result.output
    if isinstance(output, dict) and len(output) == 1 and isinstance(
        next(iter(output.values())), str
    ):
        return str(next(iter(output.values())))  # {"answer": "..."}: the answer
    return output if isinstance(output, str) else json.dumps(output, ensure_ascii=False)


# -- deployments --------------------------------------------------------------------------


async def list_deployments(request: Request, server: Server) -> Response:
    server.key(request, "read")
    deployer = server.deployer
    current = deployer.current
    return _json(
        {
            "current": current.as_json() if current else None,
            "items": [d.as_json() for d in reversed(deployer.history)],
            "source": {
                "kind": type(deployer.source).__name__.removesuffix("Source").lower(),
                "writable": deployer.source.writable,
                "error": deployer.error,
            },
        }
    )


async def deploy_hook(request: Request, server: Server) -> Response:
    """A push happened (GitHub's webhook, or anything that signs like it): check the
    branch now. Signed with HMAC-SHA256 of the body (``X-Hub-Signature-256``)."""
    import hashlib
    import hmac

    if server.webhook_secret is None:
        raise Problem(404, "not_found", "this server has no deploy webhook (--webhook-secret)")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > server.limits.max_body:
            raise Problem(413, "too_large", f"the body is over {server.limits.max_body} bytes")
    signature = request.headers.get("x-hub-signature-256", "")
    wanted = "sha256=" + hmac.new(server.webhook_secret, body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(signature, wanted):
        raise Problem(401, "bad_signature", "X-Hub-Signature-256 does not match the body")
    server.deployer.wake()
    return _json({"status": "checking"}, 202)


async def write_agent(request: Request, server: Server) -> Response:
    return await _write_spec(request, server, "Agent")


async def write_tool(request: Request, server: Server) -> Response:
    return await _write_spec(request, server, "Tool")


async def _write_spec(request: Request, server: Server, kind: str) -> Response:
    """Write one spec document into the served folder and deploy it like any change;
    ``422`` with the diagnostics when the folder would not compile with it."""
    server.key(request, "admin")
    source = server.deployer.source
    if not source.writable:
        raise Problem(
            409, "follows_git",
            "this server deploys a git branch: change the specs in git (a pull request), "
            "not over the API",
        )  # fmt: skip
    body = await _body(request, server)
    if body.get("kind", kind) != kind:
        raise Problem(422, "bad_request", f"kind: this route writes a {kind}")
    metadata = body.get("metadata")
    name = metadata.get("name") if isinstance(metadata, dict) else None
    if not isinstance(name, str) or not name:
        raise Problem(422, "bad_request", "metadata.name: the spec's name")
    import shutil
    import tempfile

    import yaml

    from compiler.pipeline import compile_paths
    from specs.source.atomic import write_atomic

    document = {"apiVersion": body.get("apiVersion", "kiln/v1"), "kind": kind, **body}
    text = yaml.safe_dump(document, sort_keys=False, allow_unicode=True)
    root = Path(getattr(source, "root", "."))
    program = server.engine.compilation.program
    assert program is not None
    table = program.agents if kind == "Agent" else program.tools
    existing = table.get(name)
    if existing is not None and existing.origin == "user":
        target = Path(existing.doc.path)
        others = [e for e in program.user_entries() if e.doc.path == existing.doc.path]
        if len(others) > 1:
            raise Problem(
                409, "shared_file",
                f"{kind} {name} is defined in {target} beside other specs: change it there",
            )  # fmt: skip
    else:
        if not _NAME_OK(name):
            raise Problem(422, "bad_request", f"metadata.name {name!r} is not a spec name")
        target = root / f"{kind.lower()}s" / f"{name}.yaml"
    relative = _relative(target, root)

    def check() -> Any:
        with tempfile.TemporaryDirectory(prefix="kiln-write-") as folder:
            copy = Path(folder) / "specs"
            shutil.copytree(root, copy, ignore=shutil.ignore_patterns(".*"))
            (copy / relative).parent.mkdir(parents=True, exist_ok=True)
            (copy / relative).write_text(text, encoding="utf-8")
            compilation = compile_paths([copy], confine=copy)
            prefix = f"{copy}/"
            return compilation.ok, [
                {**d.as_json(), "path": str(d.span.path).removeprefix(prefix)}
                for d in compilation.diagnostics
            ]

    ok, diagnostics = await anyio.to_thread.run_sync(check)
    if not ok:
        return _json(
            {"error": {"code": "invalid_spec", "message": f"{kind} {name} does not compile"},
             "diagnostics": diagnostics},
            422,
        )  # fmt: skip
    target.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(target, text)
    deployment = await server.deployer.check()
    return _json(
        {"path": str(relative), "deployment": deployment.as_json() if deployment else None},
        201 if existing is None else 200,
    )


def _relative(path: Path, root: Path) -> Path:
    return path.absolute().relative_to(root.absolute())


def _NAME_OK(name: str) -> bool:  # noqa: N802 - reads as a predicate
    import re

    return len(name) <= 63 and re.fullmatch(r"[a-z0-9]([-_a-z0-9]*[a-z0-9])?", name) is not None


# -- memory -------------------------------------------------------------------------------


def _policy_of(server: Server, name: str, session: str | None) -> str:
    program = server.engine.compilation.program
    assert program is not None
    if name not in program.agents:
        raise Problem(404, "not_found", f"no agent named {name!r} is deployed")
    policy = program.agent(name).spec.memory
    if policy is None:
        raise Problem(422, "no_memory", f"agent {name!r} has no memory policy (spec.memory)")
    if program.policy(policy).spec.scope == "session" and not session:
        raise Problem(
            422, "bad_request", f"memory policy {policy!r} keeps memory per session: "
            "give context.session_id",
        )  # fmt: skip
    return str(policy)


async def query_memory(request: Request, server: Server) -> Response:
    """What an agent would recall about ``query`` for a user: every item with its score
    and the reasons (relevance, recency, importance), the window's turns, and why nothing
    was found when nothing was."""
    from runtime.memory.records import MemoryStoreError
    from runtime.memory.service import Who

    key = server.key(request, "read")
    body = await _body(request, server)
    name = request.path_params["name"]
    query = _field(body, "query", str, "a string")
    if not query:
        raise Problem(422, "bad_request", "query: what to recall")
    context = _field(body, "context", dict, "an object ({user_id, session_id})") or {}
    top_k = _field(body, "top_k", int, "a number from 1")
    if top_k is not None and top_k < 1:
        raise Problem(422, "bad_request", "top_k: a number from 1")
    session = _field(context, "session_id", str, "a string")
    _field(context, "user_id", str, "a string")
    policy = _policy_of(server, name, session)
    memory = server.engine.memory
    assert memory is not None
    try:
        recall = await memory.recall(
            policy=policy, agent=name, query=query,
            who=Who(tenant=_who(key, context), session=session), top_k=top_k,
        )  # fmt: skip
    except MemoryStoreError as exc:
        raise Problem(503, "memory_unavailable", str(exc)) from None
    return _json(json.loads(json.dumps(recall.as_json(policy), default=str)))


async def forget_memory(request: Request, server: Server) -> Response:
    """Forget what an agent keeps for a user (``?user_id=``; ``session_id``, ``id``
    (repeatable) and ``before`` (Unix seconds) narrow it): every store of its policy."""
    from runtime.memory.records import MemoryStoreError
    from runtime.memory.service import Who

    key = server.key(request, "run")
    name = request.path_params["name"]
    query = request.query_params
    session = query.get("session_id")
    policy = _policy_of(server, name, session)
    try:
        before = float(query["before"]) if "before" in query else None
    except ValueError:
        raise Problem(422, "bad_request", "before: Unix seconds") from None
    memory = server.engine.memory
    assert memory is not None
    who = Who(tenant=_who(key, {"user_id": query.get("user_id")}), session=session)
    namespace = memory.namespace(policy, name, who)
    try:
        counts = await memory.forget(
            policy=policy, namespace=namespace, agent=name, session=session,
            ids=query.getlist("id") or None, before=before,
        )  # fmt: skip
    except MemoryStoreError as exc:
        raise Problem(503, "memory_unavailable", str(exc)) from None
    return _json({"namespace": namespace.key, "forgotten": counts})
