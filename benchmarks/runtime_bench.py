"""What the runtime costs per ReAct step, and how many agent runs one process carries.

Run: ``.venv/bin/python benchmarks/runtime_bench.py [--steps 5,20,100] [--runs 10000]
[--repeats N] [--quick] [--profile]``

Every run is of one agent on the scripted model (``runtime/llm/scripted.py``): a run of N
steps is N model calls, N-1 of them calling ``noop`` (a ``builtin`` tool that returns ``{}``:
``stdlib_tools/noop.py``) and the last giving the final answer. The specs and scripts
are written to a temporary folder.

1. Per step. The model answers at once (model time 0), so a run's time over its N steps is
   the framework's overhead per step: prompt and schema building, context fitting, the
   gateway, input and output validation, events. Variants: no sinks; events to a list,
   as JSON lines (to /dev/null, flushed per line, as ``--events`` does), to the SQLite
   trace store (``runtime.run.execute`` with a store: the run's row and its events); and
   loose schemas (a tool with no input properties or output schema, an agent with no
   output schema: what JSON Schema validation costs, by difference). Each is a ratio to a
   floor measured in the same process: a bare loop awaiting the same scripted model and
   calling the tool function directly. Batches of each variant are interleaved, so a noisy
   neighbour hurts all alike. A line through the two shortest runs splits the no-sink cost
   into per run and per step; the longest shows how the per-step cost grows with the
   conversation. Target: < 100 us per step.
2. What the pieces of a step cost, one call at a time, so a regression is easy to place.
3. Many runs: ``--runs`` concurrent runs (default 10,000) of 5 steps, the model waiting
   10 ms per step (``delay_ms``), in a fresh process per variant: no sinks; the SQLite
   trace store, one store shared by every run; a floor (as many bare coroutines awaiting
   the model and calling the tool); and no sinks with the garbage collector's first
   threshold raised to 50,000 (what the collector costs when 10,000 runs are alive at
   once). Wall time, CPU time, time in the garbage collector, peak RSS.
   Targets (2 cores): < 15 s wall and < 1.5 GB peak RSS for 10,000 runs.

Figures are printed, never asserted (these machines are noisy): the exit status is non-zero
only when something fails functionally (a run did not succeed, an event went missing).
"""

from __future__ import annotations

import argparse
import cProfile
import functools
import gc
import json
import os
import pstats
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import timeit
from collections.abc import Awaitable, Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: make the repository's packages importable
    sys.path.insert(0, str(ROOT))

import anyio  # noqa: E402
import yaml  # noqa: E402

from compiler.pipeline import Compilation, compile_paths  # noqa: E402
from runtime.events import Event, EventBus, JsonlWriter, Sink  # noqa: E402
from runtime.executor import RunResult  # noqa: E402
from runtime.llm.scripted import ScriptedModel  # noqa: E402
from runtime.llm.types import ModelRequest  # noqa: E402
from runtime.run import Prepared, execute, prepare  # noqa: E402
from runtime.trace import TraceStore  # noqa: E402
from stdlib_tools import noop as noop_tool  # noqa: E402

STEP_TARGET_US = 100.0
WALL_TARGET_S = 15.0
RSS_TARGET_MB = 1500.0

#: Two tools and two agents: ``stepper`` validates everything a real agent would (tool
#: input and output, the final answer); ``loose`` has nothing to validate.
SPECS = """\
apiVersion: kiln/v1
kind: Tool
metadata: {name: noop}
spec:
  description: Does nothing and returns an empty object.
  input_schema:
    type: object
    properties: {i: {type: integer, description: the step number}}
    required: [i]
    additionalProperties: false
  output_schema: {type: object}
  executor: {type: builtin, function: "stdlib_tools.noop:run"}
---
apiVersion: kiln/v1
kind: Tool
metadata: {name: noop-loose}
spec:
  description: Does nothing, with nothing to validate.
  executor: {type: builtin, function: "stdlib_tools.noop:run"}
---
apiVersion: kiln/v1
kind: Agent
metadata: {name: stepper}
spec:
  model: scripted:../script.yaml  # every benchmark passes its own script as the model
  instructions: Call noop once per step until you are done, then answer.
  tools: [noop]
  limits: {max_iterations: 10000, timeout_s: 3600, max_tokens: 100000000}
  output_schema:
    type: object
    properties: {answer: {type: string}}
    required: [answer]
---
apiVersion: kiln/v1
kind: Agent
metadata: {name: loose}
spec:
  model: scripted:../script.yaml
  instructions: Call noop-loose once per step until you are done, then answer.
  tools: [noop-loose]
  limits: {max_iterations: 10000, timeout_s: 3600, max_tokens: 100000000}
"""
AGENT_TOOLS = {"stepper": "noop", "loose": "noop-loose"}
FINALS: dict[str, Any] = {"stepper": {"answer": "done"}, "loose": "done"}

