"""MCP servers as tool sources: list a server's tools and call them, over stdio or HTTP.

One :class:`McpHub` owns the live connections of one run (or one CLI command)::

    async with McpHub() as hub:
        tools = await hub.list_tools("git", server)
        output = await hub.call("git", server, "git_status", {"repo_path": "."})

A server is started (or connected to) on first use, keyed by the name of the Tool spec that
declares it; concurrent first uses share one start. The SDK's context managers must be
entered and left in one task, so each connection lives in a task of the hub's own task
group and callers talk to it through its session. Leaving the hub, normally or by
cancellation, closes every connection: a stdio server's stdin is closed, then the process
tree is terminated and reaped by the SDK's shielded shutdown.

Errors reach the caller as :class:`~runtime.tools.box.ToolError`:

- the tool said it failed (``is_error``): its text, not retryable;
- a call over ``call_timeout_s``, or a server that stopped or became unreachable:
  retryable; a stopped server is started again on the next call (``MAX_RESTARTS`` times);
- a server that does not start (missing command, exit at start, no answer within
  ``startup_timeout_s``): the command and the last lines of the server's stderr, which is
  otherwise kept off the user's terminal.

``mcp`` and ``httpx2`` are imported when a server is first used, never at import time.
"""

from __future__ import annotations

import json
import math
import os
import shlex
import shutil
import sys
import tempfile
from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any, TextIO, cast

import anyio
from anyio.abc import TaskGroup, TaskStatus

from runtime.idempotency import IDEMPOTENCY_KEY, MCP_META
from runtime.tools.box import ToolError
from specs import Tool
from specs.tool import McpServer

if TYPE_CHECKING:
    from mcp import Client
    from mcp.client._transport import ReadStream, TransportStreams
    from mcp.shared.message import SessionMessage
    from mcp_types import CallToolResult, ContentBlock

__all__ = ["MAX_RESTARTS", "McpHub", "McpToolExecutor", "RemoteTool"]

#: times one server may be started again after it stopped, in one hub
MAX_RESTARTS = 3
#: environment variables a stdio server inherits; ``server.env`` adds to them
INHERITED_ENV = ("PATH", "HOME", "USER", "LOGNAME", "SHELL", "TERM", "LANG", "LC_ALL",
                 "LC_CTYPE", "TZ", "TMPDIR")  # fmt: skip
#: characters of text one result may bring back; the rest is cut with a note
MAX_TEXT = 100_000
_STDERR_TAIL_LINES = 12


@dataclass(frozen=True, slots=True)
class RemoteTool:
    """One tool as an MCP server lists it (names are the server's own)."""

    name: str
    description: str
    input_schema: dict[str, Any]
    output_schema: dict[str, Any] | None
    #: hints such as ``readOnlyHint``, ``destructiveHint`` (camelCase, as on the wire)
    annotations: dict[str, Any]


