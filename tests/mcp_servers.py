"""Real MCP servers for the tests, and what they need around them.

Fixtures (import them into a test module to use them): ``npm_bin`` (the folder of the npm
servers' executables, installed into ``<repo>/.kiln/npm`` on first use), ``web_page`` (a
page served by a local http.server), ``git_repo`` (a temporary repository with one commit),
``echo_http`` (the SDK echo server of ``tests/fixtures`` over streamable HTTP).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.helpers import REPO

#: the venv's bin folder, where pip put mcp-server-time, -fetch and -git
BIN = Path(sys.executable).parent
PYTHON = sys.executable
ECHO_SERVER = REPO / "tests" / "fixtures" / "mcp_echo_server.py"
#: stdio command of the echo server
ECHO = (PYTHON, str(ECHO_SERVER), "stdio")

NPM_DIR = REPO / ".kiln" / "npm"
NPM_PACKAGES = (
    "@modelcontextprotocol/server-everything",
    "@modelcontextprotocol/server-filesystem",
)
NPM_COMMANDS = ("mcp-server-everything", "mcp-server-filesystem")

PAGE_TEXT = "The kiln fires at 1240 degrees on Thursdays."


def python_server(name: str) -> tuple[str, ...]:
    """The command of a server installed from PyPI into the venv (``mcp-server-time``...)."""
    path = BIN / name
    if not path.exists():
        pytest.fail(f"{name} is not installed in {BIN}: run `make install` (the dev extra)")
    return (str(path),)


def install_npm_servers() -> Path:
    """The ``node_modules/.bin`` folder holding the npm servers, installed when missing."""
    bin_dir = NPM_DIR / "node_modules" / ".bin"
    if all((bin_dir / command).exists() for command in NPM_COMMANDS):
        return bin_dir
    npm = shutil.which("npm")
    if npm is None:
        pytest.fail(
            "npm is not installed: the MCP tests run @modelcontextprotocol/server-everything "
            "and server-filesystem from npm. Install Node.js 18+ with npm and run them again."
        )
    NPM_DIR.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        [npm, "install", "--no-audit", "--no-fund", "--prefix", str(NPM_DIR), *NPM_PACKAGES],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if done.returncode != 0:
        pytest.fail(f"npm install of {' '.join(NPM_PACKAGES)} failed:\n{done.stderr[-2000:]}")
    return bin_dir


@pytest.fixture(scope="session")
def npm_bin() -> Path:
    return install_npm_servers()


class _Page(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path != "/kiln.html":
            self.send_error(404)
            return
        body = (
            f"<html><head><title>Kiln notes</title></head>"
            f"<body><h1>Notes</h1><p>{PAGE_TEXT}</p></body></html>"
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def web_page() -> Iterator[str]:
    """The URL of an HTML page (containing :data:`PAGE_TEXT`) on a local http.server."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Page)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/kiln.html"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


COMMIT_MESSAGE = "Add the glaze recipe"


@pytest.fixture
def git_repo(tmp_path: Path) -> Path:
    """A git repository with one commit (:data:`COMMIT_MESSAGE`) and one untracked file."""
    repo = tmp_path / "repo"
    repo.mkdir()
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "Kiln Test",
        "GIT_AUTHOR_EMAIL": "test@kiln.invalid",
        "GIT_COMMITTER_NAME": "Kiln Test",
        "GIT_COMMITTER_EMAIL": "test@kiln.invalid",
    }

    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True)

    git("init", "-q", "-b", "main")
    (repo / "glaze.txt").write_text("cone 6 celadon\n", encoding="utf-8")
    git("add", "glaze.txt")
    git("commit", "-q", "-m", COMMIT_MESSAGE)
    (repo / "notes.txt").write_text("untracked\n", encoding="utf-8")
    return repo


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_port(port: int, process: subprocess.Popen[bytes], timeout_s: float = 20) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the echo MCP server exited with status {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    pytest.fail(f"the echo MCP server did not listen on port {port} within {timeout_s} s")


def start_echo_http(port: int) -> subprocess.Popen[bytes]:
    """The echo server over streamable HTTP on ``port``, listening when this returns."""
    process = subprocess.Popen(
        [PYTHON, str(ECHO_SERVER), "http", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, process)
    except BaseException:
        stop(process)
        raise
    return process


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture(scope="module")
def echo_http() -> Iterator[str]:
    """The URL of the echo server over streamable HTTP on a free loopback port."""
    port = free_port()
    process = start_echo_http(port)
    try:
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        stop(process)


def child_processes() -> set[int]:
    """Processes (zombies included) whose parent is this one, read from /proc."""
    me = os.getpid()
    children = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # gone meanwhile
        # the command name (field 2) may hold spaces and parentheses: split after the last ')'
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[1]) == me:
            children.add(int(entry.name))
    return children


def existing(pids: set[int]) -> set[int]:
    """Those of ``pids`` that are still processes (running or zombie)."""
    return {pid for pid in pids if Path(f"/proc/{pid}").exists()}