RunOne = Callable[[str], Awaitable[RunResult]]


def events_per_run(steps: int) -> int:
    """run.start, per tool step thought + action + tool.result, then thought, agent.answer
    and run.complete."""
    return 3 * (steps - 1) + 4


def script(steps: int, delay_ms: float = 0) -> dict[str, list[dict[str, Any]]]:
    """Turns for every agent of :data:`SPECS`: ``steps - 1`` tool calls (each with its own
    input: the loop guard stops identical calls), then the final answer."""
    out: dict[str, list[dict[str, Any]]] = {}
    for agent, tool in AGENT_TOOLS.items():
        turns: list[dict[str, Any]] = [
            {"thought": f"step {i}", "tool": tool, "input": {"i": i}} for i in range(steps - 1)
        ]
        turns.append({"thought": "done", "final": FINALS[agent]})
        if delay_ms:
            for turn in turns:
                turn["delay_ms"] = delay_ms
        out[agent] = turns
    return out


@dataclass
class Project:
    """The benchmark specs compiled once, and one :class:`Prepared` per script."""

    root: Path
    compilation: Compilation = field(init=False)

    def __post_init__(self) -> None:
        specs = self.root / "specs"
        specs.mkdir(parents=True, exist_ok=True)
        (specs / "bench.yaml").write_text(SPECS, encoding="utf-8")
        # the specs name a default script (every benchmark passes its own with --model)
        (self.root / "script.yaml").write_text("stepper: []\n", encoding="utf-8")
        self.compilation = compile_paths([specs])
        if not self.compilation.ok:
            raise RuntimeError(f"the benchmark specs do not compile: {self.compilation.errors}")

    def prepared(self, steps: int, *, delay_ms: float = 0, agent: str = "stepper") -> Prepared:
        path = self.root / f"script-{steps}-{delay_ms:g}.yaml"
        if not path.exists():
            path.write_text(yaml.safe_dump(script(steps, delay_ms)), encoding="utf-8")
        return prepare(
            [self.root / "specs"],
            agent=agent,
            text="go",
            model=f"scripted:{path}",
            compilation=self.compilation,
        )


def model_of(prepared: Prepared) -> ScriptedModel:
    model = prepared.runner.gateway.backend(prepared.runner.models_for(prepared.target)[0])
    assert isinstance(model, ScriptedModel)
    return model


async def floor_run(model: ScriptedModel, agent: str, run_id: str, *, forget: bool = True) -> int:
    """The least a step can cost: await the scripted model, decode its reply, call the tool
    function. Returns the number of steps. ``forget=False`` leaves the model's position for
    the run behind (``ScriptedModel.forget`` scans every position: see part 3)."""
    request = ModelRequest(
        messages=[{"role": "system", "content": "x"}, {"role": "user", "content": "go"}],
        purpose="act",
        run_id=run_id,
        agent=agent,
    )
    steps = 0
    while True:
        response = await model.complete(request)
        steps += 1
        reply = json.loads(response.text)
        if "final" in reply:
            break
        noop_tool.run(**reply["input"])
    if forget:
        model.forget(run_id)
    return steps


def runner_run(prepared: Prepared, sinks: Sequence[Sink] = ()) -> RunOne:
    async def run(run_id: str) -> RunResult:
        return await prepared.runner.run(
            prepared.target,
            inputs=prepared.inputs,
            text=prepared.text,
            bus=EventBus(run_id, sinks),
            run_id=run_id,
        )

    return run


def traced_run(prepared: Prepared, store: TraceStore, durability: Any = None) -> RunOne:
    """Runs recorded in ``store``; with a ``durability``, every step journaled too."""

    async def run(run_id: str) -> RunResult:
        return await execute(prepared, store=store, run_id=run_id, durability=durability)

    return run


@dataclass
class Failures:
    """Functional failures seen while measuring: any makes the exit status non-zero."""

    messages: list[str] = field(default_factory=list)

    def check(self, label: str, result: RunResult, steps: int, events: int | None = None) -> None:
        if not result.ok:
            self.messages.append(f"{label}: run {result.run_id} {result.status}: {result.error}")
        if events is not None and events != events_per_run(steps):
            self.messages.append(f"{label}: {events} events, expected {events_per_run(steps)}")


