"""The live view: readable lines per event, task prefixes in parallel, and never a crash."""

from __future__ import annotations

import io
from typing import Any

import pytest
from rich.console import Console

from runtime.events import Event, EventBus
from runtime.live import LiveView, format_cost, format_duration, format_value, make_console

USAGE = {"prompt_tokens": 1000, "completion_tokens": 234, "cost_usd": 0.0012, "cost_known": True}


def plain_console() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, width=100, no_color=True), out


def render(events: list[tuple[str, dict[str, Any]]], *, verbose: bool = False) -> list[str]:
    """The lines a plain console shows for ``(type, emit keywords)`` pairs."""
    console, out = plain_console()
    view = LiveView(console, verbose=verbose)
    bus = EventBus("run-1", [view])
    for type_, fields in events:
        bus.emit(type_, **fields)  # type: ignore[arg-type]
    assert bus.dropped == []  # the view never raised
    return out.getvalue().splitlines()


def crew_stream(thought: str = "I should look for bees") -> list[tuple[str, dict[str, Any]]]:
    """Two tasks of one stage running at once, then a third after both."""
    research: dict[str, Any] = {"task": "research", "agent": "researcher"}
    write: dict[str, Any] = {"task": "write", "agent": "writer"}
    return [
        ("run.start", {"target": "Crew/bees", "kind": "crew", "models": ["local/smol"]}),
        ("task.start", {**research, "prompt": "Research bees", "stage": 0}),
        ("task.start", {**write, "prompt": "Write", "stage": 0}),
        ("agent.thought", {**research, "step": 1, "text": thought, "usage": USAGE}),
        ("agent.action", {**research, "step": 1, "tool": "http_get", "input": {"url": "u"}}),
        ("agent.thought", {**write, "step": 1, "text": "drafting"}),
        (
            "tool.result",
            {**research, "step": 1, "tool": "http_get", "status": "ok", "output": "hi"},
        ),
        ("tool.result", {**write, "step": 1, "tool": "calc", "status": "error", "error": "1/0"}),
        ("memory.read", {**write, "policy": "notes", "items": [], "reason": "no store"}),
        ("memory.write", {**research, "policy": "notes", "items": ["bees fly", "bees sting"]}),
        ("agent.answer", {**research, "output": {"summary": "bees"}, "usage": USAGE}),
        ("task.complete", {**research, "status": "succeeded", "output": {"summary": "bees"}}),
        ("agent.answer", {**write, "output": "an essay"}),
        ("task.complete", {**write, "status": "succeeded", "output": "an essay"}),
        ("task.start", {"task": "review", "agent": "editor", "stage": 1}),
        ("agent.answer", {"task": "review", "agent": "editor", "output": "fine"}),
        ("task.complete", {"task": "review", "agent": "editor", "status": "succeeded"}),
        ("run.complete", {"status": "succeeded", "usage": USAGE, "duration_ms": 3456.0}),
    ]


def test_a_crew_reads_as_one_line_per_event() -> None:
    lines = render(crew_stream())
    assert lines[0] == "▶ run Crew/bees (crew) · model local/smol"
    assert "research │   I should look for bees" in lines
    assert 'research │   → http_get({"url": "u"})' in lines
    assert "research │   ← hi" in lines
    assert "write    │   ← error: 1/0" in lines
    assert "write    │   memory notes: recalled nothing (no store)" in lines
    assert "research │   memory notes: remembered item 2" in lines
    assert 'research │   ✓ {"summary": "bees"}  (1,234 tokens · $0.0012)' in lines
    assert lines[-1] == "■ run succeeded in 3.5 s · 1,234 tokens · $0.0012"


def test_parallel_tasks_prefix_every_line_and_a_later_task_alone_does_not() -> None:
    lines = render(crew_stream())
    # the first task is alone until the second starts; from then on each line names its task
    assert lines[1] == "▶ task research · agent researcher"
    parallel = lines[2 : lines.index("▶ task review · agent editor")]
    assert parallel[0] == "write    │ ▶ task write · agent writer"
    assert all(line.startswith(("research │ ", "write    │ ")) for line in parallel)
    after = lines[lines.index("▶ task review · agent editor") :]
    assert not any("│" in line for line in after)


def test_task_prefixes_have_a_colour_of_their_own_on_a_terminal() -> None:
    out = io.StringIO()
    console = Console(file=out, width=100, force_terminal=True, color_system="standard")
    view = LiveView(console)
    bus = EventBus("run-1", [view])
    bus.emit("task.start", task="a", agent="x")
    bus.emit("task.start", task="b", agent="y")
    bus.emit("agent.thought", task="a", text="one")
    bus.emit("agent.thought", task="b", text="two")
    bus.emit("agent.thought", task="a", text="three")
    text = out.getvalue()
    assert "\x1b[36ma │ \x1b[0m" in text  # cyan for the first task
    assert "\x1b[35mb │ \x1b[0m" in text  # magenta for the second
    assert text.count("\x1b[36ma │ ") == 2  # the same colour on each of its lines


def test_a_plain_console_gets_no_escape_codes() -> None:
    lines = render(crew_stream())
    assert not any("\x1b" in line for line in lines)


def test_model_text_is_printed_literally_not_as_markup() -> None:
    text = "[bold red]not bold[/bold red] :smile: [link=http://x]y[/link] \\[z]"
    lines = render(crew_stream(thought=text))
    assert f"research │   {text}" in lines


