"""What short-term memory costs a run per turn: SQLite and Redis next to the in-process store.

Run: ``.venv/bin/python benchmarks/memory_short_term_bench.py [--ops 2000]
[--callers 1,8,32] [--turns 20] [--redis-url redis://...]``

Without ``--redis-url`` it starts its own ``redis-server`` (tests/redis_server.py) on a
free loopback port and stops it at the end; with one, it writes under a namespace of its
own and clears what it wrote. The SQLite store writes a file in a temporary folder.

Two operations, each on a window of ``--turns`` turns, as a run does once a turn:

- ``append+read``: append one turn (with a TTL), then read the whole window;
- ``append+fit``: append one turn, then :func:`runtime.memory.window.fit` with
  ``max_messages`` at the window's size and no summarizer: it reads the window, finds it one
  over and compacts the oldest turn away (two round trips on Redis after the append, two
  transactions on SQLite).

Each operation gets a namespace of its own, filled beforehand, so every one sees the same
window. ``callers`` tasks share one store (one connection pool; for SQLite one connection,
which they take in turns) and run the operations between them. Latency per operation (p50,
p95 in microseconds) and throughput (operations a second over the wall time of a whole
batch); ``× floor`` is a p50 over the in-process ``append+read`` with one caller. Compare
ratios within one run, never figures across machines. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import anyio

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:  # run as a script: make the repository's packages importable
    sys.path.insert(0, ROOT)

from runtime.memory.protocols import ShortTermStore  # noqa: E402
from runtime.memory.records import Namespace, Turn  # noqa: E402
from runtime.memory.short_term import InProcessShortTerm  # noqa: E402
from runtime.memory.short_term.redis import RedisShortTerm  # noqa: E402
from runtime.memory.short_term.sqlite import SqliteShortTerm  # noqa: E402
from runtime.memory.window import fit  # noqa: E402
from tests.redis_server import RedisServer  # noqa: E402

TTL_S = 3600
#: a typical chat message, about 40 tokens
TEXT = "The quick brown fox jumps over the lazy dog while the model thinks. " * 2

Operation = Callable[[ShortTermStore, str, int], Awaitable[None]]


async def append_read(store: ShortTermStore, namespace: str, turns: int) -> None:
    await store.append(namespace, [Turn(role="user", content=TEXT)], ttl_s=TTL_S)
    window = await store.window(namespace)
    if len(window) != turns:
        raise SystemExit(f"expected a window of {turns} turns, read {len(window)}")


async def append_fit(store: ShortTermStore, namespace: str, turns: int) -> None:
    await store.append(namespace, [Turn(role="user", content=TEXT)], ttl_s=TTL_S)
    result = await fit(store, namespace, max_messages=turns, max_tokens=None, summarize=None)
    if result.action != "dropped" or len(result.turns) != turns:
        raise SystemExit(f"expected one turn dropped, got: {result.message}")


OPERATIONS: dict[str, tuple[Operation, int]] = {
    # name: (operation, turns the window holds before it: after it, it holds --turns)
    "append+read": (append_read, -1),
    "append+fit": (append_fit, 0),
}


async def run_batch(
    store: ShortTermStore, operation: Operation, prefill: int, turns: int, ops: int, callers: int
) -> tuple[list[float], float]:
    """(per-operation latencies in µs, operations a second) of ``ops`` operations run by
    ``callers`` concurrent tasks, each operation on a namespace filled with ``prefill``."""
    policy = f"bench-{uuid.uuid4().hex[:8]}"
    names = [
        Namespace(policy=policy, tenant="bench", scope="session", owner=str(i)).key
        for i in range(ops)
    ]
    filler = [Turn(role="assistant" if i % 2 else "user", content=TEXT) for i in range(prefill)]
    for name in names:
        await store.append(name, filler, ttl_s=TTL_S)
    times: list[float] = []
    todo = iter(names)

    async def caller() -> None:
        for name in todo:  # the tasks share one iterator: each name is run once
            started = time.perf_counter()
            await operation(store, name, turns)
            times.append((time.perf_counter() - started) * 1e6)

    started = time.perf_counter()
    async with anyio.create_task_group() as tg:
        for _ in range(callers):
            tg.start_soon(caller)
    elapsed = time.perf_counter() - started
    for name in names:
        await store.clear(name)
    return times, ops / elapsed


async def bench(redis_url: str, ops: int, callers: list[int], turns: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        await bench_stores(redis_url, Path(folder) / "short_term.db", ops, callers, turns)


async def bench_stores(
    redis_url: str, sqlite_path: Path, ops: int, callers: list[int], turns: int
) -> None:
    inprocess = InProcessShortTerm()
    sqlite = SqliteShortTerm(sqlite_path)
    redis = RedisShortTerm(redis_url)
    stores: tuple[tuple[str, ShortTermStore], ...] = (
        ("inprocess", inprocess),
        ("sqlite", sqlite),
        ("redis", redis),
    )
    try:
        for _, store in stores:  # warm: connections, scripts, code paths
            for operation, extra in OPERATIONS.values():
                await run_batch(store, operation, turns + extra, turns, 50, 4)
        rows: list[tuple[str, str, int, list[float], float]] = []
        for label, store in stores:
            for name, (operation, extra) in OPERATIONS.items():
                for count in callers:
                    times, rate = await run_batch(
                        store, operation, turns + extra, turns, ops, count
                    )
                    rows.append((label, name, count, times, rate))
    finally:
        await redis.close()
        await sqlite.close()
        await inprocess.close()

    floor = statistics.median(rows[0][3])
    print(f"{ops} operations a batch, windows of {turns} turns of {len(TEXT)} characters")
    head = f"{'store':<10} {'operation':<12} {'callers':>7} {'p50 µs':>9} {'p95 µs':>9}"
    print(f"{head} {'ops/s':>9} {'× floor':>8}")
    for label, name, count, times, rate in rows:
        p50 = statistics.median(times)
        p95 = statistics.quantiles(times, n=20)[-1]
        print(
            f"{label:<10} {name:<12} {count:>7} {p50:>9.1f} {p95:>9.1f} {rate:>9.0f}"
            f" {p50 / floor:>8.1f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--ops", type=int, default=2000, help="operations a batch")
    parser.add_argument("--callers", default="1,8,32", help="concurrent callers, comma-separated")
    parser.add_argument("--turns", type=int, default=20, help="turns in each window")
    parser.add_argument("--redis-url", help="a running server (default: start one)")
    args = parser.parse_args()
    callers = [int(c) for c in args.callers.split(",")]
    if args.redis_url:
        anyio.run(bench, args.redis_url, args.ops, callers, args.turns)
        return
    with tempfile.TemporaryDirectory() as folder:
        with RedisServer.started(Path(folder)) as server:
            anyio.run(bench, server.url, args.ops, callers, args.turns)


if __name__ == "__main__":
    main()
