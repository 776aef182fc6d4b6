"""The newcomer suite: 22 first-hour requests run through kiln's ReAct loop on a local model.

Run: ``.venv/bin/python benchmarks/local_model_suite.py [--model local/NAME]
[--threads N] [--only calc,words,time,two,none] [--json FILE]``

Each task is what a newcomer types on day one: arithmetic with the calculator, counting words,
the time in a city, two-step tool use, and questions that need no tool. The agent is
``examples/quickstart`` itself, so the suite measures exactly what ``make run`` gives.
A task is solved when the final answer holds the right value (numbers compared as numbers,
words case-insensitively) and, for time questions, the value comes from the tool. Prints one
line per task, then solved/N and seconds per task; figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: make the repository's packages importable
    sys.path.insert(0, str(ROOT))

import anyio  # noqa: E402

from runtime.events import Event  # noqa: E402
from runtime.run import execute, prepare  # noqa: E402

QUICKSTART = ROOT / "examples" / "quickstart"

Check = Callable[[str, list[Event]], bool]


@dataclass(frozen=True)
class Task:
    kind: str  # calc | words | time | two | none
    question: str
    check: Check
    expected: str


def number(value: float) -> Check:
    def check(answer: str, events: list[Event]) -> bool:
        found = re.findall(r"-?\d[\d,]*(?:\.\d+)?", answer)
        return any(abs(float(f.replace(",", "")) - value) < 1e-6 for f in found)

    return check


def words(*options: str) -> Check:
    def check(answer: str, events: list[Event]) -> bool:
        lowered = answer.lower()
        return any(re.search(rf"\b{re.escape(o)}\b", lowered) for o in options)

    return check


def tool_time(zone: str) -> Check:
    """Solved when current_time was asked for ``zone`` and the answer gives its hour."""

    def check(answer: str, events: list[Event]) -> bool:
        for event in events:
            output = event.data.get("output")
            if event.type == "tool.result" and isinstance(output, dict):
                if output.get("timezone") == zone and isinstance(output.get("iso"), str):
                    hour = output["iso"][11:13]
                    if re.search(rf"(?<!\d){hour}(?!\d)|(?<!\d){int(hour) % 12 or 12}\b", answer):
                        return True
        return False

    return check


def tool_date() -> Check:
    def check(answer: str, events: list[Event]) -> bool:
        for event in events:
            output = event.data.get("output")
            if event.type == "tool.result" and isinstance(output, dict):
                iso = output.get("iso")
                if isinstance(iso, str):
                    day = str(int(iso[8:10]))
                    return iso[:10] in answer or re.search(rf"\b{day}\b", answer) is not None
        return False

    return check


TASKS: tuple[Task, ...] = (
    Task("calc", "What is 12 times 7? Use the calculator.", number(84), "84"),
    Task("calc", "What is 1234 + 5678?", number(6912), "6912"),
    Task("calc", "What is 15% of 240?", number(36), "36"),
    Task("calc", "What is the square root of 144?", number(12), "12"),
    Task("calc", "What is 2 to the power of 10?", number(1024), "1024"),
    Task("calc", "Divide 1000 by 8.", number(125), "125"),
    Task("calc", "What is 17 * 23?", number(391), "391"),
    Task("calc", "What is (45 - 18) * 3?", number(81), "81"),
    Task(
        "words",
        "How many words are in the sentence 'the quick brown fox jumps over the lazy dog'?",
        number(9),
        "9",
    ),
    Task(
        "words",
        "Count the words in: 'Agents should call tools when they need facts.'",
        number(8),
        "8",
    ),
    Task("words", "How many words does 'to be or not to be' have?", number(6), "6"),
    Task("words", "How many characters are in the word 'kiln'?", number(4), "4"),
    Task("time", "What time is it in Tokyo right now?", tool_time("Asia/Tokyo"), "Tokyo's hour"),
    Task("time", "What is today's date in UTC?", tool_date(), "today's date"),
    Task(
        "two",
        "Count the words in 'one two three four five' and multiply that number by 3.",
        number(15),
        "15",
    ),
    Task("two", "What is 6 times 7, plus 8?", number(50), "50"),
    Task(
        "two",
        "How many words are in 'red green blue yellow'? Then add 10 to that number.",
        number(14),
        "14",
    ),
    Task("none", "What is the capital of France?", words("paris"), "Paris"),
    Task("none", "What colour is the sky on a clear day?", words("blue"), "blue"),
    Task("none", "How do you say hello in Spanish?", words("hola"), "hola"),
    Task("none", "What is the opposite of hot?", words("cold"), "cold"),
    Task("none", "Which planet do we live on?", words("earth"), "Earth"),
)

def answer_text(output: Any) -> str:
    if isinstance(output, dict):
        return " ".join(str(v) for v in output.values())
    return "" if output is None else str(output)


def run_task(folder: Path, model: str | None, task: Task) -> tuple[bool, float, str, int]:
    prepared = prepare(
        [QUICKSTART],
        agent="assistant",
        inputs={"question": task.question},
        model=model,
        runs_db=folder / "runs.db",
    )
    events: list[Event] = []
    started = time.perf_counter()
    result = anyio.run(lambda: execute(prepared, sinks=[events.append]))
    elapsed = time.perf_counter() - started
    answer = answer_text(result.output) if result.status == "succeeded" else f"[{result.status}]"
    steps = sum(1 for e in events if e.type == "agent.thought")
    return task.check(answer, events), elapsed, answer, steps


@dataclass(frozen=True)
class Row:
    kind: str
    question: str
    ok: bool
    seconds: float
    steps: int
    answer: str


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="instead of the quickstart's own (e.g. local/NAME)")
    parser.add_argument("--threads", type=int, help="llama.cpp threads (KILN_LOCAL_THREADS)")
    parser.add_argument("--only", help="task kinds, comma-separated")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    args = parser.parse_args()
    if args.threads:
        import os

        os.environ["KILN_LOCAL_THREADS"] = str(args.threads)
    kinds = set(args.only.split(",")) if args.only else None
    tasks = [t for t in TASKS if kinds is None or t.kind in kinds]
    folder = Path(tempfile.mkdtemp(prefix="kiln-suite-"))
    rows: list[Row] = []
    try:
        for task in tasks:
            ok, seconds, answer, steps = run_task(folder, args.model, task)
            rows.append(Row(task.kind, task.question, ok, round(seconds, 2), steps, answer))
            mark = "ok  " if ok else "FAIL"
            print(
                f"{mark} {seconds:6.1f}s {steps} steps  {task.question[:60]:60}  -> {answer[:70]!r}"
                f"{'' if ok else f'  (expected {task.expected})'}",
                flush=True,
            )
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    solved = sum(r.ok for r in rows)
    times = [r.seconds for r in rows]
    print(
        f"\n{args.model or 'the quickstart model'}: solved {solved}/{len(rows)}; "
        f"{statistics.mean(times):.1f} s a task (median {statistics.median(times):.1f}, "
        f"max {max(times):.1f})"
    )
    for kind in ("calc", "words", "time", "two", "none"):
        mine = [r for r in rows if r.kind == kind]
        if mine:
            print(f"  {kind:6} {sum(r.ok for r in mine)}/{len(mine)}")
    if args.json:
        data = [dataclasses.asdict(r) for r in rows]
        Path(args.json).write_text(json.dumps(data, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