class McpHub:
    """The live MCP connections of one run. Use it as ``async with McpHub() as hub``."""

    def __init__(self) -> None:
        self._stack: AsyncExitStack | None = None
        self._tg: TaskGroup | None = None
        self._sessions: dict[str, _Session] = {}
        self._locks: dict[str, anyio.Lock] = {}
        self._starts: dict[str, int] = {}

    async def __aenter__(self) -> McpHub:
        async with AsyncExitStack() as stack:
            self._tg = await stack.enter_async_context(anyio.create_task_group())
            self._stack = stack.pop_all()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool | None:
        for session in self._sessions.values():
            session.closing.set()
        stack, self._stack, self._tg = self._stack, None, None
        assert stack is not None, "McpHub left without being entered"
        if exc is None or isinstance(exc, anyio.get_cancelled_exc_class()):
            return await stack.__aexit__(exc_type, exc, traceback)
        # the run failed: close the servers, then let its error through as it is (a task
        # group would wrap it in an exception group)
        await stack.__aexit__(None, None, None)
        return None

    def running(self, key: str) -> bool:
        """Whether the server of ``key`` is connected now."""
        session = self._sessions.get(key)
        return session is not None and session.alive

    async def list_tools(
        self, key: str, server: McpServer, *, folder: Path | None = None
    ) -> list[RemoteTool]:
        """The tools of the server of ``key``, started (or connected to) if need be.
        ``folder`` is that of the spec declaring it: ``server.cwd`` is relative to it."""
        session = await self._session(key, server, folder)
        return list(session.tools.values())

    async def call(
        self,
        key: str,
        server: McpServer,
        remote: str,
        arguments: Mapping[str, Any],
        *,
        folder: Path | None = None,
    ) -> Any:
        """Call the tool ``remote`` of the server of ``key``: structured content when the
        server sends some, otherwise the text (parsed as JSON when the tool declares an
        output schema); images and other blobs as short descriptions."""
        session = await self._session(key, server, folder)
        client = session.client
        assert client is not None
        idempotency = IDEMPOTENCY_KEY.get()
        meta: Any = {MCP_META: idempotency} if idempotency is not None else None
        with anyio.move_on_after(server.call_timeout_s) as scope:
            try:
                result = await client.call_tool(remote, dict(arguments), meta=meta)
            except Exception as exc:  # the SDK boundary: put into words once, here
                raise session.call_error(remote, exc) from None
        if scope.cancelled_caught:
            raise ToolError(
                f"MCP tool '{remote}' of server '{key}' timed out after "
                f"{server.call_timeout_s:g} s",
                retryable=True,
            )
        known = session.tools.get(remote)
        return _output(result, structured=known is not None and known.output_schema is not None)

    async def _session(self, key: str, server: McpServer, folder: Path | None) -> _Session:
        if self._tg is None:
            raise RuntimeError("McpHub is used outside its 'async with' block")
        async with self._locks.setdefault(key, anyio.Lock()):
            session = self._sessions.get(key)
            if session is not None and session.alive:
                return session
            starts = self._starts.get(key, 0)
            if starts > MAX_RESTARTS:
                raise ToolError(
                    f"MCP server '{key}' was started {starts} times in this run and stopped "
                    "each time; it is not started again"
                )
            session = _Session(key, server, folder)
            await self._tg.start(session.run)
            # counted once started: a server that cannot be reached yet (retried by the
            # caller) does not use up the restarts of one that dies
            self._starts[key] = starts + 1
            self._sessions[key] = session
            return session


#: The hub of the run in progress: each run has its own (its own server processes), so one
#: prepared run can be executed many times at once.
CURRENT_HUB: ContextVar[McpHub | None] = ContextVar("kiln_mcp_hub", default=None)


class McpToolExecutor:
    """The executor of ``type: mcp`` tools, through a hub. ``target`` is the remote tool
    name (``None`` for a spec naming one tool with ``executor.tool``); ``folders`` maps
    tool spec names to the folders of their files."""

    def __init__(
        self, hub: McpHub | None = None, folders: Mapping[str, Path] | None = None
    ) -> None:
        self.hub = hub
        self.folders = dict(folders or {})

    async def call(
        self, tool: Tool, arguments: Mapping[str, Any], target: str | None = None
    ) -> Any:
        name = tool.metadata.name
        executor = tool.spec.executor
        if executor.type != "mcp":
            raise ToolError(f"tool '{name}' is not an MCP tool (executor type {executor.type})")
        remote = target or executor.tool
        if remote is None:
            raise ToolError(
                f"tool '{name}' imports every tool of its MCP server: call one of them by name"
            )
        hub = CURRENT_HUB.get() or self.hub
        if hub is None:
            raise ToolError(f"tool '{name}': no MCP session is open in this run")
        return await hub.call(
            name, executor.server, remote, arguments, folder=self.folders.get(name)
        )


