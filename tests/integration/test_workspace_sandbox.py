"""Shell and python tools that see the run's workspace (`sandbox.workspace: rw|ro`) and
declared project folders (`sandbox.folders`, read-only), through the real `kiln` process
and each real backend: what the file tools write, a sandboxed tool runs; what it writes,
the file tools read; nothing else of the machine opens up."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import WriteSpecs, readable_by_all

KILN = [sys.executable, "-m", "runtime.cli"]

AGENT = """\
apiVersion: kiln/v1
kind: Agent
metadata: {name: coder}
spec:
  instructions: Write code and run it.
  tools: [file_write, file_read, run_python, peek, vandal]
"""

TOOLS = """\
apiVersion: kiln/v1
kind: Tool
metadata: {name: run_python}
spec:
  description: Run a Python file of the workspace and keep its output in out.txt.
  input_schema: {type: object, properties: {file: {type: string}}, required: [file]}
  side_effects: true
  executor:
    type: shell
    argv:
      - sh
      - -c
      - python3 "$1" > out.txt; cat "$KILN_FOLDERS/rules/style.txt"; pwd; ln -s /etc/passwd leak
      - sh
      - "{{ input.file }}"
  sandbox: {workspace: rw, folders: [rules]}
---
apiVersion: kiln/v1
kind: Tool
metadata: {name: peek}
spec:
  description: List the workspace; it may not write there.
  input_schema: {type: object}
  executor:
    type: shell
    argv: ["sh", "-c", "ls; echo no > ro.txt"]
  sandbox: {workspace: ro}
---
apiVersion: kiln/v1
kind: Tool
metadata: {name: vandal}
spec:
  description: Try to write into a read-only project folder.
  input_schema: {type: object}
  executor:
    type: python
    code: |
      import os

      def run():
          open(os.environ["KILN_FOLDERS"] + "/rules/new.txt", "w").write("x")
  sandbox: {workspace: rw, folders: [rules]}
"""

SCRIPT = """\
coder:
  - {tool: file_write, input: {path: hello.py, content: "print(6 * 7)"}}
  - {tool: run_python, input: {file: hello.py}}
  - {tool: file_read, input: {path: out.txt}}
  - {tool: peek, input: {}}
  - {tool: vandal, input: {}}
  - {tool: file_read, input: {path: leak}}
  - {final: done}
"""


def results(path: Path) -> list[dict[str, Any]]:
    """The tool results of an events file, in order."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return [e["data"] for e in map(json.loads, lines) if e["type"] == "tool.result"]


@pytest.mark.parametrize("backend", ["nsjail", "bwrap", "none"])
def test_a_sandboxed_tool_runs_what_the_file_tools_wrote(
    write_specs: WriteSpecs, tmp_path: Path, backend: str
) -> None:
    folder = write_specs(
        **{"agent.yaml": AGENT, "tools.yaml": TOOLS, "rules__style.txt": "four spaces\n"}
    )
    readable_by_all(folder)
    script = tmp_path / "script.yaml"
    script.write_text(SCRIPT, encoding="utf-8")
    workspace = tmp_path / "desk"
    log = tmp_path / "events.jsonl"
    extra = ["--unsafe"] if backend == "none" else []
    ran = subprocess.run(
        [*KILN, "run", str(folder), "--input", "go", "--model", f"scripted:{script}",
         "--no-trace", "--workspace", str(workspace), "--events", str(log),
         "--sandbox", backend, *extra],
        capture_output=True, text=True, cwd=folder, timeout=180, check=False,
    )  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    wrote, run, read, peek, vandal, leak = results(log)
    assert wrote["status"] == "ok", wrote

    assert run["status"] == "ok", run
    stdout = run["output"]["stdout"]
    assert "four spaces" in stdout  # the project folder, read-only at /folders/rules
    inside = str(workspace.resolve()) if backend == "none" else "/workspace"
    assert stdout.splitlines()[-1] == inside  # the working directory is the workspace
    assert (workspace / "out.txt").read_text(encoding="utf-8") == "42\n"
    assert read["status"] == "ok" and "42" in json.dumps(read["output"])  # the same folder

    assert peek["status"] == "error" and "hello.py" in json.dumps(peek), peek
    assert not (workspace / "ro.txt").exists()
    if backend != "none":  # the none backend isolates nothing: its folders are the host's
        assert vandal["status"] == "error" and "Read-only file system" in vandal["error"]
        assert not (folder / "rules" / "new.txt").exists()
    # the link the tool made points outside the workspace: the file tools refuse it
    assert (workspace / "leak").is_symlink()
    assert leak["status"] == "error" and "outside the workspace" in leak["error"]
    assert "root:" not in json.dumps(leak)
