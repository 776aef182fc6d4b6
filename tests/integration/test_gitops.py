"""GitOps through the real server: a real git repository with a series of commits (good,
bad, good, one that gives an agent a new tool) followed by ``kiln serve``; the webhook
signed like GitHub's; a run started before a deploy finishes on its old plan; a watched
folder, and specs written over the API into it."""

from __future__ import annotations

import hashlib
import hmac
import json
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from runtime.server.deploy import FolderSource, GitSource
from tests.server_kit import Served, serve

WRITER = """\
apiVersion: kiln/v1
kind: Agent
metadata: {name: writer}
spec:
  instructions: Write about what you are asked.
  tools: TOOLS
"""

SCRIPT = """\
writer:
  - {thought: Write., final: "a draft", delay_ms: DELAY}
"""

SECRET = b"hook-secret"


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, check=True, timeout=60,
        env={"GIT_AUTHOR_NAME": "Ada", "GIT_AUTHOR_EMAIL": "ada@example.com",
             "GIT_COMMITTER_NAME": "Ada", "GIT_COMMITTER_EMAIL": "ada@example.com",
             "HOME": str(repo), "PATH": "/usr/bin:/bin"},
    ).stdout.strip()  # fmt: skip


def commit(repo: Path, files: dict[str, str], message: str) -> str:
    for name, text in files.items():
        path = repo / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    git(repo, "add", "-A")
    git(repo, "commit", "--quiet", "-m", message)
    return git(repo, "rev-parse", "HEAD")


def signed(body: bytes) -> dict[str, str]:
    digest = hmac.new(SECRET, body, hashlib.sha256).hexdigest()
    return {"X-Hub-Signature-256": f"sha256={digest}", "Content-Type": "application/json"}


def until(check: Callable[[], Any], what: str, timeout_s: float = 30) -> Any:
    deadline = time.monotonic() + timeout_s
    while not (found := check()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)
    return found


def test_a_branch_is_followed_bad_commits_rejected_and_reach_changes_flagged(
    tmp_path: Path,
) -> None:
    repo = tmp_path / "specs"
    repo.mkdir()
    git(repo, "init", "--quiet", "--initial-branch=main")
    first = commit(repo, {"agents/writer.yaml": WRITER.replace("TOOLS", "[]")}, "a writer")
    script = tmp_path / "script.yaml"
    script.write_text(SCRIPT.replace("DELAY", "1500"), encoding="utf-8")
    source = GitSource(str(repo), "main", tmp_path / "deploy")
    with serve([], tmp_path, model=f"scripted:{script}", source=source, poll_s=3600,
               webhook_secret=SECRET) as served:  # fmt: skip
        with served.client(served.key("acme", "admin")) as http:
            deployments = http.get("/v1/deployments").json()
            assert deployments["current"]["revision"] == first
            assert deployments["current"]["author"] == "Ada <ada@example.com>"
            old_plan = deployments["current"]["plan_hash"]
            # a run that starts on the first plan, and takes 1.5 s
            slow = http.post("/v1/agents/writer/execute",
                             json={"input": "tides", "config": {"background": True}})  # fmt: skip
            run_id = slow.json()["run_id"]

            bad = commit(repo, {"agents/writer.yaml": WRITER.replace("TOOLS", "[nope]")},
                         "a tool that does not exist")  # fmt: skip
            hook(served, http)
            rejected = until(lambda: _deployment(http, bad), "the bad commit's deployment")
            assert rejected["status"] == "rejected"
            (error,) = rejected["errors"]
            assert error["path"] == "agents/writer.yaml" and error["line"] == 6
            assert "nope" in error["message"]
            assert http.get("/v1/deployments").json()["current"]["revision"] == first
            assert http.get("/readyz").json()["plan_hash"] == old_plan  # still serving

            good = commit(repo, {"agents/writer.yaml": WRITER.replace("TOOLS", "[calculator]")},
                          "the writer may calculate")  # fmt: skip
            hook(served, http)
            deployed = until(lambda: _deployment(http, good), "the good commit's deployment")
            assert deployed["status"] == "serving" and deployed["plan_hash"] != old_plan
            assert any("calculator" in flag for flag in deployed["flagged"]), deployed
            assert http.get("/v1/agents/writer").json()["spec"]["tools"] == ["calculator"]

            # the run started before the deploy ends on the plan it started with
            ended = until(lambda: _ended(http, run_id), "the slow run")
            assert ended["status"] == "succeeded" and ended["plan_hash"] == old_plan
            new_run = http.post("/v1/agents/writer/execute", json={"input": "x"}).json()
            assert http.get(f"/v1/runs/{new_run['run_id']}").json()["plan_hash"] != old_plan

            statuses = [d["status"] for d in http.get("/v1/deployments").json()["items"]]
            assert statuses == ["serving", "rejected", "superseded"]
            refused = http.post("/v1/agents", json={"metadata": {"name": "x"}, "spec": {}})
            assert refused.status_code == 409 and "git" in refused.json()["error"]["message"]
        import os
        import sys

        status = subprocess.run(
            [sys.executable, "-m", "runtime.cli", "deploy", "status", "--server", served.url],
            capture_output=True, text=True, timeout=60, check=False,
            env={**os.environ, "KILN_API_KEY": served.key("acme", "read")},
        )  # fmt: skip
        assert status.returncode == 0, status.stderr
        lines = status.stdout.splitlines()
        assert lines[0].split()[:2] == ["#3", "serving"] and "the writer may calculate" in lines[0]
        assert any(line.strip().startswith("! ") and "calculator" in line for line in lines)
        assert any("agents/writer.yaml:6:" in line and "nope" in line for line in lines)


