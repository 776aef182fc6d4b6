"""Durable runs through the real `kiln` process: a run killed with SIGKILL at seeded points
(during a model wait, inside a sandboxed side-effecting call, between a tool result and
the next model call) shows as interrupted, and `kiln runs resume` carries it on to the same
output and the same events as a run nobody interrupted; the ledger tool (it appends its
idempotency key to a file in the workspace) shows every key once. A side-effecting call
that is not idempotent and was cut off stops the resumed run as needs_attention, and a
person retries or skips it.

The scripted model waits ``delay_ms`` before each reply, which leaves room to kill the run
in the middle of a model call; ``tests/benchmarks``-free: the 50-point crash suite with
figures is benchmarks/crash_suite.py.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

KILN = [sys.executable, "-m", "runtime.cli"]

SPECS = """\
apiVersion: kiln/v1
kind: Agent
metadata: {name: clerk}
spec:
  instructions: Write the entries in the ledger.
  tools: [ledger]
---
apiVersion: kiln/v1
kind: Tool
metadata: {name: ledger}
spec:
  description: Write an entry in the ledger.
  input_schema: {type: object, properties: {item: {type: string}}, required: [item]}
  side_effects: true
  idempotent: IDEMPOTENT
  executor:
    type: shell
    argv:
      - sh
      - -c
      - >-
        grep -qx "$KILN_IDEMPOTENCY_KEY" ledger.txt 2>/dev/null
        || echo "$KILN_IDEMPOTENCY_KEY" >> ledger.txt; sleep 0.3; echo "entry $1"
      - sh
      - "{{ input.item }}"
  sandbox: {workspace: rw}
"""

SCRIPT = """\
clerk:
  - {tool: ledger, input: {item: a}, delay_ms: 250}
  - {tool: ledger, input: {item: b}, delay_ms: 250}
  - {tool: ledger, input: {item: c}, delay_ms: 250}
  - {final: "done: a b c", delay_ms: 250}
"""

#: model and tool steps of a whole run: 4 model calls, 3 tool calls
STEPS = 7


def kiln(*args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*KILN, *args], capture_output=True, text=True, cwd=cwd, timeout=timeout, check=False
    )


@pytest.fixture
def project(tmp_path: Path) -> Path:
    folder = tmp_path / "project"
    (folder / "agents").mkdir(parents=True)
    (folder / "agents" / "clerk.yaml").write_text(
        SPECS.replace("IDEMPOTENT", "true"), encoding="utf-8"
    )
    (folder / "script.yml").write_text(SCRIPT, encoding="utf-8")
    for path in (folder, *folder.parents):  # the sandbox's uid searches down to the workspace
        if path == Path("/tmp"):
            break
        path.chmod(path.stat().st_mode | 0o005)
    return folder


def start(folder: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*KILN, "run", "agents", "--input", "go", "--model", "scripted:script.yml", "-q"],
        cwd=folder,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def journaled(folder: Path) -> int:
    """Steps in the journal now; -1 while no run is recorded yet."""
    try:
        with sqlite3.connect(f"file:{folder / '.kiln' / 'runs.db'}?mode=ro", uri=True) as conn:
            if conn.execute("SELECT count(*) FROM runs").fetchone()[0] == 0:
                return -1
            return int(conn.execute("SELECT count(*) FROM journal").fetchone()[0])
    except sqlite3.Error:
        return -1


def kill_after(process: subprocess.Popen[str], folder: Path, steps: int, pause_s: float) -> None:
    """SIGKILL ``process`` ``pause_s`` after the journal holds ``steps`` entries."""
    deadline = time.monotonic() + 60
    while journaled(folder) < steps:
        assert process.poll() is None, "the run ended before the kill point"
        assert time.monotonic() < deadline, "the run never reached the kill point"
        time.sleep(0.01)
    time.sleep(pause_s)
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=30)
    # the call in progress died with kiln: none goes on to race the resumed run's retry
    deadline = time.monotonic() + 0.1  # a call left running would sleep 0.3 s
    while ledger_calls() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not ledger_calls(), "a sandboxed call outlived the kiln process that made it"


def ledger_calls() -> list[int]:
    """Processes running the ledger tool's command, on this machine."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                command = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if b"ledger.txt" in command and b"pytest" not in command:
                found.append(int(entry.name))
    return found


def only_run(folder: Path) -> dict[str, Any]:
    listed = kiln("runs", "list", "--format", "json", cwd=folder)
    (run,) = json.loads(listed.stdout)["runs"]
    return dict(run)


def events_of(folder: Path, run_id: str) -> list[tuple[Any, ...]]:
    shown = kiln("runs", "show", run_id, "--format", "json", cwd=folder)
    events = json.loads(shown.stdout)["events"]
    return [(e["seq"], e["type"], e["step"], e["agent"], e["task"], e["data"]) for e in events]


def ledger(folder: Path) -> list[str]:
    (workspace,) = (folder / ".kiln" / "workspaces").iterdir()
    return (workspace / "ledger.txt").read_text(encoding="utf-8").split()


@pytest.fixture
def reference(project: Path, tmp_path: Path) -> list[tuple[Any, ...]]:
    """The events of the same run, uninterrupted, in another folder."""
    other = tmp_path / "reference"
    subprocess.run(["cp", "-a", str(project), str(other)], check=True)
    process = start(other)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    assert out.strip() == "done: a b c"
    assert len(ledger(other)) == 3
    return events_of(other, only_run(other)["id"])


