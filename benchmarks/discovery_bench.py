"""Tool discovery: quality and speed of each embedder.

Run: ``.venv/bin/python benchmarks/discovery_bench.py [--embedders default,sentence]
[--tools 1000] [--repeats 5]``

1. Quality on the suite of ``tests/discovery_cases.py``: the stdlib tools as shipped in
   ``stdlib_tools/*.yaml`` among 100 decoys; top-1 and top-3 accuracy over the cases the
   default embedder was tuned on, the held-out cases (written after the tuning, never used
   for it: the honest figure) and all of them.
2. Speed, per embedder: the first load (the sentence model: reading its weights), building
   the suite's index (every text embedded, no cache), the same from its cache file, building
   an index of ``--tools`` tools (the decoys' texts varied, so nothing repeats), and query
   latency p50/p95 (embedding the query, scoring every tool, sorting) on both indexes.
3. The hashing embedder's throughput on short texts: warm (words seen before, the usual case
   for tool texts and memories) and cold (every text brings new words). Target: > 10,000
   texts/s.

Figures are printed, never asserted (these machines are noisy).
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: make the repository's packages importable
    sys.path.insert(0, str(ROOT))

from runtime.embed import Embedder, get_embedder  # noqa: E402
from runtime.embed.hashing import HashingEmbedder  # noqa: E402
from runtime.tools.discovery import Candidate, ToolIndex, search_text  # noqa: E402
from tests import discovery_cases as suite  # noqa: E402

THROUGHPUT_TARGET = 10_000
T = TypeVar("T")


def timed(work: Callable[[], T]) -> tuple[float, T]:
    started = time.perf_counter()
    result = work()
    return time.perf_counter() - started, result


def best(work: Callable[[], object], repeats: int) -> float:
    return min(timed(work)[0] for _ in range(repeats))


def many_tools(n: int, seed: int = 0) -> list[Candidate]:
    """``n`` distinct tools: decoy texts with words swapped between them."""
    rng = random.Random(seed)
    decoys = suite.decoys()
    vocabulary = sorted({w for d in decoys for w in d.description.rstrip(".").split()})
    tools = []
    for i in range(n):
        base = decoys[i % len(decoys)]
        words = base.description.rstrip(".").split()
        words[rng.randrange(len(words))] = rng.choice(vocabulary)
        description = " ".join(words) + f" (variant {i})."
        name = f"{base.name}_{i}"
        tools.append(Candidate(name, description, text=search_text(name, description)))
    return tools


def latencies(index: ToolIndex, queries: Sequence[str], rounds: int) -> tuple[float, float]:
    """p50 and p95 of one search, in milliseconds."""
    samples = []
    for _ in range(rounds):
        for query in queries:
            started = time.perf_counter()
            index.search(query, 5)
            samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.95) - 1]


def quality(embedder: Embedder) -> None:
    reports = suite.measure(embedder)
    for part in ("tuning", "held_out", "all"):
        if part in reports:
            r = reports[part]
            print(f"  quality {part:<9} {r.cases:>3} cases  top-1 {r.top1:.3f}  top-3 {r.top3:.3f}")


def speed(embedder: Embedder, tools: int, repeats: int) -> None:
    queries = [q for q, _ in suite.CASES + suite.HELD_OUT]
    candidates = suite.candidates()
    print(f"  first embed (loads the model if any): {timed(lambda: embedder.embed(['x']))[0]:.2f}s")
    build = best(lambda: ToolIndex.build(candidates, embedder), repeats)
    print(f"  build, {len(candidates)} tools, no cache:  {build * 1000:8.1f} ms")
    with tempfile.TemporaryDirectory(prefix="kiln-bench-") as tmp:
        ToolIndex.load_or_build(candidates, embedder, Path(tmp))
        hit = best(lambda: ToolIndex.load_or_build(candidates, embedder, Path(tmp)), repeats)
        assert ToolIndex.load_or_build(candidates, embedder, Path(tmp)).cache_hit
    print(f"  load, {len(candidates)} tools, cache hit: {hit * 1000:8.1f} ms")
    index = ToolIndex.build(candidates, embedder)
    p50, p95 = latencies(index, queries, 5)
    print(f"  query, {len(candidates)} tools: p50 {p50:.2f} ms  p95 {p95:.2f} ms")
    big_tools = many_tools(tools)
    big_time, big = timed(lambda: ToolIndex.build(big_tools, embedder))
    print(f"  build, {tools} tools, no cache: {big_time * 1000:8.1f} ms")
    p50, p95 = latencies(big, queries, 2)
    print(f"  query, {tools} tools: p50 {p50:.2f} ms  p95 {p95:.2f} ms")


def throughput(n: int = 20_000) -> None:
    rng = random.Random(1)
    words = " ".join(q for q, _ in suite.CASES + suite.HELD_OUT).split()
    warm_texts = [" ".join(rng.choice(words) for _ in range(12)) for _ in range(n)]
    embedder = HashingEmbedder()
    embedder.embed(warm_texts[:1000])
    warm = min(timed(lambda: embedder.embed(warm_texts))[0] for _ in range(3))
    # every text brings three words never seen (in a fresh embedder: cold caches)
    cold_texts = [f"{t} zq{i}x wv{i * 7}y kx{i % 997}" for i, t in enumerate(warm_texts)]
    cold = timed(lambda: HashingEmbedder().embed(cold_texts))[0]
    print(f"hashing throughput, {n} texts of 12 words (target > {THROUGHPUT_TARGET:,}/s):")
    print(f"  warm {n / warm:10,.0f} texts/s")
    print(f"  cold {n / cold:10,.0f} texts/s (3 unseen words per text)")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--embedders", default="default,sentence")
    parser.add_argument("--tools", type=int, default=1000, help="size of the large index")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    for spec in args.embedders.split(","):
        embedder = get_embedder(spec)
        print(f"{spec}: {embedder.name}")
        speed(embedder, args.tools, args.repeats)
        quality(embedder)
    throughput()
    return 0


if __name__ == "__main__":
    sys.exit(main())