class _Session:
    """One server connection, alive while :meth:`run` (a task of the hub) is."""

    def __init__(self, key: str, server: McpServer, folder: Path | None) -> None:
        self.key = key
        self.server = server
        self.folder = folder
        self.client: Client | None = None
        self.tools: dict[str, RemoteTool] = {}
        #: set to end the connection: by the hub, or when the server's output ends
        self.closing = anyio.Event()
        self._errlog: IO[str] | None = None
        self._stderr = ""

    @property
    def alive(self) -> bool:
        return self.client is not None and not self.closing.is_set()

    async def run(self, *, task_status: TaskStatus[None]) -> None:
        from mcp import Client

        started = False
        try:
            transport = self._transport()
            deadline = anyio.current_time() + self.server.startup_timeout_s
            with anyio.CancelScope(deadline=deadline) as scope:
                async with Client(transport) as client:
                    self.tools = await _list_tools(client)
                    scope.deadline = math.inf
                    self.client = client
                    started = True
                    task_status.started()
                    await self.closing.wait()
            if not started:
                raise ToolError(
                    f"MCP server '{self.key}' ({self._where()}) did not start within "
                    f"{self.server.startup_timeout_s:g} s{self.stderr_tail()}"
                )
        except Exception as exc:
            if not started:
                raise self._startup_error(exc) from None
            # the connection broke after start: the next call starts it again
        finally:
            self.client = None
            self.closing.set()
            self._close_errlog()

    # -- transports -----------------------------------------------------------------------

    def _transport(self) -> AbstractAsyncContextManager[TransportStreams]:
        if self.server.transport == "http":
            return _watched(_http(self.server), self.closing)
        from mcp import StdioServerParameters, stdio_client

        env = _environment(self.server.env)
        cwd = self._cwd()
        command = _resolve_command(self.key, self.server.command[0], env, cwd)
        self._errlog = tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace")
        parameters = StdioServerParameters(
            command=command, args=list(self.server.command[1:]), env=env, cwd=cwd
        )
        inner = stdio_client(parameters, errlog=cast(TextIO, self._errlog))
        return _watched(inner, self.closing)

    def _cwd(self) -> Path | None:
        if self.server.cwd is None:
            return self.folder
        cwd = Path(self.server.cwd).expanduser()
        if not cwd.is_absolute() and self.folder is not None:
            cwd = self.folder / cwd
        if not cwd.is_dir():
            raise ToolError(
                f"cannot start MCP server '{self.key}': its folder (cwd) {str(cwd)!r} "
                "does not exist"
            )
        return cwd

    def _where(self) -> str:
        if self.server.transport == "http":
            return f"at {self.server.url}"
        return f"command `{shlex.join(self.server.command)}`"

    # -- errors ---------------------------------------------------------------------------

    def stderr_tail(self) -> str:
        """The last lines the server wrote to stderr, as a suffix for a message ('' if none)."""
        if self._errlog is not None and not self._errlog.closed:
            self._stderr = _read_tail(self._errlog)
        if not self._stderr:
            return ""
        return "; the last lines of its stderr:\n" + self._stderr

    def _close_errlog(self) -> None:
        if self._errlog is not None:
            self._stderr = _read_tail(self._errlog)
            self._errlog.close()

    def _startup_error(self, exc: BaseException) -> ToolError:
        leaf = _leaf(exc)
        if isinstance(leaf, ToolError):
            return leaf
        where = self._where()
        if _is_closed(leaf):
            message = f"MCP server '{self.key}' ({where}) exited during start-up"
        elif isinstance(leaf, OSError) and self.server.transport == "stdio":
            message = f"cannot start MCP server '{self.key}' ({where}): {leaf}"
        elif _is_http_error(leaf):
            # the server may be on its way up: worth trying again later
            return ToolError(
                f"cannot reach MCP server '{self.key}' {where}: {_describe(leaf)}"
                + _unset_note(self.server),
                retryable=True,
            )
        else:
            message = f"MCP server '{self.key}' ({where}) failed to start: {_describe(leaf)}"
        return ToolError(message + self.stderr_tail() + _unset_note(self.server))

    def call_error(self, remote: str, exc: BaseException) -> ToolError:
        """A failed ``tools/call`` in words; a broken connection is closed so that the next
        call starts the server again."""
        from mcp import MCPError
        from mcp_types import REQUEST_TIMEOUT

        leaf = _leaf(exc)
        if _is_closed(leaf) or _is_http_error(leaf) or isinstance(leaf, OSError):
            self.closing.set()
            if self.server.transport == "http":
                return ToolError(
                    f"MCP server '{self.key}' {self._where()} could not be reached during the "
                    f"call to '{remote}' ({_describe(leaf)}); the next call connects again",
                    retryable=True,
                )
            return ToolError(
                f"MCP server '{self.key}' stopped during the call to '{remote}'; it is started "
                f"again on the next call{self.stderr_tail()}",
                retryable=True,
            )
        if isinstance(leaf, MCPError) and leaf.code == REQUEST_TIMEOUT:
            return ToolError(
                f"MCP tool '{remote}' of server '{self.key}' timed out", retryable=True
            )
        if isinstance(leaf, MCPError):
            if remote not in self.tools:
                return ToolError(
                    f"MCP server '{self.key}' has no tool '{remote}' "
                    f"(it has: {', '.join(sorted(self.tools)) or 'none'})"
                )
            return ToolError(f"MCP server '{self.key}' refused '{remote}': {leaf.message}")
        return ToolError(f"MCP tool '{remote}' of server '{self.key}' failed: {_describe(leaf)}")


