"""What resuming a long run costs: a sequential crew of 100 tasks, each an agent run of 50
steps (25 model calls, 24 calls of a builtin ``noop`` tool, a final answer, and their
journal entries: 4,900 tool and 5,000 model steps, about 10,000 in all), run once with a
``sync`` journal, then resumed from the whole journal in a fresh engine, as another
process would: every step is replayed, none is made again.

    .venv/bin/python benchmarks/journal_bench.py [--tasks 100] [--steps 50]

Prints the first run's wall time, the journal's size, the time to read it back, and the
resume's wall time (the journal read, the replay of every agent loop, the rebuilt events),
as a ratio to a run of the same crew with no journal at all. Target (#14): resuming a
10,000-step journal in under 1 s. Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

import anyio

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from runtime.engine import Engine, Settings  # noqa: E402
from runtime.trace import TraceStore  # noqa: E402

SPECS = """\
apiVersion: kiln/v1
kind: Tool
metadata: {name: noop}
spec:
  description: Does nothing.
  input_schema: {type: object}
  executor: {type: builtin, function: "stdlib_tools.noop:run"}
---
apiVersion: kiln/v1
kind: Agent
metadata: {name: worker}
spec:
  instructions: Call noop until you are done, then answer.
  tools: [noop]
  limits: {max_iterations: 10000, timeout_s: 3600, max_tokens: 100000000}
---
apiVersion: kiln/v1
kind: Crew
metadata: {name: long}
spec:
  process: sequential
  tasks:
"""


def write(folder: Path, tasks: int, steps: int) -> Path:
    crew = SPECS + "".join(
        f"    - {{name: t{i}, agent: worker, prompt: 'Part {i}'}}\n" for i in range(tasks)
    )
    (folder / "specs").mkdir()
    (folder / "specs" / "long.yaml").write_text(crew, encoding="utf-8")
    turns = "".join(
        f"t{i}:\n"
        + "".join(f"  - {{tool: noop, input: {{n: {j}}}}}\n" for j in range(steps // 2 - 1))
        + f"  - {{final: p{i}}}\n"
        for i in range(tasks)
    )
    script = folder / "script.yml"
    script.write_text(turns, encoding="utf-8")
    return script


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=100)
    parser.add_argument("--steps", type=int, default=100, help="journal entries per task")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="kiln-journal-"))
    script = write(folder, args.tasks, args.steps)
    settings = Settings(model=f"scripted:{script}", workspace=folder / "workspace")
    db = folder / "runs.db"

    async def run(runs_db: Path | None, durability: str | None) -> tuple[str, float]:
        async with Engine([folder / "specs"], settings, runs_db=runs_db) as engine:
            started = time.perf_counter()
            result = await engine.run("long", durability=durability)
            took = time.perf_counter() - started
            assert result.ok, result.error
            return result.run_id, took

    _, bare = anyio.run(run, None, None)
    run_id, first = anyio.run(run, db, "sync")
    with sqlite3.connect(db) as conn:
        entries = conn.execute("SELECT count(*) FROM journal").fetchone()[0]
        conn.execute("UPDATE runs SET status = 'cancelled' WHERE id = ?", (run_id,))
    with TraceStore(db) as store:
        started = time.perf_counter()
        store.journal(run_id)
        read = time.perf_counter() - started

    async def resume() -> float:
        async with Engine([folder / "specs"], settings, runs_db=db) as engine:
            started = time.perf_counter()
            result = await engine.resume(run_id)
            took = time.perf_counter() - started
            assert result.ok, result.error
            return took

    resumed = anyio.run(resume)
    print(f"crew of {args.tasks} tasks, {entries:,} journal entries")
    print(f"  run, no store, no journal       {bare:7.2f} s")
    print(f"  run, sync journal               {first:7.2f} s   ({first / bare:.2f}x)")
    print(f"  read the journal back           {read * 1000:7.1f} ms")
    print(
        f"  resume: replay every step       {resumed:7.2f} s   ({resumed / bare:.2f}x the bare run;"
        f" target < 1 s: {'ok' if resumed < 1 else 'OVER TARGET'})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
