"""The quickstart end to end on the embedded local model (Qwen2.5-Coder-1.5B via llama.cpp,
joined from its chunk packages): what ``make run`` does, checked, answer included. The
research crew runs on SmolLM2-135M, whose answers are often wrong: there what must hold is
that every step it takes is well formed and the run finishes within its limits."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import anyio
import pytest

from runtime.events import Event
from runtime.run import execute, prepare
from tests.helpers import EXAMPLES, REPO


def _run(question: str) -> tuple[str, object, list[Event]]:
    prepared = prepare([EXAMPLES / "quickstart"], agent="assistant", text=question)
    events: list[Event] = []
    result = anyio.run(lambda: execute(prepared, sinks=[events.append]))
    return result.status, result.output if result.ok else result.error, events


@pytest.mark.timeout(600)  # a 1.5B model on one thread of a loaded CI machine: minutes
def test_the_quickstart_answers_right_on_the_local_model() -> None:
    status, output, events = _run("What is 12 times 7? Use the calculator.")
    assert status == "succeeded", output
    assert isinstance(output, dict) and "84" in str(output.get("answer")), output
    thoughts = [e for e in events if e.type == "agent.thought"]
    assert thoughts, "the model was never asked"
    assert all(e.data["model"] == "local/qwen2.5-coder-1.5b" for e in thoughts)
    assert all(e.data["usage"]["completion_tokens"] > 0 for e in thoughts)
    # Schema-constrained decoding: every step names a real tool or answers.
    actions = [e.data for e in events if e.type == "agent.action"]
    assert [a["tool"] for a in actions] == ["calculator"]
    assert "12" in actions[0]["input"]["expression"] and "7" in actions[0]["input"]["expression"]
    assert not [e for e in thoughts if e.data.get("malformed")]


def test_local_runs_are_repeatable(tmp_path: Path) -> None:
    """The same command twice gives the same run. Each in its own process, as a user runs
    it: within one process llama.cpp's prompt cache holds the earlier run's prefix, and
    reusing it changes the arithmetic (and so, at times, the tokens) slightly."""

    def run(index: int) -> tuple[object, list[object]]:
        events = tmp_path / f"events{index}.jsonl"
        question = "How many words are in 'red green blue'?"
        argv = [str(REPO / ".venv" / "bin" / "kiln"), "run", str(EXAMPLES / "quickstart"),
                "--model", "local/smollm2-135m", "--input", question, "--format", "json",
                "--events", str(events), "--no-trace", "-q"]  # fmt: skip
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=180, cwd=tmp_path)
        assert proc.returncode in (0, 1), proc.stderr
        lines = [json.loads(line) for line in events.read_text(encoding="utf-8").splitlines()]
        thoughts = [e["data"].get("text") for e in lines if e["type"] == "agent.thought"]
        return json.loads(proc.stdout)["output"], thoughts

    first, second = run(1), run(2)
    assert first == second
    assert first[1], "the model was never asked"


def test_the_research_crew_runs_on_the_local_model() -> None:
    prepared = prepare([EXAMPLES / "research-crew"], crew="research", text="tides")
    events: list[Event] = []
    result = anyio.run(lambda: execute(prepared, sinks=[events.append]))
    # SmolLM2-135M at times calls a refused tool until its budget runs out: the run then
    # ends within its limits, as it must (which it does depends on the engine's cache).
    assert result.status in ("succeeded", "limit_exceeded"), result.error
    if result.status == "succeeded":
        assert set(result.tasks) == {"research", "analyze", "check_sources", "write"}
        assert isinstance(result.output, dict) and {"title", "summary"} <= set(result.output)
    else:
        assert "max_iterations exceeded" in str(result.error)
    assert [e for e in events if e.type == "agent.thought"], "the model was never asked"
    # no host is allowed to http_get in this run: refused with the reason, never fatal (a
    # tiny model also sends URLs that are no URL at all: refused with that reason)
    failed = [e for e in events if e.type == "tool.result" and e.data["status"] == "error"]
    assert all(e.data["error"] for e in failed)
    reasons = ("--allow-host", "only http and https URLs")
    fetches = [e.data["error"] for e in failed if e.data["tool"] == "http_get"]
    assert all(any(r in error for r in reasons) for error in fetches), fetches