# -- listing and results -----------------------------------------------------------------


async def _list_tools(client: Client) -> dict[str, RemoteTool]:
    tools: dict[str, RemoteTool] = {}
    cursor: str | None = None
    for _ in range(1000):  # a server whose cursor never ends cannot hang the start
        page = await client.list_tools(cursor=cursor)
        for tool in page.tools:
            annotations = tool.annotations
            tools[tool.name] = RemoteTool(
                name=tool.name,
                description=tool.description or tool.title or "",
                input_schema=dict(tool.input_schema),
                output_schema=None if tool.output_schema is None else dict(tool.output_schema),
                annotations={}
                if annotations is None
                else annotations.model_dump(by_alias=True, exclude_none=True),
            )
        cursor = page.next_cursor
        if cursor is None:
            break
    return tools


def _output(result: CallToolResult, *, structured: bool) -> Any:
    if result.structured_content is not None and not result.is_error:
        return result.structured_content
    parts = [_block(block) for block in result.content]
    texts = [part for part in parts if isinstance(part, str)]
    if result.is_error:
        raise ToolError("\n".join(texts) or "the MCP tool reported an error without a message")
    if len(texts) == len(parts):
        text = _cap("\n".join(texts))
        if structured:
            try:
                return json.loads(text)
            except ValueError:
                pass
        return text
    return parts[0] if len(parts) == 1 else parts


def _block(block: ContentBlock) -> str | dict[str, Any]:
    """A content block as an observation: text as is, binary data only described."""
    from mcp_types import (
        AudioContent,
        EmbeddedResource,
        ImageContent,
        ResourceLink,
        TextContent,
        TextResourceContents,
    )

    if isinstance(block, TextContent):
        return block.text
    if isinstance(block, ImageContent | AudioContent):
        return {"type": block.type, "mime_type": block.mime_type, "bytes": _size(block.data)}
    if isinstance(block, ResourceLink):
        return {"type": "resource_link", "uri": str(block.uri), "name": block.name}
    if isinstance(block, EmbeddedResource):
        resource = block.resource
        described: dict[str, Any] = {"type": "resource", "uri": str(resource.uri)}
        if resource.mime_type:
            described["mime_type"] = resource.mime_type
        if isinstance(resource, TextResourceContents):
            described["text"] = _cap(resource.text)
        else:
            described["bytes"] = _size(resource.blob)
        return described
    return {"type": getattr(block, "type", type(block).__name__)}


def _size(base64_data: str) -> int:
    return len(base64_data) * 3 // 4


def _cap(text: str) -> str:
    if len(text) <= MAX_TEXT:
        return text
    return f"{text[:MAX_TEXT]}\n[... {len(text) - MAX_TEXT} more characters cut]"


# -- transports ----------------------------------------------------------------------------


@asynccontextmanager
async def _http(server: McpServer) -> AsyncIterator[TransportStreams]:
    import httpx2
    from mcp.client.streamable_http import streamable_http_client

    from runtime.envrefs import env_value, resolve_env

    assert server.url is not None
    url = env_value(server.url)  # ${env:NAME} in the URL, as everywhere else
    if url is None:
        raise ToolError(
            f"the MCP server's url {server.url!r} names an environment variable that is not "
            "set"
        )
    headers = resolve_env(server.headers)
    # the SDK's default timeouts: a response stream may stay open for minutes
    timeout = httpx2.Timeout(30, read=300)
    async with httpx2.AsyncClient(headers=headers, timeout=timeout) as http:
        async with streamable_http_client(url, http_client=http) as streams:
            yield streams


