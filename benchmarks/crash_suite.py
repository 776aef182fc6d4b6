"""The crash suite: seeded random kill points in real `kiln` processes, each run resumed.

For each seed, a run is started and, once its journal holds a random number of steps and
after a random pause, killed (SIGKILL mostly; SIGTERM and SIGINT for some seeds). The kill
lands in a model wait, inside a sandboxed side-effecting call, between a tool result and
the next model call, or inside one branch of a parallel crew. The run is then resumed
(`kiln runs resume`) and must end `succeeded` with the output and the events of an
uninterrupted run, every ledger key at most once (the ledger tool appends its idempotency
key to a file in the run's workspace), and no gap in the trace.

    .venv/bin/python benchmarks/crash_suite.py [--points 50] [--seed 0] [--json]

Prints one line per point and the totals; exits 1 when a point failed. Not part of the
test suite (about 3 s a point); tests/integration/test_durable_runs.py runs six of them.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

KILN = [sys.executable, "-m", "runtime.cli"]
REPO = Path(__file__).resolve().parent.parent

LEDGER = """\
apiVersion: kiln/v1
kind: Tool
metadata: {name: ledger}
spec:
  description: Write an entry in the ledger, once.
  input_schema: {type: object, properties: {item: {type: string}}, required: [item]}
  side_effects: true
  idempotent: true
  executor:
    type: shell
    argv:
      - sh
      - -c
      - >-
        grep -qx "$KILN_IDEMPOTENCY_KEY" ledger.txt 2>/dev/null
        || echo "$KILN_IDEMPOTENCY_KEY" >> ledger.txt; sleep 0.2; echo "entry $1"
      - sh
      - "{{ input.item }}"
  sandbox: {workspace: rw}
---
apiVersion: kiln/v1
kind: Agent
metadata: {name: clerk}
spec:
  instructions: Write the entries in the ledger.
  tools: [ledger]
---
apiVersion: kiln/v1
kind: Crew
metadata: {name: office}
spec:
  process: parallel
  tasks:
    - {name: left, agent: clerk, prompt: "Write l1 and l2"}
    - {name: right, agent: clerk, prompt: "Write r1 and r2"}
    - {name: sum, agent: clerk, prompt: "Sum up {{ tasks.left.output }} {{ tasks.right.output }}"}
"""

AGENT_SCRIPT = """\
clerk:
  - {tool: ledger, input: {item: a}, delay_ms: 150}
  - {tool: ledger, input: {item: b}, delay_ms: 150}
  - {tool: ledger, input: {item: c}, delay_ms: 150}
  - {final: "done: a b c", delay_ms: 150}
"""

CREW_SCRIPT = """\
left:
  - {tool: ledger, input: {item: l1}, delay_ms: 120}
  - {tool: ledger, input: {item: l2}, delay_ms: 120}
  - {final: "l done", delay_ms: 120}
right:
  - {tool: ledger, input: {item: r1}, delay_ms: 90}
  - {tool: ledger, input: {item: r2}, delay_ms: 90}
  - {final: "r done", delay_ms: 90}
sum:
  - {final: "all done", delay_ms: 100}
