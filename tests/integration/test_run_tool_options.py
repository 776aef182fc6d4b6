"""`kiln run`'s tool options, through the real `kiln` process: --allow-host opens a host to
http_get, --workspace is where the file tools work, --tool-cache keeps results in a real
Redis, and bad values are usage errors."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import WriteSpecs
from tests.mcp_servers import PAGE_TEXT, web_page
from tests.redis_server import RedisServer

__all__ = ["web_page"]  # a fixture, used by name

KILN = [sys.executable, "-m", "runtime.cli"]


def kiln(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*KILN, *args], capture_output=True, text=True, cwd=cwd, timeout=120, check=False
    )


def agent_with(tools: str) -> str:
    return (
        "apiVersion: kiln/v1\nkind: Agent\nmetadata: {name: worker}\nspec:\n"
        f"  instructions: Work.\n  tools: {tools}\n"
    )


def script(folder: Path, text: str) -> str:
    path = folder.parent / f"{folder.name}.script.yaml"
    path.write_text(text, encoding="utf-8")
    return f"scripted:{path}"


def events(path: Path, type: str) -> list[dict[str, object]]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return [e["data"] for e in map(json.loads, lines) if e["type"] == type]


def test_allow_host_opens_a_host_to_http_get(write_specs: WriteSpecs, web_page: str) -> None:
    folder = write_specs(**{"agent.yaml": agent_with("[http_get]")})
    model = script(
        folder,
        f"worker:\n  - {{tool: http_get, input: {{url: '{web_page}'}}}}\n  - {{final: read}}\n",
    )
    refused = folder / "refused.jsonl"
    ran = kiln("run", str(folder), "--input", "x", "--model", model, "--no-trace",
               "--events", str(refused), cwd=folder)  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    (result,) = events(refused, "tool.result")
    assert result["status"] == "error" and "--allow-host" in str(result["error"])

    allowed = folder / "allowed.jsonl"
    ran = kiln("run", str(folder), "--input", "x", "--model", model, "--no-trace",
               "--allow-host", "127.0.0.1", "--events", str(allowed), cwd=folder)  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    (result,) = events(allowed, "tool.result")
    assert result["status"] == "ok", result
    assert PAGE_TEXT in json.dumps(result["output"])


def test_the_file_tools_work_in_the_given_workspace(
    write_specs: WriteSpecs, tmp_path: Path
) -> None:
    folder = write_specs(**{"agent.yaml": agent_with("[file_write, file_read]")})
    workspace = tmp_path / "desk"
    model = script(
        folder,
        "worker:\n"
        "  - {tool: file_write, input: {path: notes/plan.txt, content: fire at cone 6}}\n"
        "  - {tool: file_read, input: {path: notes/plan.txt}}\n"
        "  - {tool: file_read, input: {path: ../../etc/passwd}}\n"
        "  - {final: done}\n",
    )
    log = tmp_path / "events.jsonl"
    ran = kiln("run", str(folder), "--input", "x", "--model", model, "--no-trace",
               "--workspace", str(workspace), "--events", str(log), cwd=folder)  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    assert (workspace / "notes" / "plan.txt").read_text(encoding="utf-8") == "fire at cone 6"
    wrote, read, escaped = events(log, "tool.result")
    assert wrote["status"] == "ok" and read["status"] == "ok"
    assert "fire at cone 6" in json.dumps(read["output"])
    assert escaped["status"] == "error" and "workspace" in str(escaped["error"])


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    with RedisServer.started(tmp_path / "redis") as server:
        yield server.url


def test_tool_results_are_cached_in_redis_across_runs(
    write_specs: WriteSpecs, redis_url: str, tmp_path: Path
) -> None:
    folder = write_specs(**{"agent.yaml": agent_with("[calculator]")})
    model = script(
        folder, "worker:\n  - {tool: calculator, input: {expression: 6 * 7}}\n  - {final: '42'}\n"
    )
    cached = []
    for n in range(2):
        log = tmp_path / f"run{n}.jsonl"
        ran = kiln("run", str(folder), "--input", "x", "--model", model, "--no-trace",
                   "--tool-cache", redis_url, "--events", str(log), cwd=folder)  # fmt: skip
        assert ran.returncode == 0, ran.stderr
        (result,) = events(log, "tool.result")
        assert result["output"] == {"result": 42}
        cached.append(result.get("cached", False))
    assert cached == [False, True]  # the second process found the first one's result


def test_bad_tool_options_are_usage_errors(write_specs: WriteSpecs) -> None:
    folder = write_specs(**{"agent.yaml": agent_with("[calculator]")})
    ran = kiln("run", str(folder), "--input", "x", "--tool-cache", "ftp://cache", cwd=folder)
    assert ran.returncode == 2
    assert "--tool-cache" in ran.stderr and "ftp" in ran.stderr
    assert "Traceback" not in ran.stderr