@asynccontextmanager
async def _watched(
    transport: AbstractAsyncContextManager[TransportStreams], ended: anyio.Event
) -> AsyncIterator[TransportStreams]:
    """The transport's streams, with ``ended`` set when the server's side ends (a stdio
    server that exits), so the hub closes the connection without waiting for a call."""
    async with transport as (read, write):
        yield _EndSignal(read, ended), write


class _EndSignal:
    """A read stream that sets an event when it reaches its end."""

    def __init__(self, inner: ReadStream[SessionMessage | Exception], ended: anyio.Event):
        self._inner = inner
        self._ended = ended

    @property
    def last_context(self) -> Any:
        # the SDK reads the sender's context from here when the stream carries one
        return getattr(self._inner, "last_context", None)

    async def receive(self) -> SessionMessage | Exception:
        try:
            return await self._inner.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError):
            self._ended.set()
            raise

    async def aclose(self) -> None:
        await self._inner.aclose()

    def __aiter__(self) -> _EndSignal:
        return self

    async def __anext__(self) -> SessionMessage | Exception:
        try:
            return await self.receive()
        except anyio.EndOfStream:
            raise StopAsyncIteration from None

    async def __aenter__(self) -> _EndSignal:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


def _environment(extra: Mapping[str, str]) -> dict[str, str]:
    from runtime.envrefs import resolve_env

    env = {name: os.environ[name] for name in INHERITED_ENV if name in os.environ}
    env.update(resolve_env(dict(extra)))
    return env


def _resolve_command(key: str, command: str, env: Mapping[str, str], cwd: Path | None) -> str:
    if os.sep in command:
        path = Path(command).expanduser()
        if not path.is_absolute() and cwd is not None:
            path = cwd / path
        found = str(path) if os.access(path, os.X_OK) and path.is_file() else None
    else:
        # then beside kiln's own interpreter: servers installed with pip into kiln's
        # virtualenv work without activating it
        search = os.pathsep.join((env.get("PATH", os.defpath), str(Path(sys.executable).parent)))
        found = shutil.which(command, path=search)
    if found is None:
        raise ToolError(f"cannot start MCP server '{key}': command '{command}' not found")
    return found


def _unset_note(server: McpServer) -> str:
    from compiler.secrets import ENV_REF

    names = sorted(
        {
            name
            for value in (*server.env.values(), *server.headers.values(), server.url or "")
            for name in ENV_REF.findall(value)
            if name not in os.environ
        }
    )
    if not names:
        return ""
    return f"\n(environment variables not set, so left out: {', '.join(names)})"


# -- errors --------------------------------------------------------------------------------


def _read_tail(errlog: IO[str]) -> str:
    fd = errlog.fileno()
    size = os.fstat(fd).st_size
    start = max(0, size - 4096)
    data = os.pread(fd, size - start, start).decode("utf-8", errors="replace")
    lines = [line.rstrip() for line in data.splitlines() if line.strip()]
    return "\n".join(lines[-_STDERR_TAIL_LINES:])


def _leaf(exc: BaseException) -> BaseException:
    """The first real error inside exception groups (task groups wrap what they raise)."""
    while isinstance(exc, BaseExceptionGroup):
        exc = exc.exceptions[0]
    return exc


def _is_closed(exc: BaseException) -> bool:
    from mcp import MCPError
    from mcp_types import CONNECTION_CLOSED

    if isinstance(exc, MCPError):
        return exc.code == CONNECTION_CLOSED
    return isinstance(exc, anyio.BrokenResourceError | anyio.ClosedResourceError | EOFError)


def _is_http_error(exc: BaseException) -> bool:
    import httpx2

    return isinstance(exc, httpx2.TransportError | httpx2.HTTPStatusError)


def _describe(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__
