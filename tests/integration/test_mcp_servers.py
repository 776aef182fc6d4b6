"""The MCP client against real servers: from PyPI (time, fetch, git), from npm (everything,
filesystem) and the SDK echo server of tests/fixtures, over stdio and streamable HTTP."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Any

import anyio
import pytest

from runtime.tools import ToolError
from runtime.tools import mcp as mcp_tools
from runtime.tools.mcp import McpHub, McpToolExecutor, RemoteTool
from specs import Tool
from specs.tool import McpServer
from tests.mcp_servers import (
    COMMIT_MESSAGE,
    ECHO,
    PAGE_TEXT,
    PYTHON,
    child_processes,
    echo_http,
    existing,
    free_port,
    git_repo,
    npm_bin,
    python_server,
    start_echo_http,
    stop,
    web_page,
)

pytestmark = pytest.mark.anyio

__all__ = ["echo_http", "git_repo", "npm_bin", "web_page"]  # fixtures, used by name


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def stdio(*command: str, **settings: Any) -> McpServer:
    return McpServer(command=command, **settings)


def by_name(tools: list[RemoteTool]) -> dict[str, RemoteTool]:
    return {tool.name: tool for tool in tools}


# -- real servers ---------------------------------------------------------------------------


async def test_time_server_lists_and_answers() -> None:
    server = stdio(*python_server("mcp-server-time"))
    async with McpHub() as hub:
        tools = by_name(await hub.list_tools("time", server))
        assert {"get_current_time", "convert_time"} <= set(tools)
        current = tools["get_current_time"]
        assert "timezone" in current.input_schema["properties"]
        assert current.annotations.get("readOnlyHint") is True
        now = await hub.call("time", server, "get_current_time", {"timezone": "Asia/Tokyo"})
        assert now["timezone"] == "Asia/Tokyo"
        assert now["datetime"].endswith("+09:00")
        with pytest.raises(ToolError, match="Invalid timezone") as error:
            await hub.call("time", server, "get_current_time", {"timezone": "Mars/Olympus"})
        assert not error.value.retryable


async def test_fetch_server_reads_a_local_page(web_page: str) -> None:
    server = stdio(*python_server("mcp-server-fetch"), "--allow-private-ips")
    async with McpHub() as hub:
        assert "fetch" in by_name(await hub.list_tools("fetch", server))
        page = await hub.call("fetch", server, "fetch", {"url": web_page})
        assert isinstance(page, str)
        assert PAGE_TEXT in page


async def test_git_server_on_a_temporary_repository(git_repo: Path) -> None:
    server = stdio(*python_server("mcp-server-git"), "--repository", str(git_repo))
    async with McpHub() as hub:
        assert {"git_log", "git_status"} <= set(by_name(await hub.list_tools("git", server)))
        log = await hub.call("git", server, "git_log", {"repo_path": str(git_repo)})
        assert COMMIT_MESSAGE in log
        status = await hub.call("git", server, "git_status", {"repo_path": str(git_repo)})
        assert "notes.txt" in status


async def test_npm_everything_server(npm_bin: Path) -> None:
    server = stdio(str(npm_bin / "mcp-server-everything"))
    async with McpHub() as hub:
        tools = by_name(await hub.list_tools("everything", server))
        assert {"echo", "get-sum", "get-tiny-image"} <= set(tools)
        assert await hub.call("everything", server, "echo", {"message": "hello"}) == "Echo: hello"
        total = await hub.call("everything", server, "get-sum", {"a": 2, "b": 3})
        assert "5" in total
        image = await hub.call("everything", server, "get-tiny-image", {})
        # text around an image: the image is described, never inlined as base64
        described = [part for part in image if isinstance(part, dict)]
        assert described and described[0]["type"] == "image"
        assert described[0]["mime_type"] == "image/png"
        assert described[0]["bytes"] > 0
        assert len(json.dumps(image)) < 1000


async def test_npm_filesystem_server(npm_bin: Path, tmp_path: Path) -> None:
    (tmp_path / "kiln.md").write_text("# Firing log\ncone 6, 9 hours\n", encoding="utf-8")
    server = stdio(str(npm_bin / "mcp-server-filesystem"), str(tmp_path))
    async with McpHub() as hub:
        tools = by_name(await hub.list_tools("files", server))
        assert tools["read_text_file"].output_schema is not None
        listing = await hub.call("files", server, "list_directory", {"path": str(tmp_path)})
        assert "[FILE] kiln.md" in listing["content"]
        text = await hub.call(
            "files", server, "read_text_file", {"path": str(tmp_path / "kiln.md")}
        )
        assert "cone 6, 9 hours" in text["content"]
        with pytest.raises(ToolError, match="denied|outside"):
            await hub.call("files", server, "read_text_file", {"path": "/etc/hostname"})


async def test_echo_server_over_streamable_http(
    echo_http: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KILN_TEST_TOKEN", "t0k3n")
    server = McpServer(
        transport="http", url=echo_http, headers={"Authorization": "Bearer ${env:KILN_TEST_TOKEN}"}
    )
    async with McpHub() as hub:
        tools = by_name(await hub.list_tools("echo", server))
        assert {"echo", "add", "header"} <= set(tools)
        assert await hub.call("echo", server, "add", {"a": 20, "b": 22}) == {"total": 42}
        sent = await hub.call("echo", server, "header", {"name": "authorization"})
        assert sent == {"result": "Bearer t0k3n"}
        with pytest.raises(ToolError, match="rejected on purpose"):
            await hub.call("echo", server, "fail", {"message": "rejected on purpose"})


async def test_unreachable_http_server_is_named() -> None:
    server = McpServer(transport="http", url="http://127.0.0.1:9/mcp", startup_timeout_s=5)
    async with McpHub() as hub:
        with pytest.raises(
            ToolError, match=r"cannot reach MCP server 'far' at http://127\.0\.0"
        ) as e:
            await hub.list_tools("far", server)
        assert e.value.retryable


async def test_http_server_gone_then_back_is_reconnected() -> None:
    port = free_port()
    server = McpServer(transport="http", url=f"http://127.0.0.1:{port}/mcp")
    process = start_echo_http(port)
    try:
        async with McpHub() as hub:
            assert await hub.call("web", server, "echo", {"text": "one"}) == {"result": "one"}
            stop(process)
            with pytest.raises(ToolError, match="could not be reached during the call") as error:
                await hub.call("web", server, "echo", {"text": "two"})
            assert error.value.retryable
            assert not hub.running("web")
            process = start_echo_http(port)
            assert await hub.call("web", server, "echo", {"text": "three"}) == {"result": "three"}
    finally:
        stop(process)


# -- the stdio process: environment, folder --------------------------------------------------


async def test_stdio_environment_is_minimal_plus_declared(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KILN_TEST_GREETING", "hello")
    monkeypatch.setenv("KILN_TEST_SECRET", "must not leak")
    (tmp_path / "work").mkdir()
    server = stdio(*ECHO, env={"GREETING": "${env:KILN_TEST_GREETING}", "MODE": "test"}, cwd="work")
    async with McpHub() as hub:
        call = hub.call

        async def env(name: str) -> Any:
            return await call("echo", server, "env", {"name": name}, folder=tmp_path)

        assert await env("GREETING") == {"result": "hello"}
        assert await env("MODE") == {"result": "test"}
        assert await env("KILN_TEST_SECRET") == {"result": ""}
        assert await env("PATH") != {"result": ""}
        cwd = await hub.call("echo", server, "cwd", {}, folder=tmp_path)
        assert cwd == {"result": str(tmp_path / "work")}


async def test_executor_calls_the_tool_a_spec_names(tmp_path: Path) -> None:
    def spec(name: str, **executor: Any) -> Tool:
        return Tool.model_validate(
            {
                "apiVersion": "kiln/v1",
                "kind": "Tool",
                "metadata": {"name": name},
                "spec": {
                    "executor": {"type": "mcp", "server": {"command": list(ECHO)}, **executor}
                },
            }
        )

    async with McpHub() as hub:
        executor = McpToolExecutor(hub, folders={"shout": tmp_path})
        one = spec("shout", tool="echo")
        assert await executor.call(one, {"text": "hi"}) == {"result": "hi"}
        everything = spec("echoes")
        assert await executor.call(everything, {"a": 1, "b": 2}, target="add") == {"total": 3}
        with pytest.raises(ToolError, match="call one of them by name"):
            await executor.call(everything, {})
        # one server per spec name, each started once
        assert hub.running("shout") and hub.running("echoes")


# -- errors -------------------------------------------------------------------------------------


async def test_missing_command() -> None:
    async with McpHub() as hub:
        with pytest.raises(ToolError) as error:
            await hub.list_tools("ghost", stdio("kiln-no-such-mcp-server", "--stdio"))
    assert str(error.value) == (
        "cannot start MCP server 'ghost': command 'kiln-no-such-mcp-server' not found"
    )


async def test_server_exiting_at_start_says_why() -> None:
    script = "import sys; sys.stderr.write('config error: BRAVE_API_KEY is empty\\n'); sys.exit(2)"
    async with McpHub() as hub:
        with pytest.raises(ToolError) as error:
            await hub.list_tools("brave", stdio(PYTHON, "-c", script))
    message = str(error.value)
    assert message.startswith("MCP server 'brave' (command `")
    assert "exited during start-up" in message
    assert message.endswith("config error: BRAVE_API_KEY is empty")


async def test_server_that_never_answers_times_out_at_start() -> None:
    # reads its stdin to the end without answering: closing stdin ends it at once
    server = stdio(PYTHON, "-c", "import sys; sys.stdin.read()", startup_timeout_s=0.5)
    async with McpHub() as hub:
        with pytest.raises(ToolError, match=r"'mute' \(command `.*`\) did not start within 0.5 s"):
            await hub.list_tools("mute", server)
        assert not hub.running("mute")


async def test_tool_error_and_unknown_tool() -> None:
    async with McpHub() as hub:
        with pytest.raises(ToolError) as failed:
            await hub.call("echo", stdio(*ECHO), "fail", {"message": "the kiln is cold"})
        assert "the kiln is cold" in str(failed.value)
        assert not failed.value.retryable
        with pytest.raises(ToolError, match="Unknown tool: glaze"):
            await hub.call("echo", stdio(*ECHO), "glaze", {})


async def test_call_timeout_is_retryable_and_the_server_stays() -> None:
    server = stdio(*ECHO, call_timeout_s=0.5)
    async with McpHub() as hub:
        before = await hub.call("echo", server, "pid", {})
        with anyio.fail_after(10):
            with pytest.raises(ToolError) as error:
                await hub.call("echo", server, "nap", {"seconds": 30})
        assert str(error.value) == "MCP tool 'nap' of server 'echo' timed out after 0.5 s"
        assert error.value.retryable
        assert await hub.call("echo", server, "pid", {}) == before


async def test_server_killed_while_idle_is_started_again() -> None:
    server = stdio(*ECHO)
    async with McpHub() as hub:
        first = (await hub.call("echo", server, "pid", {}))["result"]
        os.kill(first, signal.SIGKILL)
        for _ in range(500):  # the hub notices the end of the server's output
            if not hub.running("echo"):
                break
            await anyio.sleep(0.02)
        assert not hub.running("echo")
        second = (await hub.call("echo", server, "pid", {}))["result"]
        assert second != first
        assert await hub.call("echo", server, "echo", {"text": "back"}) == {"result": "back"}


async def test_server_dying_in_a_call_is_retryable_then_restarted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(mcp_tools, "MAX_RESTARTS", 1)
    server = stdio(*ECHO)
    async with McpHub() as hub:
        first = await hub.call("echo", server, "pid", {})
        with pytest.raises(ToolError) as error:
            await hub.call("echo", server, "crash", {})
        assert error.value.retryable
        assert "stopped during the call to 'crash'" in str(error.value)
        assert str(error.value).endswith("crashing on purpose")
        assert await hub.call("echo", server, "pid", {}) != first
        with pytest.raises(ToolError):
            await hub.call("echo", server, "crash", {})
        with pytest.raises(ToolError, match="started 2 times in this run and stopped each time"):
            await hub.call("echo", server, "pid", {})


async def test_concurrent_first_uses_share_one_start() -> None:
    server = stdio(*ECHO)
    pids: list[Any] = []

    async def pid(hub: McpHub) -> None:
        pids.append(await hub.call("echo", server, "pid", {}))

    async with McpHub() as hub:
        async with anyio.create_task_group() as tg:
            for _ in range(4):
                tg.start_soon(pid, hub)
    assert len(pids) == 4
    assert len({p["result"] for p in pids}) == 1


async def test_cancelling_the_run_closes_every_server(npm_bin: Path) -> None:
    before = child_processes()
    servers = {
        "echo": stdio(*ECHO),
        "time": stdio(*python_server("mcp-server-time")),
        "everything": stdio(str(npm_bin / "mcp-server-everything")),
    }
    napping = anyio.Event()

    async def nap(hub: McpHub) -> None:
        napping.set()
        await hub.call("echo", servers["echo"], "nap", {"seconds": 60})

    with anyio.fail_after(20):
        with anyio.CancelScope() as run:
            async with McpHub() as hub:
                for key, server in servers.items():
                    await hub.list_tools(key, server)
                started = child_processes() - before
                async with anyio.create_task_group() as tg:
                    tg.start_soon(nap, hub)
                    await napping.wait()
                    await anyio.sleep(0.2)
                    run.cancel()
    assert run.cancelled_caught
    assert len(started) == 3
    # every server process is gone, reaped (no zombie left behind)
    assert not started & child_processes()
    assert not existing(started)


async def test_an_error_in_the_run_passes_through_and_closes_servers() -> None:
    before = child_processes()
    started: set[int] = set()
    with pytest.raises(ValueError, match="the run failed"):
        async with McpHub() as hub:
            await hub.list_tools("echo", stdio(*ECHO))
            started = child_processes() - before
            raise ValueError("the run failed")
    assert len(started) == 1
    assert not existing(started)


async def test_hub_needs_async_with() -> None:
    with pytest.raises(RuntimeError, match="outside its 'async with' block"):
        await McpHub().list_tools("echo", stdio(*ECHO))


async def test_an_env_reference_in_the_url_is_read_like_everywhere_else(
    echo_http: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """#12 item 9: ``${env:NAME}`` in an MCP server's url passed validate and then failed
    at run time; it is read from the environment, and a missing one is named."""
    port = echo_http.rsplit(":", 1)[1].split("/")[0]
    monkeypatch.setenv("KILN_TEST_MCP_PORT", port)
    server = McpServer(transport="http", url="http://127.0.0.1:${env:KILN_TEST_MCP_PORT}/mcp")
    async with McpHub() as hub:
        assert await hub.call("echo", server, "add", {"a": 1, "b": 2}) == {"total": 3}
    monkeypatch.delenv("KILN_TEST_MCP_PORT")
    async with McpHub() as hub:
        with pytest.raises(ToolError, match="KILN_TEST_MCP_PORT") as caught:
            await hub.list_tools("echo", server)
    assert port not in str(caught.value)
