"""Runtime benchmarks on the scripted model and a no-op builtin tool (``benchmarks/``).

Under a plain ``pytest`` (``--benchmark-disable``) each body runs once, as a test of what it
measures. For figures: ``pytest tests/benchmarks --benchmark-enable``.
``benchmarks/runtime_bench.py`` prints per-step microseconds against a floor, and 10,000
concurrent runs with their wall time and peak RSS.
"""

from __future__ import annotations

import itertools
from collections import Counter
from pathlib import Path
from typing import Any

import anyio
import pytest

from benchmarks.runtime_bench import Project, events_per_run, model_of, runner_run
from runtime.events import Event
from runtime.executor import RunResult

STEPS = 20
#: Runs of :data:`STEPS` per round: one event loop per round costs ~0.25 ms, a tenth of a
#: run, so a round runs several (per step: a round's time / (RUNS * STEPS)).
RUNS = 10
CONCURRENT = 200
DELAY_MS = 10


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    return Project(Path(tmp_path_factory.mktemp("runtime-bench")))


def test_script_shape(project: Project) -> None:
    prepared = project.prepared(3, delay_ms=DELAY_MS)
    turns = model_of(prepared).turns
    assert [sorted(t.data) for t in turns["stepper"]] == [
        ["delay_ms", "input", "thought", "tool"],
        ["delay_ms", "input", "thought", "tool"],
        ["delay_ms", "final", "thought"],
    ]


def test_react_steps(benchmark: Any, project: Project) -> None:
    """Runs of 20 steps one after the other: 19 noop calls and the final answer each."""
    events: list[Event] = []
    run_one = runner_run(project.prepared(STEPS), [events.append])
    ids = itertools.count()

    async def runs() -> list[tuple[RunResult, list[str]]]:
        out: list[tuple[RunResult, list[str]]] = []
        for _ in range(RUNS):
            events.clear()
            result = await run_one(f"steps-{next(ids)}")
            out.append((result, [e.type for e in events]))
        return out

    results = benchmark(anyio.run, runs)
    assert len(results) == RUNS
    for result, types in results:
        assert result.ok, result.error
        assert result.output == {"answer": "done"}
        assert len(types) == events_per_run(STEPS)
        assert Counter(types)["tool.result"] == STEPS - 1
        assert types[0] == "run.start" and types[-1] == "run.complete"


def test_concurrent_runs(benchmark: Any, project: Project) -> None:
    """200 runs at once of 5 steps, the model waiting 10 ms a step: the wall time is the
    50 ms of waiting plus whatever the runtime cannot overlap."""
    steps = 5
    counts: dict[str, int] = {}
    results: dict[str, RunResult] = {}

    def sink(event: Event) -> None:
        counts[event.run_id] = counts.get(event.run_id, 0) + 1

    run_one = runner_run(project.prepared(steps, delay_ms=DELAY_MS), [sink])
    rounds = itertools.count()

    async def together() -> int:
        counts.clear()
        results.clear()
        batch = next(rounds)

        async def one(n: int) -> None:
            run_id = f"many-{batch}-{n}"
            results[run_id] = await run_one(run_id)

        async with anyio.create_task_group() as tg:
            for n in range(CONCURRENT):
                tg.start_soon(one, n)
        return len(results)

    assert benchmark(anyio.run, together) == CONCURRENT
    assert all(r.ok for r in results.values()), {r.status for r in results.values()}
    assert set(counts) == set(results)
    assert set(counts.values()) == {events_per_run(steps)}
    # Each run waited 10 ms five times; concurrently, not one after another (200 x 50 ms).
    assert min(r.duration_ms for r in results.values()) >= steps * DELAY_MS * 0.9
