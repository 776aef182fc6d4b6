"""What the embedded graph memory (networkx on SQLite) costs at 100,000 relations.

Run: ``.venv/bin/python benchmarks/memory_graph_bench.py [--edges 100000] [--entities 25000]``

Builds one namespace of ``--entities`` made-up names (one to three invented words each, so
first words vary as real names do) and ``--edges`` relations between them (targets skewed
towards a few hubs, as real knowledge graphs are), through
:class:`runtime.memory.graph.nx.NetworkxGraph`, then measures:

- ``merge (batch)``: building it, 1,000 relations a call (relations per second);
- ``merge (one)``: one relation a call into the loaded namespace, as a run writes;
- ``cold load``: a new store's first query, which reads the whole namespace from SQLite;
- ``neighbourhood d1`` / ``d2``: from one entity, depth 1 and 2, limit 50;
- ``match``: the entities a 30-word sentence mentions (two or three of them).

Latencies in milliseconds (median and p95); each call includes the hop to a worker
thread that every store call takes. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:  # run as a script: make the repository's packages importable
    sys.path.insert(0, ROOT)

from runtime.memory.graph.nx import NetworkxGraph  # noqa: E402
from runtime.memory.records import Relation  # noqa: E402

NS = "bench/local/user:local"
SYLLABLES = (
    "ka ri to na mo lu se vi da pe ro ma ti zu be no la ge fi ku sa re do mi ta ne bo li ve ra"
).split()
RELATIONS = (
    "knows works_at lives_in likes part_of located_in founded owns visited related_to "
    "married_to studied_at wrote member_of near"
).split()
FILLER = (
    "yesterday we talked about how the project went and whether anyone had met with them "
    "before the end of the quarter while the weather was fine"
).split()


def names(count: int, rng: random.Random) -> list[str]:
    made: dict[str, None] = {}
    while len(made) < count:
        words = [
            "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 3))).capitalize()
            for _ in range(rng.choice((1, 2, 2, 3)))
        ]
        made[" ".join(words)] = None
    return list(made)


def edges(people: list[str], count: int, rng: random.Random) -> list[Relation]:
    made: dict[tuple[int, str, int], None] = {}
    while len(made) < count:
        source = rng.randrange(len(people))
        target = int(len(people) * rng.random() ** 2)  # skewed: low indices are hubs
        if source != target:
            made[source, rng.choice(RELATIONS), target] = None
    return [
        Relation(source=people[s], relation=r, target=people[t], ts=float(i + 1))
        for i, (s, r, t) in enumerate(made)
    ]


def sentence(people: list[str], rng: random.Random) -> str:
    words = [rng.choice(FILLER) for _ in range(30)]
    for name in rng.sample(people, rng.choice((2, 3))):
        words.insert(rng.randrange(len(words)), name)
    return " ".join(words) + "."


async def timed(call: Callable[[], Awaitable[Any]], runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        await call()
        times.append((time.perf_counter() - started) * 1e3)
    return times


def row(label: str, times: list[float]) -> None:
    p95 = statistics.quantiles(times, n=20)[-1] if len(times) > 1 else times[0]
    print(f"  {label:<22} p50 {statistics.median(times):8.3f} ms   p95 {p95:8.3f} ms")


async def main(args: argparse.Namespace, folder: Path) -> None:
    rng = random.Random(args.seed)
    people = names(args.entities, rng)
    relations = edges(people, args.edges, rng)
    path = folder / "graph.db"
    print(f"graph memory: {len(people):,} names, {len(relations):,} relations, {path}")

    store = NetworkxGraph(path)
    started = time.perf_counter()
    for i in range(0, len(relations), 1000):
        await store.merge(NS, [], relations[i : i + 1000])
    built = time.perf_counter() - started
    entities, edge_count = await store.counts(NS)
    print(f"  stored: {entities:,} entities, {edge_count:,} relations")
    print(f"  {'merge (batch)':<22} {len(relations) / built:10,.0f} relations/s ({built:.1f} s)")
    await store.close()

    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    store = NetworkxGraph(path)
    started = time.perf_counter()
    await store.neighbourhood(NS, [people[0]], depth=1)
    cold = time.perf_counter() - started
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    grown = (rss_after - rss_before) / 1024
    print(f"  {'cold load':<22} {cold * 1e3:10,.0f} ms (peak RSS +{grown:,.0f} MB)")

    seeds = [rng.choice(people) for _ in range(args.queries)]
    found: list[int] = []

    def near(depth: int) -> Callable[[], Awaitable[Any]]:
        picks = iter(seeds * 2)

        async def call() -> None:
            found.append(len(await store.neighbourhood(NS, [next(picks)], depth=depth, limit=50)))

        return call

    row("neighbourhood d1", await timed(near(1), args.queries))
    print(f"  {'':<22} mean {statistics.mean(found):.1f} relations returned")
    found.clear()
    row("neighbourhood d2", await timed(near(2), args.queries))
    print(f"  {'':<22} mean {statistics.mean(found):.1f} relations returned")

    texts = iter([sentence(people, rng) for _ in range(args.queries)])
    mentions: list[int] = []

    async def match() -> None:
        mentions.append(len(await store.match(NS, next(texts))))

    row("match (30 words)", await timed(match, args.queries))
    print(f"  {'':<22} mean {statistics.mean(mentions):.1f} names found")

    extra = iter(edges(people, args.queries, random.Random(args.seed + 1)))

    async def merge_one() -> None:
        await store.merge(NS, [], [next(extra)])

    times = await timed(merge_one, args.queries)
    row("merge (one)", times)
    print(f"  {'':<22} {1e3 / statistics.mean(times):10,.0f} merges/s, one task")
    print(f"  file: {path.stat().st_size / 2**20:,.1f} MB")
    await store.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--edges", type=int, default=100_000)
    parser.add_argument("--entities", type=int, default=25_000)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--dir", type=Path, help="keep the database here (default: a temp dir)")
    options = parser.parse_args()
    if options.dir is not None:
        options.dir.mkdir(parents=True, exist_ok=True)
        anyio.run(main, options, options.dir)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            anyio.run(main, options, Path(tmp))