# (steps journaled, then a pause): in a model wait, inside the ledger call (it sleeps
# 0.3 s), between a tool result and the next model call, and at seeded random points
KILL_POINTS = [(0, 0.1), (2, 0.1), (3, 0.0), (5, 0.15)] + [
    (random.Random(seed).randrange(STEPS), random.Random(seed).uniform(0, 0.3))
    for seed in (11, 12)
]


@pytest.mark.timeout(300)  # each point runs kiln four times, with a sandbox
@pytest.mark.parametrize(("steps", "pause_s"), KILL_POINTS)
def test_a_killed_run_resumes_to_the_same_output_and_events(
    project: Path, reference: list[tuple[Any, ...]], steps: int, pause_s: float
) -> None:
    kill_after(start(project), project, steps, pause_s)
    run = only_run(project)
    if run["status"] == "succeeded":  # the kill came after the end: nothing to resume
        pytest.fail("the kill point is past the end of the run: pick an earlier one")
    assert run["state"] == "interrupted", run  # not "running" for ever

    resumed = kiln("runs", "resume", run["id"][:8], "-q", cwd=project)
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout.strip() == "done: a b c"
    after = only_run(project)
    assert (after["status"], after["output"]) == ("succeeded", "done: a b c")
    assert events_of(project, run["id"]) == reference  # no gap, no duplicate, same data
    keys = ledger(project)
    assert len(keys) == len(set(keys)) == 3  # every effect once

    again = kiln("runs", "resume", run["id"], cwd=project)
    assert again.returncode == 1 and "succeeded: nothing to resume" in again.stderr


def test_a_cut_off_call_of_a_non_idempotent_tool_waits_for_a_person(project: Path) -> None:
    spec = project / "agents" / "clerk.yaml"
    # each call takes 2 s here: the kill lands inside the second one even on a busy machine
    slow = SPECS.replace("IDEMPOTENT", "false").replace("sleep 0.3", "sleep 2")
    spec.write_text(slow, encoding="utf-8")
    kill_after(start(project), project, 4, 0.1)  # inside the second ledger call
    run_id = only_run(project)["id"]

    stopped = kiln("runs", "resume", run_id, "-q", cwd=project)
    assert stopped.returncode == 5, stopped.stderr  # stopped for a person
    assert "needs_attention" in stopped.stderr and "ledger" in stopped.stderr
    assert "--retry-call" in stopped.stderr and '{"item": "b"}' in stopped.stderr
    assert only_run(project)["status"] == "needs_attention"

    skipped = kiln(
        "runs", "resume", run_id, "--skip-call", "--observation", "b is done already",
        "-q", cwd=project,
    )  # fmt: skip
    assert skipped.returncode == 0, skipped.stderr
    events = events_of(project, run_id)
    results = [e[5] for e in events if e[1] == "tool.result"]
    assert [r["status"] for r in results] == ["ok", "error", "ok"]
    assert results[1]["error"] == "b is done already"  # what the agent saw instead
    keys = ledger(project)  # a, b (done before the kill: its sleep was cut off), c
    assert len(keys) == len(set(keys)) == 3  # b was not made again


def test_a_changed_spec_refuses_to_resume_unless_forced(project: Path) -> None:
    kill_after(start(project), project, 2, 0.05)
    run_id = only_run(project)["id"]
    spec = project / "agents" / "clerk.yaml"
    spec.write_text(spec.read_text().replace("Write the entries", "Write all entries"))
    refused = kiln("runs", "resume", run_id, "-q", cwd=project)
    assert refused.returncode == 1 and "changed since it started" in refused.stderr
    assert "--force" in refused.stderr
    forced = kiln("runs", "resume", run_id, "--force", "-q", cwd=project)
    assert forced.returncode == 0, forced.stderr


def test_runs_recover_resumes_every_interrupted_run(project: Path) -> None:
    kill_after(start(project), project, 1, 0.05)
    listed = kiln("runs", "list", "--status", "interrupted", cwd=project)
    assert "interrupted" in listed.stdout
    recovered = kiln("runs", "recover", "-q", cwd=project)
    assert recovered.returncode == 0, recovered.stderr
    assert "resuming run" in recovered.stderr
    assert only_run(project)["status"] == "succeeded"
    assert "no interrupted runs" in kiln("runs", "recover", cwd=project).stderr


def test_sigterm_stops_the_run_as_cancelled_and_it_resumes(project: Path) -> None:
    process = start(project)
    deadline = time.monotonic() + 60
    while journaled(project) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    os.kill(process.pid, signal.SIGTERM)
    process.communicate(timeout=60)
    stopped = only_run(project)
    assert stopped["status"] == "cancelled", stopped
    resumed = kiln("runs", "resume", only_run(project)["id"], "-q", cwd=project)
    assert resumed.returncode == 0, resumed.stderr
    assert len(set(ledger(project))) == len(ledger(project)) == 3


def test_durability_off_in_the_spec_journals_nothing_and_refuses_to_resume(
    project: Path,
) -> None:
    spec = project / "agents" / "clerk.yaml"
    text = spec.read_text(encoding="utf-8")
    spec.write_text(
        text.replace("  tools: [ledger]\n", "  tools: [ledger]\n  limits: {durability: 'off'}\n"),
        encoding="utf-8",
    )
    kill_after(start(project), project, 0, 0.6)  # recorded; its journal stays empty
    assert journaled(project) == 0
    refused = kiln("runs", "resume", only_run(project)["id"], cwd=project)
    assert refused.returncode == 1 and "durability off" in refused.stderr
    ran = kiln("run", "agents", "--input", "go", "--model", "scripted:script.yml", "-q",
               "--durability", "sync", cwd=project)  # fmt: skip
    assert ran.returncode == 0, ran.stderr  # the flag wins over the spec
    assert journaled(project) == 7