"""

SCENARIOS: dict[str, tuple[list[str], str, int]] = {
    # name: (target arguments, script, journal entries of a whole run)
    "agent": (["--agent", "clerk", "--input", "go"], AGENT_SCRIPT, 7),
    "crew": (["--crew", "office"], CREW_SCRIPT, 11),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="print the totals as JSON")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="kiln-crash-", dir="/tmp"))
    root.chmod(0o755)  # the sandbox's uid searches down to the workspace
    references = {name: reference(root, name) for name in SCENARIOS}
    failures: list[str] = []
    resume_s: list[float] = []
    for point in range(args.points):
        seed = args.seed + point
        rng = random.Random(seed)
        name = rng.choice(sorted(SCENARIOS))
        sig = rng.choices([signal.SIGKILL, signal.SIGTERM, signal.SIGINT], [8, 1, 1])[0]
        steps = rng.randrange(SCENARIOS[name][2])
        pause = rng.uniform(0, 0.25)
        problem, took = crash_point(root / f"p{point}", name, sig, steps, pause, references[name])
        where = f"seed {seed}: {name}, {sig.name} after {steps} steps + {pause * 1000:.0f} ms"
        print(f"ok   {where}" if problem is None else f"FAIL {where}: {problem}")
        if problem is None:
            resume_s.append(took)
        else:
            failures.append(f"{where}: {problem}")
    totals = {
        "points": args.points,
        "passed": args.points - len(failures),
        "failed": len(failures),
        "resume_mean_s": round(sum(resume_s) / len(resume_s), 3) if resume_s else None,
    }
    print(json.dumps(totals) if args.json else f"{totals}")
    shutil.rmtree(root, ignore_errors=True)
    return 1 if failures else 0


def project(folder: Path, name: str) -> list[str]:
    folder.mkdir(parents=True)
    folder.chmod(0o755)
    (folder / "agents").mkdir()
    (folder / "agents" / "office.yaml").write_text(LEDGER, encoding="utf-8")
    (folder / "script.yml").write_text(SCENARIOS[name][1], encoding="utf-8")
    return [*KILN, "run", "agents", *SCENARIOS[name][0], "--model", "scripted:script.yml", "-q"]


def reference(root: Path, name: str) -> tuple[Any, list[Any]]:
    folder = root / f"reference-{name}"
    ran = subprocess.run(project(folder, name), cwd=folder, capture_output=True, text=True)
    if ran.returncode != 0:
        raise SystemExit(f"the uninterrupted {name} run failed: {ran.stderr}")
    run = only_run(folder)
    return run["output"], events_of(folder, run["id"])


def crash_point(
    folder: Path, name: str, sig: int, steps: int, pause: float, expected: tuple[Any, Any]
) -> tuple[str | None, float]:
    command = project(folder, name)
    process = subprocess.Popen(
        command, cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 60
    while journaled(folder) < steps:
        if process.poll() is not None or time.monotonic() > deadline:
            return "the run ended before the kill point", 0.0
        time.sleep(0.005)
    time.sleep(pause)
    process.send_signal(sig)
    process.wait(timeout=60)
    run = only_run(folder)
    if run["status"] == "succeeded":
        return None, 0.0  # the kill landed after the end: nothing to resume
    started = time.perf_counter()
    resumed = subprocess.run(
        [*KILN, "runs", "resume", run["id"], "-q"], cwd=folder, capture_output=True, text=True
    )
    took = time.perf_counter() - started
    if resumed.returncode != 0:
        return f"resume exited {resumed.returncode}: {resumed.stderr.strip()[-300:]}", took
    after = only_run(folder)
    if (after["status"], after["output"]) != ("succeeded", expected[0]):
        return f"ended {after['status']} with {after['output']!r}", took
    if events_of(folder, run["id"]) != expected[1]:
        return "the events differ from an uninterrupted run's", took
    keys = ledger(folder)
    if len(keys) != len(set(keys)):
        return f"a ledger key twice: {keys}", took
    return None, took


def journaled(folder: Path) -> int:
    try:
        path = folder / ".kiln" / "runs.db"
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
            if conn.execute("SELECT count(*) FROM runs").fetchone()[0] == 0:
                return -1
            return int(conn.execute("SELECT count(*) FROM journal").fetchone()[0])
    except sqlite3.Error:
        return -1


def only_run(folder: Path) -> dict[str, Any]:
    listed = subprocess.run(
        [*KILN, "runs", "list", "--format", "json"], cwd=folder, capture_output=True, text=True
    )
    (run,) = json.loads(listed.stdout)["runs"]
    return dict(run)


def events_of(folder: Path, run_id: str) -> list[Any]:
    shown = subprocess.run(
        [*KILN, "runs", "show", run_id, "--format", "json"],
        cwd=folder,
        capture_output=True,
        text=True,
    )
    events = json.loads(shown.stdout)["events"]
    # parallel branches interleave as they will: compare without the numbering, and check
    # the numbering separately (no gap, no duplicate)
    seqs = sorted(e["seq"] for e in events)
    if seqs != list(range(1, len(events) + 1)):
        return [f"numbering {seqs}"]
    return sorted(
        json.dumps([e["type"], e["step"], e["agent"], e["task"], e["data"]], sort_keys=True)
        for e in events
    )


def ledger(folder: Path) -> list[str]:
    found: list[str] = []
    for workspace in (folder / ".kiln" / "workspaces").iterdir():
        path = workspace / "ledger.txt"
        if path.exists():
            found += path.read_text(encoding="utf-8").split()
    return found


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    raise SystemExit(main())
