"""Episodic memory: how fast history is indexed and searched.

Run: ``.venv/bin/python benchmarks/memory_episodic_bench.py [--runs 2000] [--searches 50]``

Records ``--runs`` agent runs (one tool call each, three tenants, one agent) in a fresh
trace store, then prints:

1. ``sync`` of the whole history (read the trace, build episodes, embed, write), runs/s;
2. ``index`` of one just-finished run, the call the runtime makes after each run (p50);
3. ``search`` latency p50/p95 over one tenant's episodes (a third of the runs): SQL filter,
   cosine over the filtered vectors, the top three fetched; and a blank query (newest first);
4. the first search after switching embedders, which re-embeds that tenant's episodes.

Figures are printed, never asserted (these machines are noisy).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import anyio

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: make the repository's packages importable
    sys.path.insert(0, str(ROOT))

from runtime.embed import get_embedder  # noqa: E402
from runtime.events import EventBus  # noqa: E402
from runtime.memory.episodic import EpisodicStore  # noqa: E402
from runtime.trace import TraceStore  # noqa: E402

WORDS = (
    "invoice weather paris bees honey translate french calculator total rain report "
    "summary python bug deploy server latency budget forecast dance morning"
).split()


def record(trace: TraceStore, run_id: str, n: int, started: float) -> None:
    """One agent run, its events as the runtime emits them."""
    words = " ".join(WORDS[(n * k + 3) % len(WORDS)] for k in range(1, 6))
    inputs = {"question": f"{words} number {n}"}
    trace.start_run(run_id, target="Agent/helper", kind="agent", inputs=inputs, started=started)
    bus = EventBus(run_id, [trace.sink(run_id)])
    user = ("alice", "bob", "carol")[n % 3]
    bus.emit("run.start", target="Agent/helper", kind="agent", inputs=inputs, user=user)
    bus.emit("agent.thought", step=1, agent="helper", text="think", usage={}, model="m")
    bus.emit(
        "agent.action", step=1, agent="helper", tool="calculator", input={"e": n}, call_id="call_1"
    )
    bus.emit(
        "tool.result",
        step=1,
        agent="helper",
        tool="calculator",
        call_id="call_1",
        status="ok",
        output={"result": n * 2},
    )
    bus.emit("agent.answer", step=2, agent="helper", accepted=True, output=f"{words} done")
    bus.emit("run.complete", status="succeeded", output=f"{words} done", usage={})
    trace.finish_run(run_id, status="succeeded", ended=started + 1, output=f"{words} done")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def main(runs: int, searches: int) -> None:
    folder = Path(tempfile.mkdtemp(prefix="kiln-episodic-bench-"))
    db = folder / "runs.db"
    with TraceStore(db) as trace:
        for n in range(runs):
            record(trace, f"run-{n:06d}", n, 1_700_000_000.0 + n)
    async with EpisodicStore(db) as store:
        started = time.perf_counter()
        count = await store.sync()
        took = time.perf_counter() - started
        print(f"sync: {count} runs in {took:.2f} s ({count / took:,.0f} runs/s)")

        one: list[float] = []
        with TraceStore(db) as trace:
            for n in range(runs, runs + 20):
                record(trace, f"run-{n:06d}", n, 1_700_000_000.0 + n)
                started = time.perf_counter()
                await store.index(f"run-{n:06d}")
                one.append(time.perf_counter() - started)
        print(f"index one run: p50 {statistics.median(one) * 1000:.2f} ms")

        for query in ("weather forecast in paris", ""):
            times: list[float] = []
            for _ in range(searches):
                started = time.perf_counter()
                await store.search(agent="helper", tenant="alice", query=query, k=3)
                times.append(time.perf_counter() - started)
            label = repr(query) if query else "blank query"
            print(
                f"search {label} over {await store.count(tenant='alice')} episodes:"
                f" p50 {statistics.median(times) * 1000:.2f} ms,"
                f" p95 {percentile(times, 0.95) * 1000:.2f} ms"
            )
    async with EpisodicStore(db, get_embedder("hashing/128")) as other:
        started = time.perf_counter()
        await other.search(agent="helper", tenant="alice", query="weather", k=3)
        first = time.perf_counter() - started
        started = time.perf_counter()
        await other.search(agent="helper", tenant="alice", query="weather", k=3)
        print(
            f"search after switching embedders: first {first * 1000:.1f} ms (re-embeds),"
            f" then {(time.perf_counter() - started) * 1000:.2f} ms"
        )
    print(f"file: {db.stat().st_size / 1e6:.1f} MB ({folder})")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--searches", type=int, default=50)
    args = parser.parse_args()
    anyio.run(main, args.runs, args.searches)