def test_terminal_control_characters_are_shown_escaped() -> None:
    lines = render([("agent.answer", {"output": "clear\x1b[2Jscreen\x07"})])
    assert lines == ["  ✓ clear\\x1b[2Jscreen\\x07"]


def test_long_values_are_cut_to_one_line_unless_verbose() -> None:
    output = "word " * 100 + "\nsecond line"
    events: list[tuple[str, dict[str, Any]]] = [
        ("tool.result", {"tool": "t", "status": "ok", "output": output})
    ]
    (short,) = render(events)
    assert short.endswith("…") and len(short) <= 170
    full = render(events, verbose=True)
    assert len(full) == 2 and full[1] == "    second line"
    assert full[0].count("word") == 100


def test_a_failed_run_shows_its_error_limit_and_unknown_cost() -> None:
    usage = {**USAGE, "cost_known": False}
    lines = render(
        [
            ("task.start", {"task": "t", "agent": "a"}),
            ("task.complete", {"task": "t", "status": "limit_exceeded", "error": "too many"}),
            ("run.error", {"status": "limit_exceeded", "error": "boom", "limit": "max_tokens"}),
            ("run.complete", {"status": "limit_exceeded", "usage": usage, "output": None}),
        ]
    )
    assert lines[1] == "✗ task t limit_exceeded: too many"
    assert lines[2] == "✗ run limit_exceeded: boom (limit: max_tokens)"
    assert lines[3] == "■ run limit_exceeded 1,234 tokens · ≥$0.0012"


def test_tot_thoughts_rejected_answers_and_empty_native_thoughts() -> None:
    lines = render(
        [
            ("agent.thought", {"text": "", "usage": USAGE}),
            ("agent.thought", {"text": "try x", "level": 1, "branch": 0, "score": 0.8}),
            ("agent.thought", {"text": "{oops", "malformed": "not JSON"}),
            ("agent.answer", {"accepted": False, "output": "42", "error": "not an object"}),
        ]
    )
    assert lines == [
        "  try x  [branch 0, level 1, score 0.8]",
        "  {oops",
        "  malformed reply: not JSON",
        "  answer rejected: not an object",
        "    was: 42",
    ]


class _Hostile:
    def __repr__(self) -> str:
        raise RuntimeError("no repr for you")


@pytest.mark.parametrize(
    "event",
    [
        Event("run.start", "r", 1, 0, 0.0, data={"target": None, "models": {"a": 1, "b": None}}),
        Event("tool.result", "r", 2, 1, 0.0, data={"output": b"\xff\xfe bytes", "status": None}),
        Event("tool.result", "r", 3, 1, 0.0, duration_ms="slow", data={"status": "ok"}),  # type: ignore[arg-type]
        Event(
            "agent.action",
            "r",
            4,
            1,
            0.0,
            data={"tool": {"n": [1, {"x": None}]}, "input": _Hostile()},
        ),
        Event("memory.read", "r", 5, 1, 0.0, data={"items": 3, "policy": None}),
        Event("memory.write", "r", 6, 1, 0.0, data={"items": {"k": "v"}}),
        Event("agent.answer", "r", 7, 1, 0.0, data={"output": None, "usage": "lots"}),
        Event("task.complete", "r", 8, 0, 0.0, task=123, data={"status": None}),  # type: ignore[arg-type]
        Event("run.complete", "r", 9, 0, 0.0, data={"usage": {"prompt_tokens": "x"}}),
        Event("no.such.type", "r", 10, 0, 0.0, data={"anything": object()}),  # type: ignore[arg-type]
        Event("agent.answer", "r", 11, 1, 0.0, data=None),  # type: ignore[arg-type]
        Event("agent.thought", "r", 12, 1, 0.0, data={"text": "\udc80 lone surrogate"}),
    ],
    ids=lambda e: f"{e.seq}-{e.type}",
)
def test_odd_data_never_raises(event: Event) -> None:
    console, out = plain_console()
    LiveView(console)(event)
    assert out.getvalue().strip()  # something is said about each of them
    assert "\udc80" not in out.getvalue()


def test_a_console_that_cannot_write_does_not_raise() -> None:
    out = io.StringIO()
    console = Console(file=out, width=100)
    out.close()
    LiveView(console)(Event("agent.answer", "r", 1, 0, 0.0, data={"output": "x"}))
    assert out.closed


def test_make_console_colours_only_when_asked_or_on_a_terminal() -> None:
    assert make_console(io.StringIO()).is_terminal is False
    always = make_console(io.StringIO(), color="always")
    assert always.is_terminal and always.color_system is not None
    assert make_console(io.StringIO(), color="never").no_color


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [(None, "-"), (0.35, "350 ms"), (12.34, "12.3 s"), (125, "2m05s"), (3840, "1h04m")],
)
def test_format_duration(seconds: float | None, shown: str) -> None:
    assert format_duration(seconds) == shown


def test_format_cost_and_value() -> None:
    assert [format_cost(0), format_cost(0.00123), format_cost(3.2)] == ["$0", "$0.0012", "$3.20"]
    assert format_cost(0.5, known=False) == "≥$0.5000"
    assert format_value({"a": [1, None]}) == '{"a": [1, null]}'
    assert format_value("x" * 200, limit=10) == "x" * 9 + "…"
