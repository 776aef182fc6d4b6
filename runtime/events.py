"""One event schema for everything that watches a run: the terminal view, ``--events``
JSON lines, the trace store, and later SSE and the web view.

Every event carries the run id, its sequence number in the run (``seq``, from 1), the step
of the agent loop it belongs to (``step``: the model call it follows, 0 for run- and
task-level events), when it started (``ts``, Unix seconds) and how long the work it reports
took (``duration_ms``, ``None`` for instants). ``agent`` and ``task`` say who; ``data`` says
what, with keys fixed per type (see :data:`EVENT_TYPES`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Final, Literal

from runtime.masking import mask_data

EventType = Literal[
    "run.start",
    "task.start",
    "agent.thought",
    "agent.action",
    "approval.request",
    "approval.decision",
    "tool.result",
    "memory.read",
    "memory.write",
    "agent.answer",
    "task.complete",
    "run.error",
    "run.complete",
]

#: What ``data`` holds for each type.
EVENT_TYPES: Final[Mapping[str, str]] = {
    "run.start": "target, kind (agent|crew), inputs, text (the request), models, plan_hash, "
    "user, session",
    "task.start": "prompt (the rendered task prompt), stage",
    "agent.thought": "text, usage, model; malformed, over_limit; tot: branch, level, score, chosen",
    "agent.action": "tool, input, call_id",
    "approval.request": "id, tool, input, call_id: a tool call waits for a person's decision",
    "approval.decision": "id, tool, call_id, approved, reason, by",
    "tool.result": "tool, call_id, status (ok|error|denied|approval_required|loop|invalid_input"
    "|unknown_tool), output | error; stdout when a sandboxed tool printed something; cached, "
    "attempts (when more than one) and retryable when they apply",
    "memory.read": "policy, namespace, query, items (store, text; vector memories also id, "
    "kind, score, relevance, recency, importance, why), turns, stores (per store: what it "
    "found and why), reason (why nothing was recalled); error, code, retryable if it failed",
    "memory.write": "policy, namespace, items (store, kind, text, id), notes (window "
    "summaries, extraction); error, code, retryable if it failed",
    "agent.answer": "output, usage (the agent run's total), iterations",
    "task.complete": "status, output | error",
    "run.error": "status, error, limit (for limit_exceeded)",
    "run.complete": "status, output, usage, duration_ms",
}


@dataclass(slots=True)
class Event:
    type: EventType
    run_id: str
    seq: int
    step: int
    ts: float
    duration_ms: float | None = None
    agent: str | None = None
    task: str | None = None
    data: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "run_id": self.run_id,
            "seq": self.seq,
            "step": self.step,
            "ts": self.ts,
            "duration_ms": self.duration_ms,
            "agent": self.agent,
            "task": self.task,
            "data": self.data,
        }

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> Event:
        return cls(
            type=obj["type"],
            run_id=obj["run_id"],
            seq=obj["seq"],
            step=obj["step"],
            ts=obj["ts"],
            duration_ms=obj.get("duration_ms"),
            agent=obj.get("agent"),
            task=obj.get("task"),
            data=dict(obj.get("data") or {}),
        )


def dumps(event: Event) -> str:
    """One JSON line; values JSON cannot hold are written as their ``repr``."""
    return json.dumps(event.as_json(), ensure_ascii=False, separators=(",", ":"), default=repr)


Sink = Callable[[Event], None]


class EventBus:
    """Numbers the events of one run and hands each to every sink, in order.

    Sinks are called synchronously and must be quick (buffer, then write): the agent loop
    waits for them. A sink that raises is dropped from the bus, and the run goes on.
    """

    __slots__ = ("run_id", "_seq", "_sinks", "dropped")

    def __init__(self, run_id: str, sinks: Iterable[Sink] = ()) -> None:
        self.run_id = run_id
        self._seq = 0
        self._sinks: tuple[Sink, ...] = tuple(sinks)
        self.dropped: list[tuple[Sink, BaseException]] = []

    def add(self, sink: Sink) -> None:
        self._sinks = (*self._sinks, sink)

    def emit(
        self,
        type: EventType,
        *,
        step: int = 0,
        ts: float | None = None,
        duration_ms: float | None = None,
        agent: str | None = None,
        task: str | None = None,
        **data: Any,
    ) -> Event:
        self._seq += 1
        data = mask_data(data)  # the one event path: no secret's value leaves by it
        if ts is None:  # an event reporting finished work is stamped when the work began
            ts = time.time() - (duration_ms / 1000 if duration_ms else 0.0)
        event = Event(
            type,
            self.run_id,
            self._seq,
            step,
            ts,
            duration_ms,
            agent,
            task,
            data,
        )
        for sink in self._sinks:  # a tuple: dropping a sink below does not disturb the loop
            try:
                sink(event)
            except Exception as exc:  # noqa: BLE001 - a broken viewer must not break the run
                self._sinks = tuple(s for s in self._sinks if s is not sink)
                self.dropped.append((sink, exc))
        return event


class JsonlWriter:
    """A sink writing one JSON line per event, flushed per line so ``tail -f`` follows."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream
        #: why writing stopped (a full disk, say): the bus drops a sink that raises, and
        #: whoever opened the file reports this once the run is over
        self.error: OSError | None = None

    @classmethod
    def open(cls, path: str | Path) -> JsonlWriter:
        return cls(open(path, "a", encoding="utf-8"))  # noqa: SIM115 - closed by close()

    def __call__(self, event: Event) -> None:
        try:
            self._stream.write(dumps(event) + "\n")
            self._stream.flush()
        except OSError as exc:
            self.error = exc
            raise

    def close(self) -> None:
        try:
            self._stream.close()
        except OSError as exc:
            self.error = self.error or exc
