"""The event bus: numbering, stamping, and sinks that break."""

from __future__ import annotations

import io
import json

import pytest

from runtime.events import Event, EventBus, JsonlWriter


def test_events_are_numbered_and_reporting_events_are_stamped_when_work_began() -> None:
    seen: list[Event] = []
    bus = EventBus("r1", [seen.append])
    bus.emit("run.start", target="Agent/a")
    done = bus.emit("tool.result", step=2, duration_ms=500.0, agent="a", tool="t")
    assert [e.seq for e in seen] == [1, 2]
    assert done.ts <= seen[0].ts + 0.01 and seen[0].ts - done.ts > 0.4
    assert done.as_json()["data"] == {"tool": "t"}
    assert Event.from_json(json.loads(json.dumps(done.as_json()))) == done


def test_a_sink_that_raises_is_dropped_and_the_others_still_get_every_event() -> None:
    first: list[Event] = []
    last: list[Event] = []

    def broken(event: Event) -> None:
        raise RuntimeError("viewer crashed")

    bus = EventBus("r", [first.append, broken, last.append])
    for _ in range(3):
        bus.emit("agent.thought", text="x")
    assert len(first) == len(last) == 3
    assert [type(exc).__name__ for _, exc in bus.dropped] == ["RuntimeError"]


def test_jsonl_writes_one_line_per_event_and_survives_odd_values() -> None:
    out = io.StringIO()
    bus = EventBus("r", [JsonlWriter(out)])
    bus.emit("tool.result", output={1, 2}, raw=b"\xff")
    (line,) = out.getvalue().splitlines()
    obj = json.loads(line)
    assert obj["type"] == "tool.result" and obj["data"]["raw"] == "b'\\xff'"


def test_env_references_in_model_params_are_read_at_run_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from runtime.envrefs import resolve_env

    monkeypatch.setenv("KILN_TEST_KEY", "s3cret")
    monkeypatch.delenv("KILN_TEST_MISSING", raising=False)
    params = {
        "api_key": "${env:KILN_TEST_KEY}",
        "api_base": "https://${env:KILN_TEST_MISSING}/v1",
        "headers": {"x-key": "Bearer ${env:KILN_TEST_KEY}"},
        "timeout": 30,
    }
    assert resolve_env(params) == {
        "api_key": "s3cret",
        "headers": {"x-key": "Bearer s3cret"},
        "timeout": 30,
    }