def hook(served: Served, http: httpx.Client) -> None:
    body = json.dumps({"ref": "refs/heads/main"}).encode()
    forged = http.post("/v1/deploy/hook", content=body,
                       headers={"X-Hub-Signature-256": "sha256=" + "0" * 64})  # fmt: skip
    assert forged.status_code == 401
    answer = httpx.post(f"{served.url}/v1/deploy/hook", content=body, headers=signed(body))
    assert answer.status_code == 202, answer.text


def _deployment(http: httpx.Client, revision: str) -> dict[str, Any] | None:
    items = http.get("/v1/deployments").json()["items"]
    return next((d for d in items if d["revision"] == revision), None)


def _ended(http: httpx.Client, run_id: str) -> dict[str, Any] | None:
    run: dict[str, Any] = http.get(f"/v1/runs/{run_id}").json()
    return run if run["status"] != "running" else None


def test_a_watched_folder_and_specs_written_over_the_api(tmp_path: Path) -> None:
    folder = tmp_path / "specs"
    (folder / "agents").mkdir(parents=True)
    (folder / "agents" / "writer.yaml").write_text(WRITER.replace("TOOLS", "[]"))
    script = tmp_path / "script.yaml"
    script.write_text(SCRIPT.replace("DELAY", "0"), encoding="utf-8")
    source = FolderSource(folder, settle_s=0.1)
    with serve([], tmp_path, model=f"scripted:{script}", source=source, poll_s=0.2) as served:
        with served.client(served.key("acme", "admin")) as http:
            first = http.get("/v1/deployments").json()["current"]
            # an edit on disk is deployed by the watcher
            (folder / "agents" / "writer.yaml").write_text(WRITER.replace("TOOLS", "[calculator]"))
            until(lambda: http.get("/v1/deployments").json()["current"]["id"] != first["id"],
                  "the edit's deployment")  # fmt: skip
            assert http.get("/v1/agents/writer").json()["spec"]["tools"] == ["calculator"]
            # a new agent written over the API
            editor = {"apiVersion": "kiln/v1", "kind": "Agent", "metadata": {"name": "editor"},
                      "spec": {"instructions": "Edit.", "tools": ["word_count"]}}  # fmt: skip
            made = http.post("/v1/agents", json=editor)
            assert made.status_code == 201, made.text
            assert made.json()["path"] == "agents/editor.yaml"
            assert (folder / "agents" / "editor.yaml").exists()
            assert http.get("/v1/agents/editor").status_code == 200
            # one that does not compile is refused with its diagnostics, and not written
            broken = {**editor, "metadata": {"name": "broken"},
                      "spec": {"instructions": "x", "tools": ["nope"]}}  # fmt: skip
            refused = http.post("/v1/agents", json=broken)
            assert refused.status_code == 422
            assert any("nope" in d["message"] for d in refused.json()["diagnostics"])
            assert not (folder / "agents" / "broken.yaml").exists()
        with served.client(served.key("acme", "run")) as http:
            assert http.post("/v1/agents", json=editor).status_code == 403
