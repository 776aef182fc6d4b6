"""Approvals that outlive the process, through three real `kiln` processes: a run with
nobody to ask stops as waiting_approval (exit 4, the approval id printed); a second process
approves or denies it; a third resumes the run, which makes the call (once) or tells the
agent the reason it was refused."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

KILN = [sys.executable, "-m", "runtime.cli"]

SPECS = """\
apiVersion: kiln/v1
kind: Agent
metadata: {name: mailer}
spec:
  instructions: Send the mail.
  tools: [send_mail]
---
apiVersion: kiln/v1
kind: Tool
metadata: {name: send_mail}
spec:
  description: Send a mail.
  input_schema: {type: object, properties: {to: {type: string}}, required: [to]}
  side_effects: true
  requires_approval: true
  executor:
    type: shell
    argv: ["sh", "-c", "echo \\"$1\\" >> outbox.txt; echo sent", "sh", "{{ input.to }}"]
  sandbox: {workspace: rw}
"""

SCRIPT = """\
mailer:
  - {tool: send_mail, input: {to: ada@example.com}}
  - {final: "finished"}
"""


def kiln(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*KILN, *args], capture_output=True, text=True, cwd=cwd, timeout=120, check=False,
        stdin=subprocess.DEVNULL,  # no terminal: nobody to ask in this process
    )  # fmt: skip


@pytest.fixture
def project(tmp_path: Path) -> Path:
    folder = tmp_path / "project"
    (folder / "agents").mkdir(parents=True)
    (folder / "agents" / "mailer.yaml").write_text(SPECS, encoding="utf-8")
    (folder / "script.yml").write_text(SCRIPT, encoding="utf-8")
    for path in (folder, *folder.parents):  # the sandbox's uid searches down to the workspace
        if path == Path("/tmp"):
            break
        path.chmod(path.stat().st_mode | 0o005)
    return folder


def stopped_run(project: Path) -> tuple[str, str]:
    """Start the run; it stops for approval. Its run id and approval id."""
    ran = kiln("run", "agents", "--input", "go", "--model", "scripted:script.yml", "-q",
               cwd=project)  # fmt: skip
    assert ran.returncode == 4, ran.stderr  # waiting_approval has an exit code of its own
    found = re.search(r"waits for approval ([0-9a-f]{16})", ran.stderr)
    assert found, ran.stderr
    listed = json.loads(kiln("runs", "list", "--format", "json", cwd=project).stdout)
    (run,) = listed["runs"]
    assert run["status"] == "waiting_approval"
    return run["id"], found.group(1)


def outbox(project: Path) -> list[str]:
    (workspace,) = (project / ".kiln" / "workspaces").iterdir()
    path = workspace / "outbox.txt"
    return path.read_text(encoding="utf-8").split() if path.exists() else []


def tool_results(project: Path, run_id: str) -> list[dict[str, object]]:
    shown = json.loads(kiln("runs", "show", run_id, "--format", "json", cwd=project).stdout)
    return [e["data"] for e in shown["events"] if e["type"] == "tool.result"]


def test_approved_in_another_process_the_resumed_run_makes_the_call_once(
    project: Path,
) -> None:
    run_id, approval = stopped_run(project)
    assert outbox(project) == []  # nothing was sent before the yes

    pending = kiln("approvals", "list", cwd=project)
    assert approval in pending.stdout and "send_mail" in pending.stdout
    assert "ada@example.com" in pending.stdout
    again = kiln("run", "--resume", run_id, "-q", cwd=project)
    assert again.returncode == 4  # still undecided: it stops again, at the same approval
    assert approval in again.stderr

    decided = kiln("approvals", "approve", approval[:8], "--by", "grace", cwd=project)
    assert decided.returncode == 0, decided.stderr
    assert "approved" in decided.stdout and f"kiln runs resume {run_id[:12]}" in decided.stdout
    twice = kiln("approvals", "deny", approval, "--reason", "too late", cwd=project)
    assert twice.returncode == 1 and "already approved by grace" in twice.stderr

    resumed = kiln("runs", "recover", "-q", cwd=project)  # picks up the decided run
    assert resumed.returncode == 0, resumed.stderr
    assert outbox(project) == ["ada@example.com"]
    (result,) = tool_results(project, run_id)
    assert result["status"] == "ok"
    assert kiln("runs", "resume", run_id, cwd=project).returncode == 1  # succeeded already
    assert outbox(project) == ["ada@example.com"]
    assert "no pending approvals" in kiln("approvals", "list", cwd=project).stdout


def test_denied_the_agent_is_told_the_reason(project: Path) -> None:
    run_id, approval = stopped_run(project)
    denied = kiln("approvals", "deny", approval, "--reason", "not on a Sunday", cwd=project)
    assert denied.returncode == 0, denied.stderr
    resumed = kiln("runs", "resume", run_id, "-q", cwd=project)
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout.strip() == "finished"
    (result,) = tool_results(project, run_id)
    assert result["status"] == "denied"
    assert "not on a Sunday" in str(result["error"])  # the observation the agent saw
    assert outbox(project) == []


def test_approvals_all_runs_without_stopping_and_deny_needs_a_reason(project: Path) -> None:
    ran = kiln("run", "agents", "--input", "go", "--model", "scripted:script.yml", "-q",
               "--approvals", "all", cwd=project)  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    assert outbox(project) == ["ada@example.com"]
    bad = kiln("approvals", "deny", "0000", cwd=project)
    assert bad.returncode == 2 and "--reason" in bad.stderr
