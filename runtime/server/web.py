"""The web view of ``kiln serve``: server-rendered HTML with a little plain JavaScript, no
build step. Deployments (with the diff and errors), agents and crews (with their graph as
Mermaid source), runs (filterable), a run's live timeline (thoughts, tool calls with inputs
and outputs, memory reads with their reasons, costs) and pending approvals with approve
and deny buttons. It reads and acts through the same /v1 API, with the key the person
signed in with (kept in an HttpOnly cookie)."""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jinja2 import Environment, FileSystemLoader
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

if TYPE_CHECKING:
    from runtime.server.app import Server

__all__ = ["PAGES"]

_PAGES = Path(__file__).parent / "pages"
_env = Environment(autoescape=True, loader=FileSystemLoader(_PAGES))
_env.filters["when"] = lambda ts: time.strftime("%Y-%m-%d %H:%M", time.gmtime(ts)) if ts else "-"
_env.filters["short"] = lambda s, n=12: (str(s)[:n] if s else "-")
_env.filters["tojson_pretty"] = lambda v: json.dumps(v, indent=2, ensure_ascii=False, default=str)


def _page(title: str, template: str, **context: Any) -> HTMLResponse:
    body = _env.get_template(f"{template}.html").render(**context)
    return HTMLResponse(_env.get_template("layout.html").render(title=title, body=_Markup(body)))


class _Markup(str):
    def __html__(self) -> str:
        return str(self)


async def _api(server: Server, request: Request, handler: Any) -> Any:
    """Call a /v1 handler and give its JSON (the same checks as over HTTP)."""
    response = await handler(request, server)
    return json.loads(bytes(response.body))


async def home(request: Request, server: Server) -> Response:
    from runtime.server.app import list_deployments

    data = await _api(server, request, list_deployments)
    return _page("Deployments", "deployments", **data)


async def agents(request: Request, server: Server) -> Response:
    from compiler.graphviz import mermaid
    from runtime.server.app import list_agents, list_crews

    found = (await _api(server, request, list_agents))["items"]
    found += (await _api(server, request, list_crews))["items"]
    graphs = server.engine.compilation.graphs
    return _page("Agents & crews", "agents", items=found, mermaid=mermaid(graphs))


async def runs(request: Request, server: Server) -> Response:
    from runtime.server.app import list_runs

    data = await _api(server, request, list_runs)
    statuses = ["running", "succeeded", "failed", "cancelled", "waiting_approval",
                "needs_attention", "limit_exceeded", "interrupted"]  # fmt: skip
    q = request.query_params
    return _page("Runs", "runs", items=data["items"], statuses=statuses, status=q.get("status"),
                 agent=q.get("agent"), crew=q.get("crew"))  # fmt: skip


async def run(request: Request, server: Server) -> Response:
    from runtime.server.app import get_run

    found = await _api(server, request, get_run)
    return _page(f"Run {found['id'][:12]}", "run", run=found)


async def approvals(request: Request, server: Server) -> Response:
    from runtime.server.app import list_approvals

    data = await _api(server, request, list_approvals)
    return _page("Approvals", "approvals", items=data["items"])


async def login(request: Request, server: Server) -> Response:
    if request.method == "GET":
        return _page("Sign in", "login", error=None)
    form = await request.form()
    key = str(form.get("key") or "").strip()
    if server.keys is None or server.keys.verify(key) is None:
        page = _page("Sign in", "login", error="That key is not a live key.")
        page.status_code = 401
        return page
    response = RedirectResponse("/", status_code=303)
    response.set_cookie("kiln_key", key, httponly=True, samesite="strict", max_age=12 * 3600)
    return response


PAGES: list[tuple[str, Callable[[Request, Server], Awaitable[Response]], list[str]]] = [
    ("/", home, ["GET"]),
    ("/ui/agents", agents, ["GET"]),
    ("/ui/runs", runs, ["GET"]),
    ("/ui/runs/{id}", run, ["GET"]),
    ("/ui/approvals", approvals, ["GET"]),
    ("/ui/login", login, ["GET", "POST"]),
]