# -- 1. per step ----------------------------------------------------------------------------


@dataclass
class Variant:
    label: str
    run_one: RunOne | None  # None: the floor
    model: ScriptedModel
    agent: str
    events: list[Event] | None = None  # a list sink: checked, then cleared per run


def variants(project: Project, steps: int, tmp: Path, stack: ExitStack) -> list[Variant]:
    strict = project.prepared(steps)
    loose = project.prepared(steps, agent="loose")
    collected: list[Event] = []
    devnull = JsonlWriter.open(os.devnull)
    stack.callback(devnull.close)
    store = stack.enter_context(TraceStore(tmp / f"per-step-{steps}.db"))
    model = model_of(strict)
    return [
        Variant("floor: bare loop, model + tool function", None, model, "stepper"),
        Variant("runner, no sinks", runner_run(strict), model, "stepper"),
        Variant(
            "runner, events to a list",
            runner_run(strict, [collected.append]),
            model,
            "stepper",
            collected,
        ),
        Variant(
            "runner, events as JSONL (/dev/null)", runner_run(strict, [devnull]), model, "stepper"
        ),
        Variant(
            "runner, SQLite trace store (execute)", traced_run(strict, store), model, "stepper"
        ),
        Variant(JOURNALED, traced_run(strict, store, "sync"), model, "stepper"),
        Variant("runner, loose schemas, no sinks", runner_run(loose), model_of(loose), "loose"),
    ]


async def batch(variant: Variant, steps: int, runs: int, tag: str, failures: Failures) -> float:
    """Seconds per step over ``runs`` runs one after the other."""
    gc.collect()
    started = time.perf_counter()
    for n in range(runs):
        run_id = f"{tag}-{steps}-{n}"
        if variant.run_one is None:
            done = await floor_run(variant.model, variant.agent, run_id)
            if done != steps:
                failures.messages.append(f"floor: {done} steps, expected {steps}")
            continue
        result = await variant.run_one(run_id)
        if variant.events is not None:
            failures.check(variant.label, result, steps, len(variant.events))
            variant.events.clear()
        else:
            failures.check(variant.label, result, steps)
    return (time.perf_counter() - started) / (runs * steps)


