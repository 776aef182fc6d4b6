"""What long-term (vector) memory costs: writes a second and query latency on ChromaDB.

Run: ``.venv/bin/python benchmarks/memory_vector_bench.py [--sizes 10000,100000]
[--namespaces 100] [--queries 300] [--writers 50] [--server]``

The embedder is the project's default (the hashing embedder, offline). The store is a
:class:`ChromaStore` in a temporary folder; with ``--server`` the same figures follow for a
:class:`ChromaServerStore` on a ``chroma run`` started for the purpose on a free loopback
port (tests/conformance/chroma_server.py), stopped at the end.

Writes, each memory a short sentence, into fresh namespaces:

- ``embed only``: the embedder alone over the same texts, one call per text (warm): the
  floor;
- ``single add``: one ``add`` of one memory at a time, awaited in turn;
- ``concurrent, 1 ns``: ``--writers`` tasks adding one memory at a time to one namespace,
  group-committed by the store;
- ``concurrent, N ns``: the same, each writer in a namespace of its own;
- ``bulk add``: one ``add`` of many memories.

Queries: the store is filled to each of ``--sizes`` memories in total, spread evenly over
``--namespaces`` agents (one namespace each, as a policy with ``scope: agent`` keeps them),
then each namespace is searched once (``first in each ns``: the first search after writes
loads the namespace's index), then ``--queries`` searches (k=5) each ask the namespace of
one agent picked at random. p50 and p95 in milliseconds, end to end (embedding the query,
the worker thread, the Chroma query); ``embed query`` is the embedding alone. Compare
ratios within one run, never figures across machines. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any

import anyio

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:  # run as a script: make the repository's packages importable
    sys.path.insert(0, ROOT)

from runtime.embed import Embedder, get_embedder  # noqa: E402
from runtime.memory.records import Memory, Namespace  # noqa: E402
from runtime.memory.vector import ChromaServerStore, ChromaStore  # noqa: E402
from tests.conformance.chroma_server import ChromaServer  # noqa: E402

Store = ChromaStore | ChromaServerStore

_SUBJECTS = "user customer manager team client vendor auditor engineer analyst board".split()
_VERBS = "prefers requested approved rejected mentioned scheduled reviewed shipped".split()
_OBJECTS = (
    "green tea, the quarterly report, invoice batch, deploy key rotation, travel budget, "
    "office move, hiring plan, pricing page, database migration, security review, "
    "onboarding guide, support backlog, marketing launch, legal contract, holiday calendar"
).split(", ")
_WHEN = "monday tuesday wednesday thursday friday morning evening weekend".split()


def sentence(rng: random.Random) -> str:
    """A short memory, varied enough that the hashing embedder spreads the vectors."""
    return (
        f"The {rng.choice(_SUBJECTS)} {rng.choice(_VERBS)} the {rng.choice(_OBJECTS)} "
        f"on {rng.choice(_WHEN)} with {rng.choice(_SUBJECTS)} {rng.randrange(10_000)}"
    )


def agent_namespace(i: int, run: str) -> str:
    return Namespace(policy=f"bench-{run}", tenant="local", scope="agent", owner=f"a{i}").key


def memories(namespace: str, count: int, rng: random.Random) -> list[Memory]:
    return [Memory(text=sentence(rng), namespace=namespace) for _ in range(count)]


def p(values: list[float], q: int) -> float:
    """The ``q``-th percentile."""
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


async def timed(work: Callable[[], Awaitable[None]]) -> float:
    started = time.perf_counter()
    await work()
    return time.perf_counter() - started


async def writes(store: Store, embedder: Embedder, writers: int, rng: random.Random) -> None:
    ops = 300
    texts = [sentence(rng) for _ in range(ops)]

    def embed_each() -> None:
        for text in texts:
            embedder.embed([text])

    embed_each()  # warm: the hashing embedder caches word features, as in steady use
    started = time.perf_counter()
    embed_each()
    floor = ops / (time.perf_counter() - started)
    rows: list[tuple[str, float]] = [("embed only", floor)]

    single = agent_namespace(0, "single")

    async def one_at_a_time() -> None:
        for text in texts:
            await store.add(single, [Memory(text=text, namespace=single)])

    rows.append(("single add", ops / await timed(one_at_a_time)))

    each = max(1, 2_000 // writers)
    for label, spread in (("concurrent, 1 ns", False), ("concurrent, N ns", True)):
        run = "spread" if spread else "shared"

        async def writer(w: int, run: str = run, spread: bool = spread) -> None:
            namespace = agent_namespace(w if spread else 0, run)
            local = random.Random(w)
            for _ in range(each):
                await store.add(namespace, [Memory(text=sentence(local), namespace=namespace)])

        async def concurrently(
            writer: Callable[[int], Coroutine[Any, Any, None]] = writer,
        ) -> None:
            async with anyio.create_task_group() as group:
                for w in range(writers):
                    group.start_soon(writer, w)

        rows.append((f"{label} ×{writers}", writers * each / await timed(concurrently)))

    bulk = agent_namespace(0, "bulk")
    batch = memories(bulk, 5_000, rng)
    rows.append(("bulk add ×5000", len(batch) / await timed(lambda: store.add(bulk, batch))))

    print(f"{'write':<24} {'memories/s':>11} {'÷ embed':>9}")
    for name, rate in rows:
        print(f"{name:<24} {rate:>11.0f} {floor / rate:>9.1f}")


async def queries(
    store: Store, embedder: Embedder, sizes: list[int], spaces: int, count: int
) -> None:
    rng = random.Random(7)
    names = [agent_namespace(i, "query") for i in range(spaces)]
    questions = [sentence(rng) for _ in range(count)]
    held = 0
    print(f"\n{'query (k=5)':<24} {'total':>8} {'per ns':>7} {'p50 ms':>8} {'p95 ms':>8}")
    for size in sizes:
        per_ns = size // spaces
        added = (per_ns - held // spaces) * spaces
        started = time.perf_counter()
        for namespace in names:  # one bulk add per namespace
            await store.add(namespace, memories(namespace, per_ns - held // spaces, rng))
        held = per_ns * spaces
        fill = time.perf_counter() - started
        # the first search of a namespace after its writes loads its index: timed apart
        first: list[float] = []
        for i, namespace in enumerate(names):
            started = time.perf_counter()
            await store.search(namespace, questions[i % count], 5)
            first.append((time.perf_counter() - started) * 1e3)
        times: list[float] = []
        embeds: list[float] = []
        for question in questions:
            namespace = rng.choice(names)
            started = time.perf_counter()
            found = await store.search(namespace, question, 5)
            times.append((time.perf_counter() - started) * 1e3)
            if not found:
                raise SystemExit(f"a search of {namespace} found nothing")
            started = time.perf_counter()
            embedder.embed([question])
            embeds.append((time.perf_counter() - started) * 1e3)
        print(
            f"{'search one agent':<24} {held:>8} {per_ns:>7} {p(times, 50):>8.2f} "
            f"{p(times, 95):>8.2f}   (filled {added} at {added / fill:.0f}/s)"
        )
        print(
            f"{'  first in each ns':<24} {'':>8} {'':>7} {p(first, 50):>8.2f} {p(first, 95):>8.2f}"
        )
        print(f"{'  embed query':<24} {'':>8} {'':>7} {p(embeds, 50):>8.3f} {p(embeds, 95):>8.3f}")


async def bench(store: Store, args: argparse.Namespace) -> None:
    embedder = get_embedder(None)
    try:
        await writes(store, embedder, args.writers, random.Random(1))
        await queries(store, embedder, args.sizes, args.namespaces, args.queries)
    finally:
        await store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000", help="comma-separated totals")
    parser.add_argument("--namespaces", type=int, default=100)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--writers", type=int, default=50)
    parser.add_argument("--server", action="store_true", help="also on a chroma server")
    args = parser.parse_args()
    args.sizes = sorted(int(s) for s in args.sizes.split(","))
    embedder = get_embedder(None)
    print(f"embedder {embedder.name}, {os.cpu_count()} CPUs\n")
    with tempfile.TemporaryDirectory(prefix="kiln-vector-bench-") as folder:
        print(f"== ChromaStore (embedded, {folder})")
        anyio.run(bench, ChromaStore(Path(folder) / "chroma", embedder), args)
        if args.server:
            with ChromaServer.started(Path(folder) / "server") as server:
                print(f"\n== ChromaServerStore ({server.url})")
                anyio.run(bench, ChromaServerStore(server.url, embedder), args)


if __name__ == "__main__":
    main()
