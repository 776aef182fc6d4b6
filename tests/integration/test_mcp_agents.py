"""Agents calling real MCP servers' tools in runs with the scripted model: each server is
wrapped by one short Tool document, its tools are listed, found by a query, and called.

The servers are real: mcp-server-time, mcp-server-fetch (against a local page, with
``--allow-private-ips``) and mcp-server-git from PyPI, server-everything and
server-filesystem from npm (installed by the session fixture of tests/mcp_servers.py).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest

from compiler.pipeline import compile_paths
from runtime.run import RunSetupError, execute, prepare
from runtime.tools.finder import ToolFinder
from runtime.tools.mcp import McpHub
from runtime.tools.registry import Registry
from tests.helpers import WriteSpecs
from tests.mcp_servers import PAGE_TEXT, python_server
from tests.runtime_kit import Ran, run_specs

__all__ = ["git_repo", "npm_bin", "web_page"]  # fixtures, used by name

from tests.mcp_servers import git_repo, npm_bin, web_page  # noqa: E402


def server_spec(name: str, command: tuple[str, ...] | list[str], tool: str | None = None) -> str:
    """One short Tool document wrapping a server, as a user writes it."""
    line = f"    tool: {tool}\n" if tool else ""
    return (
        "apiVersion: kiln/v1\n"
        "kind: Tool\n"
        f"metadata: {{name: {name}}}\n"
        "spec:\n"
        "  executor:\n"
        "    type: mcp\n"
        f"    server: {{command: {json.dumps(list(command))}}}\n" + line
    )


def agent_spec(name: str, tools: str, extra: str = "") -> str:
    return (
        "apiVersion: kiln/v1\n"
        "kind: Agent\n"
        f"metadata: {{name: {name}}}\n"
        "spec:\n"
        "  instructions: Use your tools.\n"
        f"  tools: {tools}\n" + extra
    )


def listed(folder: Path) -> Registry:
    compilation = compile_paths([folder])
    assert compilation.ok and compilation.program is not None, compilation.errors
    registry = Registry(compilation.program)

    async def load() -> None:
        async with McpHub() as hub:
            assert await registry.load(hub) == []

    anyio.run(load)
    return registry


def tool_results(ran: Ran) -> list[dict[str, Any]]:
    return [dict(e.data) for e in ran.of("tool.result")]


def test_time_server_tools_listed_found_and_called(write_specs: WriteSpecs) -> None:
    folder = write_specs(
        **{
            "time.yaml": server_spec(
                "time", [*python_server("mcp-server-time"), "--local-timezone", "UTC"]
            ),
            "agent.yaml": agent_spec("clock", "[time]"),
        }
    )
    registry = listed(folder)
    assert {"time__get_current_time", "time__convert_time"} <= set(registry.names_of("time") or ())
    hits = ToolFinder(registry).search("what time is it now in a time zone", 3)
    assert "time__get_current_time" in [h.name for h in hits]

    ran = run_specs(
        folder,
        """
        clock:
          - tool: time__convert_time
            input: {source_timezone: Europe/Paris, time: "12:00", target_timezone: Asia/Tokyo}
          - final: converted
        """,
        agent="clock",
        text="noon in Paris, in Tokyo?",
    )
    assert ran.result.status == "succeeded", ran.result.error
    (result,) = tool_results(ran)
    assert result["status"] == "ok"
    output = result["output"]
    assert isinstance(output, dict)
    assert output["target"]["timezone"] == "Asia/Tokyo"
    assert output["target"]["datetime"].endswith("T20:00:00+09:00")  # Paris is UTC+1 in winter


def test_fetch_server_reads_a_local_page(write_specs: WriteSpecs, web_page: str) -> None:
    command = [*python_server("mcp-server-fetch"), "--allow-private-ips", "--ignore-robots-txt"]
    folder = write_specs(
        **{
            "fetch.yaml": server_spec("web", command, tool="fetch"),
            "agent.yaml": agent_spec("reader", "[web]"),
        }
    )
    ran = run_specs(
        folder,
        f"""
        reader:
          - tool: web
            input: {{url: "{web_page}"}}
          - final: read it
        """,
        agent="reader",
        text="read the page",
    )
    assert ran.result.status == "succeeded", ran.result.error
    (result,) = tool_results(ran)
    assert result["status"] == "ok", result
    assert PAGE_TEXT in json.dumps(result["output"])


def test_git_server_on_a_temporary_repository(write_specs: WriteSpecs, git_repo: Path) -> None:
    folder = write_specs(
        **{
            "git.yaml": server_spec("git", python_server("mcp-server-git")),
            "agent.yaml": agent_spec("historian", "[git]"),
        }
    )
    registry = listed(folder)
    hits = ToolFinder(registry).search("show the commit history log of a repository", 5)
    assert "git__git_log" in [h.name for h in hits]
    ran = run_specs(
        folder,
        f"""
        historian:
          - tool: git__git_log
            input: {{repo_path: "{git_repo}"}}
          - final: logged
        """,
        agent="historian",
        text="what changed?",
    )
    assert ran.result.status == "succeeded", ran.result.error
    (result,) = tool_results(ran)
    assert "Add the glaze recipe" in json.dumps(result["output"])


def test_npm_servers_everything_and_filesystem(
    write_specs: WriteSpecs, npm_bin: Path, tmp_path: Path
) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "notes.txt").write_text("glaze: cone 6\n", encoding="utf-8")
    folder = write_specs(
        **{
            "everything.yaml": server_spec("everything", [str(npm_bin / "mcp-server-everything")]),
            "fs.yaml": server_spec("fs", [str(npm_bin / "mcp-server-filesystem"), str(shared)]),
            "agent.yaml": agent_spec("clerk", "[everything, fs]"),
        }
    )
    registry = listed(folder)
    names = set(registry.names_of("everything") or ()) | set(registry.names_of("fs") or ())
    assert "everything__echo" in names and "fs__read_text_file" in names
    hits = ToolFinder(registry).search("read the contents of a text file", 5)
    assert any(h.name.startswith("fs__read") for h in hits), hits
    ran = run_specs(
        folder,
        f"""
        clerk:
          - tool: everything__echo
            input: {{message: kiln says hello}}
          - tool: fs__read_text_file
            input: {{path: "{shared / "notes.txt"}"}}
          - final: done
        """,
        agent="clerk",
        text="echo, then read",
    )
    assert ran.result.status == "succeeded", ran.result.error
    echo, read = tool_results(ran)
    assert "kiln says hello" in json.dumps(echo["output"])
    assert "cone 6" in json.dumps(read["output"])


def test_an_agent_discovers_a_server_tool_and_calls_it(write_specs: WriteSpecs) -> None:
    folder = write_specs(
        **{
            "time.yaml": server_spec(
                "time", [*python_server("mcp-server-time"), "--local-timezone", "UTC"]
            ),
            "agent.yaml": agent_spec(
                "seeker", "[]", "  tool_discovery: {enabled: true, top_k: 3}\n"
            ),
        }
    )
    ran = run_specs(
        folder,
        """
        seeker:
          - tool: find_tools
            input: {query: current time in a time zone}
          - tool: time__get_current_time
            input: {timezone: Europe/Paris}
          - final: found and called
        """,
        agent="seeker",
        text="what time is it in Paris?",
    )
    assert ran.result.status == "succeeded", ran.result.error
    found, called = tool_results(ran)
    assert "time__get_current_time" in [t["name"] for t in found["output"]["tools"]]
    assert called["status"] == "ok"
    assert called["output"]["timezone"] == "Europe/Paris"


def test_a_script_calling_a_tool_the_server_lacks_is_refused_before_the_run(
    write_specs: WriteSpecs,
) -> None:
    folder = write_specs(
        **{
            "time.yaml": server_spec("time", python_server("mcp-server-time")),
            "agent.yaml": agent_spec("clock", "[time]"),
        }
    )
    with pytest.raises(RunSetupError) as caught:
        run_specs(folder, "clock:\n  - {tool: time__teleport, input: {}}\n", agent="clock")
    assert "time__teleport" in str(caught.value)
    assert "time__get_current_time" in str(caught.value)


def test_kiln_tools_list_and_search_show_server_tools(write_specs: WriteSpecs) -> None:
    folder = write_specs(
        **{
            "time.yaml": server_spec(
                "time", [*python_server("mcp-server-time"), "--local-timezone", "UTC"]
            )
        }
    )
    kiln = [sys.executable, "-m", "runtime.cli"]
    listing = subprocess.run(
        [*kiln, "tools", "list", str(folder), "--json"], capture_output=True, text=True, check=False
    )
    assert listing.returncode == 0, listing.stderr
    rows = {r["name"]: r for r in json.loads(listing.stdout)}
    assert rows["time__get_current_time"]["qualified"] == "time.get_current_time"
    assert rows["time__get_current_time"]["origin"] == "mcp"
    search = subprocess.run(
        [*kiln, "tools", "search", "convert a time between time zones", str(folder), "-k", "2"],
        capture_output=True,
        text=True,
        check=False,
        cwd=folder,
    )
    assert search.returncode == 0, search.stderr
    first = search.stdout.splitlines()[0].split()
    assert first[0] == "time__convert_time"
    assert 0 < float(first[1]) <= 1


def test_one_prepared_run_executed_twice_at_once_each_with_its_own_servers(
    write_specs: WriteSpecs, tmp_path: Path
) -> None:
    folder = write_specs(
        **{
            "time.yaml": server_spec(
                "time", [*python_server("mcp-server-time"), "--local-timezone", "UTC"]
            ),
            "agent.yaml": agent_spec("clock", "[time]"),
        }
    )
    script = tmp_path / "turns.yaml"
    script.write_text(
        "clock:\n"
        "  - {tool: time__get_current_time, input: {timezone: Asia/Tokyo}}\n"
        "  - {final: done}\n",
        encoding="utf-8",
    )
    prepared = prepare([folder], agent="clock", text="now?", model=f"scripted:{script}")
    results: list[Any] = []

    async def both() -> None:
        async def one() -> None:
            results.append(await execute(prepared))

        async with anyio.create_task_group() as group:
            group.start_soon(one)
            group.start_soon(one)

    anyio.run(both)
    assert [r.status for r in results] == ["succeeded", "succeeded"], [r.error for r in results]
    assert prepared.runner.registry.unlisted() == []  # listed once, by whichever came first


def test_a_server_spec_can_offer_a_subset_of_its_tools(write_specs: WriteSpecs) -> None:
    command = [*python_server("mcp-server-time"), "--local-timezone", "UTC"]
    subset = server_spec("clock", command) + "    tools: [get_current_time]\n"
    registry = listed(write_specs(**{"time.yaml": subset}))
    assert registry.names_of("clock") == frozenset({"clock__get_current_time"})

    wrong = server_spec("clock", command) + "    tools: [get_current_time, get_weather]\n"
    compilation = compile_paths([write_specs(**{"time.yaml": wrong})])
    assert compilation.program is not None
    registry = Registry(compilation.program)

    async def load() -> list[Any]:
        async with McpHub() as hub:
            return list(await registry.load(hub))

    (problem,) = anyio.run(load)
    assert "no tool 'get_weather'" in problem.message and "get_current_time" in problem.message


def test_tool_and_tools_together_are_refused(write_specs: WriteSpecs) -> None:
    spec = server_spec("clock", ["unused"], tool="a") + "    tools: [b]\n"
    compilation = compile_paths([write_specs(**{"time.yaml": spec})])
    assert not compilation.ok
    assert any("either 'tool'" in d.message for d in compilation.diagnostics)