async def per_step(
    project: Project,
    steps_list: Sequence[int],
    budget: int,
    repeats: int,
    tmp: Path,
    failures: Failures,
) -> dict[int, dict[str, list[float]]]:
    """Seconds per step, by step count and variant label."""
    out: dict[int, dict[str, list[float]]] = {}
    for steps in steps_list:
        runs = max(5, budget // steps)
        with ExitStack() as stack:
            chosen = variants(project, steps, tmp, stack)
            for i, v in enumerate(chosen):  # warm up: imports, validators, template caches
                await batch(v, steps, 2, f"warm{i}", failures)
            times: dict[str, list[float]] = {v.label: [] for v in chosen}
            for repeat in range(repeats):
                for i, v in enumerate(chosen):
                    times[v.label].append(await batch(v, steps, runs, f"r{repeat}v{i}", failures))
        out[steps] = times
    return out


def report_per_step(results: dict[int, dict[str, list[float]]], budget: int, repeats: int) -> None:
    steps_list = sorted(results)
    print(
        f"\n1. per step: N steps = N-1 noop tool calls + the final answer; the model answers"
        f" at once\n   (~{budget} steps per batch, median of {repeats} interleaved batches;"
        " ratio: to the floor at the same N)"
    )
    head = "".join(f"{f'{n} steps':>20}" for n in steps_list)
    print(f"  {'':<42}{head}")
    print(f"  {'':<42}{'   us/step    ratio' * len(steps_list)}")
    labels = list(results[steps_list[0]])
    for label in labels:
        cells = ""
        for n in steps_list:
            us = statistics.median(results[n][label]) * 1e6
            floor = statistics.median(results[n][labels[0]]) * 1e6
            cells += f"{us:10.1f} {us / floor:7.1f}x "
        print(f"  {label:<42}{cells}")
    bare = "runner, no sinks"
    if len(steps_list) > 1:
        # Through the two shortest runs: the per-step cost grows with the conversation (see
        # 2.), so a line through the longest would charge that growth to every step.
        lo, hi = steps_list[0], steps_list[1]
        t_lo = statistics.median(results[lo][bare]) * lo
        t_hi = statistics.median(results[hi][bare]) * hi
        marginal = (t_hi - t_lo) / (hi - lo)
        print(
            f"  no sinks, a line through {lo} and {hi} steps: {marginal * 1e6:.1f} us per step"
            f" + {(t_lo - marginal * lo) * 1e6:.0f} us per run"
        )
    mid = 20 if 20 in results else steps_list[len(steps_list) // 2]
    # Differences of the least disturbed batches: medians of a noisy machine differ by more
    # than the cheapest parts cost.
    at = {label: min(times) * 1e6 for label, times in results[mid].items()}
    print(
        f"  breakdown at {mid} steps (us per step, fastest batch of each; sinks against no sinks):"
    )
    print(f"    floor (scripted model + tool function)   {at[labels[0]]:7.1f}")
    print(f"    runtime overhead, no sinks               {at[bare] - at[labels[0]]:+7.1f}")
    for label in labels[2:5]:
        print(f"    {label.removeprefix('runner, '):<40} {at[label] - at[bare]:+7.1f}")
    journal = at[JOURNALED] - at["runner, SQLite trace store (execute)"]
    print(f"    the journal, sync (over the trace store) {journal:+7.1f}")
    loose = at["runner, loose schemas, no sinks"]
    print(f"    JSON Schema validation (strict - loose)  {at[bare] - loose:+7.1f}")
    for label in (bare, "runner, SQLite trace store (execute)"):
        us = statistics.median(results[mid][label]) * 1e6
        verdict = "ok" if us < STEP_TARGET_US else "OVER TARGET"
        print(
            f"  {label}, {mid} steps: {us:.1f} us per step (median) "
            f"(target < {STEP_TARGET_US:.0f} us: {verdict})"
        )


# -- 2. the pieces of a step ----------------------------------------------------------------


def micro(project: Project, steps_list: Sequence[int]) -> list[tuple[str, float]]:
    """Microseconds per call of what one step does, each on its own."""
    from runtime.agent import prompts
    from runtime.agent.job import check_answer, parse_json_reply
    from runtime.llm.types import message_tokens
    from runtime.tools import bind, schema_error

    program = project.compilation.program
    assert program is not None
    tool = bind(program.tool("noop"))
    output_schema = program.agent("stepper").spec.output_schema
    reply = json.dumps({"thought": "step 3", "tool": "noop", "input": {"i": 3}})
    kept: list[Event] = []
    quiet, listed = EventBus("m"), EventBus("m", [kept.append])
    store = TraceStore(project.root / "micro.db")
    store.start_run("m", target="Agent/stepper", kind="agent", inputs={}, started=time.time())
    traced = EventBus("m", [store.sink("m")])

    def emit(bus: EventBus) -> Callable[[], object]:
        return lambda: bus.emit(
            "agent.action", step=3, agent="stepper", tool="noop", input={"i": 3}, call_id="c3"
        )

    def conversation(steps: int) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = [
            {"role": "system", "content": "x" * 900},
            {"role": "user", "content": "go"},
        ]
        for i in range(steps):
            messages.append({"role": "assistant", "content": reply.replace("3", str(i))})
            messages.append(
                {"role": "user", "name": "observation", "content": "Observation from noop: {}"}
            )
        return messages

    cases: list[tuple[str, Callable[[], object]]] = [
        ("EventBus.emit, no sinks", emit(quiet)),
        ("EventBus.emit, a list sink", emit(listed)),
        ("EventBus.emit, trace store sink (batched)", emit(traced)),
        (
            "tool input check (schema_error, valid)",
            lambda: schema_error(tool.input_validator, {"i": 3}),
        ),
        ("tool input check, is_valid only", lambda: tool.input_validator.is_valid({"i": 3})),
        ("final answer check (check_answer)", lambda: check_answer({"answer": "x"}, output_schema)),
        (
            "prompts.action_schema (rebuilt each step)",
            lambda: prompts.action_schema([tool], output_schema),
        ),
        ("parse_json_reply", lambda: parse_json_reply(reply)),
        (
            "loop guard key (json.dumps sort_keys)",
            lambda: json.dumps({"i": 3}, sort_keys=True, default=str),
        ),
    ]
    for steps in steps_list:
        messages = conversation(steps)
        label = f"message_tokens after {steps} steps (x2 a step)"
        cases.append((label, functools.partial(message_tokens, messages)))
    out = []
    for label, fn in cases:
        number = 2000
        best = min(timeit.repeat(fn, number=number, repeat=5)) / number
        out.append((label, best * 1e6))
    store.close()
    return out


def report_micro(rows: Sequence[tuple[str, float]]) -> None:
    print("\n2. pieces of a step, each on its own (best of 5, us per call)")
    for label, us in rows:
        print(f"  {label:<50} {us:8.2f}")


def profile(project: Project, steps: int) -> None:
    """cProfile of the no-sink runner over ~2000 steps (own times are inflated by the
    profiler for small, often-called functions: read it for where, not how much)."""
    run_one = runner_run(project.prepared(steps))

    async def go(tag: str) -> None:
        for n in range(max(20, 2000 // steps)):
            await run_one(f"{tag}-{steps}-{n}")

    anyio.run(go, "warm")
    profiler = cProfile.Profile()
    profiler.enable()
    anyio.run(go, "profiled")
    profiler.disable()
    print(f"\nprofile: runner, no sinks, {steps} steps; top 25 by own time")
    pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
    if os.environ.get("KILN_BENCH_CALLERS"):
        pstats.Stats(profiler).print_callers(os.environ["KILN_BENCH_CALLERS"])


# -- 3. many runs at once -------------------------------------------------------------------


def _rss_kb() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class GcClock:
    """Time spent in the cyclic garbage collector, and how many full collections ran."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.full = 0
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            return
        self.seconds += time.perf_counter() - self._started
        self.full += info["generation"] == 2


JOURNALED = "runner, trace store + sync journal"

#: Part 3's variants: what each runs, in a fresh process.
MANY = {
    "floor": "floor: bare coroutines, model + tool",
    "none": "runner, no sinks",
    "trace": "runner, SQLite trace store (execute)",
    "journal": JOURNALED,
    "gc": "runner, no sinks, gc threshold 50,000",
}


def child_many(root: str, runs: int, steps: int, delay_ms: float, variant: str) -> None:
    """In a fresh process: ``runs`` concurrent runs; figures as JSON on stdout."""
    if variant == "gc":  # what a larger first-generation threshold would save (see part 3)
        gc.set_threshold(50_000, 20, 100)
    project = Project(Path(root))
    prepared = project.prepared(steps, delay_ms=delay_ms)
    model = model_of(prepared)
    traced = variant in ("trace", "journal")
    store = TraceStore(Path(root) / f"many-{os.getpid()}.db") if traced else None
    durability = "sync" if variant == "journal" else None
    run_one = (
        traced_run(prepared, store, durability) if store is not None else runner_run(prepared)
    )
    statuses: dict[str, int] = {}
    floor_steps: list[int] = []

    async def one(n: int) -> None:
        run_id = f"{variant}-{steps}-{n}"
        if variant == "floor":
            floor_steps.append(await floor_run(model, "stepper", run_id, forget=False))
            return
        result = await run_one(run_id)
        statuses[result.status] = statuses.get(result.status, 0) + 1

    async def main() -> None:
        async with anyio.create_task_group() as tg:
            for n in range(runs):
                tg.start_soon(one, n)

    gc.collect()
    clock = GcClock()
    gc.callbacks.append(clock)
    base_kb, cpu, started = _rss_kb(), _cpu_s(), time.perf_counter()
    anyio.run(main)
    wall, cpu = time.perf_counter() - started, _cpu_s() - cpu
    gc.callbacks.remove(clock)
    peak_kb = _rss_kb()
    problems: list[str] = []
    if variant == "floor":
        statuses = {"succeeded": sum(1 for s in floor_steps if s == steps)}
    if store is not None:
        stored = store.list_runs(limit=None, status="succeeded")
        if len(stored) != runs:
            problems.append(f"{len(stored)} runs stored as succeeded, expected {runs}")
        events = len(store.events(f"{variant}-{steps}-0"))
        if events != events_per_run(steps):
            problems.append(f"{events} events stored for a run, expected {events_per_run(steps)}")
        store.close()
    print(
        json.dumps(
            {
                "wall_s": wall,
                "cpu_s": cpu,
                "gc_s": clock.seconds,
                "full_gcs": clock.full,
                "base_kb": base_kb,
                "peak_kb": peak_kb,
                "statuses": statuses,
                "problems": problems,
            }
        )
    )


@dataclass
class Many:
    label: str
    wall_s: float
    cpu_s: float
    gc_s: float
    full_gcs: int
    base_mb: float
    peak_mb: float


def many(
    root: Path, runs: int, steps: int, delay_ms: float, variant: str, failures: Failures
) -> Many | None:
    code = (
        "from benchmarks.runtime_bench import child_many; "
        f"child_many({str(root)!r}, {runs}, {steps}, {delay_ms}, {variant!r})"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        failures.messages.append(f"{variant}: the child exited {done.returncode}: {done.stderr}")
        return None
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    succeeded = figures["statuses"].get("succeeded", 0)
    if succeeded != runs:
        failures.messages.append(
            f"{variant}: {succeeded} of {runs} runs succeeded: {figures['statuses']}"
        )
    failures.messages.extend(f"{variant}: {p}" for p in figures["problems"])
    return Many(
        variant,
        figures["wall_s"],
        figures["cpu_s"],
        figures["gc_s"],
        figures["full_gcs"],
        figures["base_kb"] / 1024,
        figures["peak_kb"] / 1024,
    )


def report_many(rows: Sequence[Many], runs: int, steps: int, delay_ms: float) -> None:
    print(
        f"\n3. {runs:,} concurrent runs of {steps} steps, the model waiting {delay_ms:g} ms a"
        f" step (the least possible wall: {steps * delay_ms / 1000:.2f} s); a fresh process"
        " each.\n   gc s: in the cyclic collector (full collections); before: RSS once"
        " compiled, before the runs; KB/run: (peak - before) / runs"
    )
    print(
        f"  {'':<40} {'wall s':>7} {'cpu s':>7} {'gc s':>11} {'peak MB':>8} {'before MB':>9}"
        f" {'KB/run':>7}"
    )
    for row in rows:
        per_run = (row.peak_mb - row.base_mb) * 1024 / runs
        gc_cell = f"{row.gc_s:.2f} ({row.full_gcs})"
        print(
            f"  {MANY[row.label]:<40} {row.wall_s:7.2f} {row.cpu_s:7.2f} {gc_cell:>11}"
            f" {row.peak_mb:8.0f} {row.base_mb:9.0f} {per_run:7.1f}"
        )
    for row in rows:
        if row.label in ("floor", "gc"):
            continue
        wall = "ok" if row.wall_s < WALL_TARGET_S else "OVER TARGET"
        rss = "ok" if row.peak_mb < RSS_TARGET_MB else "OVER TARGET"
        print(
            f"  {MANY[row.label]}: {row.wall_s:.2f} s (target < {WALL_TARGET_S:.0f} s: {wall}),"
            f" peak {row.peak_mb:.0f} MB (target < {RSS_TARGET_MB:.0f} MB: {rss})"
        )


# -- main -----------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--steps", default="5,20,100", help="step counts per run, comma-separated")
    parser.add_argument("--budget", type=int, default=2000, help="steps per timed batch")
    parser.add_argument("--repeats", type=int, default=5, help="timed batches per variant")
    parser.add_argument("--runs", type=int, default=10_000, help="concurrent runs in part 3")
    parser.add_argument("--many-steps", type=int, default=5, help="steps of each run in part 3")
    parser.add_argument("--delay-ms", type=float, default=10.0, help="model wait per step, part 3")
    parser.add_argument("--quick", action="store_true", help="smaller everything: a smoke run")
    parser.add_argument("--profile", action="store_true", help="print a cProfile of 20 steps")
    args = parser.parse_args(argv)
    steps_list = sorted({int(s) for s in args.steps.split(",") if s.strip()})
    if args.quick:
        args.budget, args.repeats, args.runs = 400, 2, min(args.runs, 1000)
    if not steps_list or min(steps_list) < 1:
        parser.error("--steps: positive step counts, such as 5,20,100")

    failures = Failures()
    with tempfile.TemporaryDirectory(prefix="kiln-runtime-bench-") as tmp:
        root = Path(tmp)
        project = Project(root)
        print(
            f"python {sys.version.split()[0]}, {os.cpu_count()} cpus, anyio"
            f" {version('anyio')} on asyncio; specs and scripts in {root}"
        )
        results = anyio.run(
            per_step, project, steps_list, args.budget, args.repeats, root, failures
        )
        report_per_step(results, args.budget, args.repeats)
        report_micro(micro(project, steps_list))
        if args.profile:
            profile(project, 20)
        rows = [
            row
            for variant in MANY
            if (row := many(root, args.runs, args.many_steps, args.delay_ms, variant, failures))
        ]
        report_many(rows, args.runs, args.many_steps, args.delay_ms)

    if failures.messages:
        print(f"\nFAIL: {len(failures.messages)} problems", file=sys.stderr)
        for message in failures.messages[:20]:
            print(f"  {message}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
