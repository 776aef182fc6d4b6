"""What a sandboxed tool call costs, per backend, next to calling the function in-process.

Run: ``.venv/bin/python benchmarks/sandbox_bench.py [--backends nsjail,bwrap,none]
[--calls 500] [--seconds 2] [--cold 5] [--quick] [--profile]``

Every call is of one trivial tool, ``def run(x): return {"y": x + 1}``, through the real
:class:`~sandbox.pool.Pool` under the default :class:`~sandbox.profile.Profile` of each
backend (``none`` is the reference without isolation: the same worker, no namespaces).

1. Cold start: a new pool, its first call (starting the worker included), ``--cold`` times
   (the backend's one-time probe of the machine, ``problem()``, is run before and excluded).
2. Warm latency: ``--calls`` calls one after the other to one warm worker: p50, p95, p99 as
   the caller sees them, and the part the worker itself reports (``CallResult.ms``: fork,
   the tool, the wait, the clean-up); the difference is the pool's side (JSON, pipes, the
   event loop) and the scheduling between the two processes.
3. Throughput: ``--seconds`` of calls from 2 and 8 concurrent callers, with a pool of 2
   workers (one per core) and of 8; calls per second, latency under load, and the runtime
   process's own CPU per call.

The floor is a plain in-process call of the same function; every figure is also given as a
ratio to it. Targets (2 cores): warm p95 < 10 ms, >= 300 calls/s. With ``--profile``: where a
warm call's time goes, piece by piece (see :func:`breakdown`), and a cProfile of the pool's
side. Figures are printed, never asserted (these machines are noisy): the exit status is
non-zero only when a call fails or answers wrongly, or a backend that says it works here
does not start.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import resource
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from anyio import create_task_group, run

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:  # run as a script: make the repository's packages importable
    sys.path.insert(0, ROOT)

from sandbox.backends import backend_named, process_options  # noqa: E402
from sandbox.pool import WORKER_DIR, CallResult, Pool, PoolSettings, SandboxError  # noqa: E402
from sandbox.profile import BackendName, Profile  # noqa: E402

P95_TARGET_MS = 10.0
THROUGHPUT_TARGET = 300.0
TOOL = 'def run(x):\n    return {"y": x + 1}\n'
#: (callers, pool size) of part 3
LOADS = ((2, 2), (8, 2), (8, 8))
#: Workers are never recycled while measuring (the default, every 500 calls, would put a
#: worker start into the figures; its cost is part 1's, spread over 500 calls).
NEVER = 10**9


def floor_run(x: int) -> dict[str, int]:
    return {"y": x + 1}


def request(x: int) -> dict[str, Any]:
    return {"kind": "python", "code": TOOL, "input": {"x": x}}


@dataclass
class Failures:
    """Functional failures seen while measuring: any makes the exit status non-zero."""

    messages: list[str] = field(default_factory=list)

    def check(self, label: str, result: CallResult, x: int) -> None:
        if not result.ok or result.output != {"y": x + 1}:
            self.messages.append(f"{label}: x={x}: {result}")


@dataclass
class Load:
    callers: int
    size: int
    calls: int
    seconds: float
    latencies: list[float]
    own_cpu_s: float  #: the runtime process's CPU time (user + system) over the run

    @property
    def rate(self) -> float:
        return self.calls / self.seconds


@dataclass
class Figures:
    backend: str
    problem: str | None = None
    cold: list[float] = field(default_factory=list)
    warm: list[float] = field(default_factory=list)
    inside: list[float] = field(default_factory=list)  #: what the worker reports, seconds
    loads: list[Load] = field(default_factory=list)


def pct(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# -- the floor ------------------------------------------------------------------------------


def floor(calls: int) -> Figures:
    """The same function called in-process: per call, and as many as 1 s allows."""
    figures = Figures("floor: in-process call")
    clock = time.perf_counter
    for x in range(calls * 20):
        started = clock()
        floor_run(x)
        figures.warm.append(clock() - started)
    count, started = 0, clock()
    while clock() - started < 1.0:
        for x in range(1000):
            floor_run(x)
        count += 1000
    seconds = clock() - started
    figures.loads.append(Load(1, 0, count, seconds, [], 0.0))
    return figures


# -- the pool -------------------------------------------------------------------------------


async def cold(profile: Profile, failures: Failures) -> float:
    started = time.perf_counter()
    async with Pool(PoolSettings(size=1, warm=0)) as pool:
        result = await pool.call(profile, request(1))
        elapsed = time.perf_counter() - started
    failures.check(f"{profile.backend} cold", result, 1)
    return elapsed


async def warm(profile: Profile, calls: int, figures: Figures, failures: Failures) -> None:
    async with Pool(PoolSettings(size=1, warm=1, max_calls=NEVER)) as pool:
        await pool.warm(profile)
        for x in range(20):  # the worker's own imports and caches, the event loop's
            failures.check(f"{profile.backend} warm-up", await pool.call(profile, request(x)), x)
        for x in range(calls):
            started = time.perf_counter()
            result = await pool.call(profile, request(x))
            figures.warm.append(time.perf_counter() - started)
            figures.inside.append(result.ms / 1000)
            failures.check(f"{profile.backend} warm", result, x)


async def load(
    profile: Profile, callers: int, size: int, seconds: float, failures: Failures
) -> Load:
    latencies: list[float] = []
    async with Pool(PoolSettings(size=size, warm=size, max_calls=NEVER)) as pool:
        await pool.warm(profile, size)

        async def caller(first: int, until: float) -> None:
            x = first
            while time.perf_counter() < until:
                started = time.perf_counter()
                result = await pool.call(profile, request(x))
                latencies.append(time.perf_counter() - started)
                failures.check(f"{profile.backend} {callers}x{size}", result, x)
                x += callers

        async def all_callers(until: float) -> None:
            async with create_task_group() as tasks:
                for n in range(callers):
                    tasks.start_soon(caller, n, until)

        await all_callers(time.perf_counter() + 0.2)  # warm every worker
        latencies.clear()
        cpu, started = own_cpu(), time.perf_counter()
        await all_callers(started + seconds)
        elapsed, cpu = time.perf_counter() - started, own_cpu() - cpu
    return Load(callers, size, len(latencies), elapsed, latencies, cpu)


def measure(
    backend: BackendName, calls: int, seconds: float, colds: int, failures: Failures
) -> Figures:
    figures = Figures(backend)
    figures.problem = backend_named(backend).problem()
    if figures.problem is not None:
        return figures
    profile = Profile(backend=backend)
    try:
        figures.cold = [run(cold, profile, failures) for _ in range(colds)]
        run(warm, profile, calls, figures, failures)
        figures.loads = [
            run(load, profile, callers, size, seconds, failures) for callers, size in LOADS
        ]
    except SandboxError as exc:
        failures.messages.append(f"{backend}: {exc}")
    return figures


# -- the report -----------------------------------------------------------------------------


def report(rows: Sequence[Figures], base: Figures, calls: int, seconds: float) -> None:
    floor_p50, floor_p95 = pct(base.warm, 50), pct(base.warm, 95)
    floor_rate = base.loads[0].rate
    print(
        f"\n1. cold: a new pool's first call (worker start included), median (max)\n"
        f"2. warm: {calls} calls one after another to one warm worker; inside: what the"
        f" worker reports\n   (fork, tool, clean-up), p50; x floor: p50 and p95 over the"
        f" floor's ({floor_p50 * 1e6:.2f} / {floor_p95 * 1e6:.2f} us)"
    )
    print(
        f"  {'':<24} {'cold ms':>16} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}"
        f" {'inside ms':>9} {'p50 x floor':>12} {'p95 x floor':>12}"
    )
    for row in rows:
        if row.problem is not None or not row.warm:
            print(f"  {row.backend:<24} skipped: {row.problem or 'failed'}")
            continue
        cold_cell = f"{statistics.median(row.cold) * 1e3:.0f} ({max(row.cold) * 1e3:.0f})"
        p50, p95 = pct(row.warm, 50), pct(row.warm, 95)
        print(
            f"  {row.backend:<24} {cold_cell:>16} {p50 * 1e3:8.2f} {p95 * 1e3:8.2f}"
            f" {pct(row.warm, 99) * 1e3:8.2f} {pct(row.inside, 50) * 1e3:9.2f}"
            f" {p50 / floor_p50:11.0f}x {p95 / floor_p95:11.0f}x"
        )
    print(
        f"\n3. throughput: {seconds:g} s of calls from N callers to a pool of M workers;"
        f" latency under load; own CPU: the runtime process's, per call\n"
        f"   (floor: {floor_rate:,.0f} calls/s, one caller; x floor: the floor's rate over this)"
    )
    print(
        f"  {'':<24} {'callers':>7} {'pool':>5} {'calls/s':>9} {'p50 ms':>8} {'p95 ms':>8}"
        f" {'own CPU us':>10} {'x floor':>9}"
    )
    for row in rows:
        for item in row.loads:
            print(
                f"  {row.backend:<24} {item.callers:7d} {item.size:5d} {item.rate:9.0f}"
                f" {pct(item.latencies, 50) * 1e3:8.2f} {pct(item.latencies, 95) * 1e3:8.2f}"
                f" {item.own_cpu_s / item.calls * 1e6:10.0f} {floor_rate / item.rate:8.0f}x"
            )
    print()
    for row in rows:
        if row.problem is not None or not row.warm or row.backend == "none":
            continue
        p95 = pct(row.warm, 95) * 1e3
        best = max(row.loads, key=lambda item: item.rate)
        print(
            f"  {row.backend}: warm p95 {p95:.2f} ms (target < {P95_TARGET_MS:g} ms:"
            f" {'ok' if p95 < P95_TARGET_MS else 'OVER TARGET'}), best {best.rate:.0f} calls/s"
            f" ({best.callers} callers, pool {best.size}; target >= {THROUGHPUT_TARGET:g}:"
            f" {'ok' if best.rate >= THROUGHPUT_TARGET else 'UNDER TARGET'})"
        )


# -- where the time goes --------------------------------------------------------------------


def timed(fn: Callable[[], object], number: int) -> float:
    """Median seconds per call of ``fn`` over ``number`` calls."""
    times = []
    for _ in range(number):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


#: Runs inside the sandbox: what the worker does per call, piece by piece, timed there.
PIECES = """
def run(n):
    import json, os, resource, time

    def median(fn):
        times = []
        for _ in range(n):
            started = time.perf_counter()
            fn()
            times.append(time.perf_counter() - started)
        return sorted(times)[n // 2] * 1e6

    def fork_wait():
        pid = os.fork()
        if pid == 0:
            os._exit(0)
        os.waitpid(pid, 0)

    def fork_pipe_json():
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.write(w, json.dumps({"output": {"y": 2}}).encode())
            os._exit(0)
        os.close(w)
        os.read(r, 65536)
        os.close(r)
        os.waitpid(pid, 0)

    def scan_proc():
        [int(p) for p in os.listdir("/proc") if p.isdigit()]

    def wipe():
        for folder in ("/tmp", "/work"):
            os.listdir(folder)

    def child_setup():
        os.closerange(3 + 64, 4096)  # nothing open there: the cost of the call itself
        for limit in (resource.RLIMIT_CORE, resource.RLIMIT_NOFILE, resource.RLIMIT_AS):
            resource.setrlimit(limit, resource.getrlimit(limit))

    code = 'def run(x):\\n    return {"y": x + 1}\\n'
    return {
        "fork + waitpid": median(fork_wait),
        "fork + pipe + JSON + waitpid": median(fork_pipe_json),
        "closerange + setrlimit (the child's setup)": median(child_setup),
        "compile + exec the tool code": median(lambda: exec(compile(code, "<tool>", "exec"), {})),
        "listdir /proc (kill the rest)": median(scan_proc),
        "listdir /tmp, /work (wipe)": median(wipe),
        "sleep(0.001) (what _kill_others sleeps)": median(lambda: time.sleep(0.001)),
        "processes in /proc": len([p for p in os.listdir("/proc") if p.isdigit()]),
    }
"""


class RawWorker:
    """A worker started and spoken to without the pool: blocking pipes, no event loop, in
    a slot of its own (it borrows the pool's private config builder, to start it alike)."""

    SLOT = 99

    def __init__(self, backend: BackendName) -> None:
        from sandbox.pool import worker_config

        profile = Profile(backend=backend)
        self.launch = backend_named(backend).launch(profile, self.SLOT, WORKER_DIR)
        self.process = subprocess.Popen(
            [*self.launch.argv, json.dumps(worker_config(profile, self.launch))],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            **process_options(self.launch),
        )
        assert self.process.stdin is not None and self.process.stdout is not None
        self.stdin, self.stdout = self.process.stdin, self.process.stdout
        self.stdout.readline()  # ready

    def call(self, x: int) -> tuple[float, float]:
        """Seconds the call took, and what the worker reports."""
        started = time.perf_counter()
        self.stdin.write(json.dumps({"id": x, **request(x)}).encode() + b"\n")
        self.stdin.flush()
        answer = json.loads(self.stdout.readline())
        return time.perf_counter() - started, answer["ms"] / 1000

    def close(self) -> None:
        self.stdin.close()
        self.process.kill()
        self.process.wait()
        self.stdout.close()
        for path in self.launch.cleanup:
            shutil.rmtree(path, ignore_errors=True)


async def interleaved(backend: BackendName, calls: int) -> dict[str, list[float]]:
    """Raw and pooled calls in alternating batches, so both see the same machine."""
    profile = Profile(backend=backend)
    times: dict[str, list[float]] = {"pool": [], "pool inside": [], "raw": [], "raw inside": []}
    raw = RawWorker(backend)
    try:
        async with Pool(PoolSettings(size=1, max_calls=NEVER)) as pool:
            await pool.warm(profile)
            for x in range(20):
                raw.call(x)
                await pool.call(profile, request(x))
            batch = max(10, calls // 10)
            for x in range(0, calls, batch):
                for n in range(x, x + batch):
                    took, inside = raw.call(n)
                    times["raw"].append(took)
                    times["raw inside"].append(inside)
                for n in range(x, x + batch):
                    started = time.perf_counter()
                    result = await pool.call(profile, request(n))
                    times["pool"].append(time.perf_counter() - started)
                    times["pool inside"].append(result.ms / 1000)
    finally:
        raw.close()
    return times


def breakdown(backend: BackendName, calls: int) -> None:
    """Where a warm call's time goes, from the outside in."""

    async def pieces() -> dict[str, float]:
        async with Pool(PoolSettings(size=1)) as pool:
            result = await pool.call(
                Profile(backend=backend), {**request(0), "code": PIECES, "input": {"n": 200}}
            )
        if not result.ok:
            raise SandboxError(f"the breakdown tool failed: {result.error}")
        pieces: dict[str, float] = result.output
        return pieces

    times = {k: statistics.median(v) * 1e6 for k, v in run(interleaved, backend, calls).items()}
    print(f"\nwhere a warm {backend} call's time goes (medians, us; raw and pool interleaved)")
    rows = [
        ("through the pool, as the caller sees it", times["pool"]),
        ("  the pool and its event loop (pool - raw)", times["pool"] - times["raw"]),
        ("the same worker, raw blocking pipes", times["raw"]),
        ("  pipes, JSON, wake-ups (raw - serve)", times["raw"] - times["raw inside"]),
        ("  serve(): the worker's own time", times["raw inside"]),
    ]
    for label, value in rows:
        print(f"  {label:<46} {value:9.0f}")
    print("  inside the sandbox, pieces of serve() each on its own:")
    for label, value in run(pieces).items():
        unit = "" if label.startswith("processes") else " us"
        print(f"    {label:<44} {value:9.0f}{unit}")


def profile_pool(backend: BackendName, calls: int, failures: Failures) -> None:
    figures = Figures(backend)
    profiler = cProfile.Profile()
    profiler.enable()
    run(warm, Profile(backend=backend), calls, figures, failures)
    profiler.disable()
    print(f"\ncProfile of the runtime's side, {calls} warm {backend} calls; top 15 by own time")
    pstats.Stats(profiler).sort_stats("tottime").print_stats(15)


# -- main -----------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--backends", default="nsjail,bwrap,none", help="comma-separated")
    parser.add_argument("--calls", type=int, default=500, help="sequential warm calls")
    parser.add_argument("--seconds", type=float, default=2.0, help="of calls per load")
    parser.add_argument("--cold", type=int, default=5, help="cold starts per backend")
    parser.add_argument("--quick", action="store_true", help="smaller everything: a smoke run")
    parser.add_argument("--profile", action="store_true", help="where the time goes")
    args = parser.parse_args(argv)
    if args.quick:
        args.calls, args.seconds, args.cold = 100, 0.5, 2
    backends: list[BackendName] = []
    for name in args.backends.split(","):
        known: dict[str, BackendName] = {"nsjail": "nsjail", "bwrap": "bwrap", "none": "none"}
        if name.strip() not in known:
            parser.error(f"--backends: unknown backend {name!r} (nsjail, bwrap, none)")
        backends.append(known[name.strip()])

    failures = Failures()
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cpus; tool: {TOOL.strip()!r}")
    base = floor(args.calls)
    rows = [measure(b, args.calls, args.seconds, args.cold, failures) for b in backends]
    report(rows, base, args.calls, args.seconds)
    if args.profile:
        for backend, row in zip(backends, rows, strict=True):
            if row.problem is None and row.warm:
                breakdown(backend, args.calls)
        profile_pool(backends[0], args.calls, failures)

    if failures.messages:
        print(f"\nFAIL: {len(failures.messages)} problems", file=sys.stderr)
        for message in failures.messages[:20]:
            print(f"  {message}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
