"""Many streamed runs at once through ``kiln serve`` (#15): is any event lost or reordered,
how much latency does the server add to each event, and how much memory does it take?

A real ``kiln serve`` process (no auth, limits lifted) serves one agent on the scripted
model (``--turns`` turns, ``--delay-ms`` each; every turn but the last calls the
calculator). This process opens ``--runs`` streamed executions at once with httpx and
reads every server-sent event. An event's latency is when the client read it less when
the runtime emitted it (its ``ts`` plus its ``duration_ms``; one machine, one clock). The
same runs on an in-process engine, read from a sink, give the baseline.

    python benchmarks/server_load.py --runs 1000
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio
import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

AGENT = """\
apiVersion: kiln/v1
kind: Agent
metadata: {name: counter}
spec:
  instructions: Count.
  tools: [calculator]
  limits: {max_iterations: 50}
"""


def script(turns: int, delay_ms: int) -> str:
    lines = ["counter:"]
    for i in range(turns - 1):
        lines.append(f"  - {{thought: step {i}, tool: calculator, "
                     f'input: {{expression: "{i} + 1"}}, delay_ms: {delay_ms}}}')  # fmt: skip
    lines.append(f"  - {{thought: done, final: counted, delay_ms: {delay_ms}}}")
    return "\n".join(lines) + "\n"


def emitted(event: dict[str, Any]) -> float:
    return float(event["ts"]) + float(event.get("duration_ms") or 0) / 1000


def percentiles(values: list[float]) -> tuple[float, float]:
    ordered = sorted(values)
    if not ordered:
        return 0.0, 0.0
    return ordered[len(ordered) // 2], ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


async def through_server(url: str, runs: int) -> tuple[list[float], list[str], float]:
    """Latencies (s), problems, wall time."""
    latencies: list[float] = []
    problems: list[str] = []
    limits = httpx.Limits(max_connections=runs + 10, max_keepalive_connections=runs + 10)
    async with httpx.AsyncClient(base_url=url, timeout=600, limits=limits) as client:

        async def one(i: int) -> None:
            body = {"input": f"count {i}", "config": {"stream": True}}
            seqs: list[int] = []
            async with client.stream("POST", "/v1/agents/counter/execute", json=body) as answer:
                if answer.status_code != 200:
                    problems.append(f"run {i}: HTTP {answer.status_code}")
                    return
                data = None
                async for line in answer.aiter_lines():
                    if line.startswith("data: "):
                        data = line[6:]
                    elif line == "" and data is not None:
                        now = time.time()
                        event = json.loads(data)
                        latencies.append(now - emitted(event))
                        seqs.append(int(event["seq"]))
                        data = None
            if seqs != list(range(1, len(seqs) + 1)):
                problems.append(f"run {i}: events {seqs[:5]}... lost or out of order")
            elif not seqs:
                problems.append(f"run {i}: no events")

        started = time.perf_counter()
        async with anyio.create_task_group() as group:
            for i in range(runs):
                group.start_soon(one, i)
        return latencies, problems, time.perf_counter() - started


async def in_process(folder: Path, model: str, runs: int, db: Path) -> tuple[list[float], float]:
    from runtime.engine import Engine, Settings

    latencies: list[float] = []
    async with Engine([folder], Settings(model=model), runs_db=db) as engine:

        def sink(event: Any) -> None:
            latencies.append(time.time() - (event.ts + (event.duration_ms or 0) / 1000))

        async def one(i: int) -> None:
            await engine.run("counter", input=f"count {i}", sinks=[sink])

        started = time.perf_counter()
        async with anyio.create_task_group() as group:
            for i in range(runs):
                group.start_soon(one, i)
        return latencies, time.perf_counter() - started


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--turns", type=int, default=5)
    parser.add_argument("--delay-ms", type=int, default=10)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="kiln-load-"))
    folder = work / "agents"
    folder.mkdir()
    (folder / "counter.yaml").write_text(AGENT, encoding="utf-8")
    (work / "turns.yaml").write_text(script(args.turns, args.delay_ms), encoding="utf-8")
    model = f"scripted:{work / 'turns.yaml'}"

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "runtime.cli", "serve", str(folder), "--no-auth",
         "--port", str(port), "--model", model, "--db", str(work / "served.db"),
         "--rate", "1000000", "--burst", "1000000", "--max-runs", "1000000",
         "--poll", "0"],
        cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if server.poll() is not None:
                print(server.communicate()[1], file=sys.stderr)
                return 1
            try:
                if httpx.get(f"{url}/readyz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                print("kiln serve did not get ready", file=sys.stderr)
                return 1
            time.sleep(0.1)
        served, problems, wall = anyio.run(through_server, url, args.runs)
        rss = peak_rss_mb(server.pid)
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
    base, base_wall = anyio.run(in_process, folder, model, args.runs, work / "inproc.db")

    s50, s99 = percentiles(served)
    b50, b99 = percentiles(base)
    print(f"{args.runs} concurrent streamed runs, {args.turns} turns of {args.delay_ms} ms: "
          f"{len(served)} events read, {len(base)} in process")  # fmt: skip
    print(f"lost or reordered: {len(problems)} runs" + (f" ({problems[:3]})" if problems else ""))
    print(f"through the server: {wall:.1f} s wall; event latency p50 {s50 * 1000:.1f} ms, "
          f"p99 {s99 * 1000:.1f} ms")  # fmt: skip
    print(f"in-process engine:  {base_wall:.1f} s wall; event latency p50 {b50 * 1000:.1f} ms, "
          f"p99 {b99 * 1000:.1f} ms")  # fmt: skip
    print(f"added by the server: p50 {(s50 - b50) * 1000:.1f} ms, p99 {(s99 - b99) * 1000:.1f} ms;"
          f" wall x{wall / base_wall:.2f}")  # fmt: skip
    print(f"server peak RSS: {rss:.0f} MB")
    mean = statistics.fmean(served) if served else 0.0
    print(f"mean event latency through the server: {mean * 1000:.1f} ms")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
