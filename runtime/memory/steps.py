"""Memory as steps of a run: recall before an agent run and remember after it, each
reported as an event, and the tool results an agent saw, gathered from the bus.

The executor calls these around every agent run whose graph has memory nodes; a
:class:`~runtime.memory.records.MemoryStoreError` goes back to it, to fail the task.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from runtime.events import Event, EventBus
from runtime.memory.calls import Ask
from runtime.memory.records import MemoryStoreError
from runtime.memory.service import MemoryService, Observation, Recall, Who

__all__ = ["Sightings", "failed", "recall", "remember"]


class Sightings:
    """A bus sink pairing each agent action with its tool's result, per agent run, for
    ``remember: [tool_observations]``."""

    def __init__(self) -> None:
        self.calls: dict[str, tuple[str, Any]] = {}
        self.results: dict[tuple[str, str | None], list[Observation]] = {}

    def __call__(self, event: Event) -> None:
        if event.type == "agent.action":
            call = (str(event.data.get("tool")), event.data.get("input"))
            self.calls[str(event.data.get("call_id"))] = call
        elif event.type == "tool.result" and event.data.get("status") == "ok":
            seen = self.calls.pop(str(event.data.get("call_id")), None)
            if seen is not None:
                observation = Observation(
                    tool=seen[0], input=seen[1], output=event.data.get("output")
                )
                self.results.setdefault((event.agent or "", event.task), []).append(observation)

    def take(self, agent: str, task: str | None) -> list[Observation]:
        """What ``agent`` saw in ``task`` since the last take."""
        return self.results.pop((agent, task), [])


async def recall(
    memory: MemoryService | None,
    bus: EventBus,
    *,
    policy: str,
    crew: str | None,
    agent: str,
    task: str | None,
    prompt: str,
    who: Who,
    run_id: str,
) -> Recall | None:
    """Recall for one agent run and say what came back (``memory.read``); ``None`` when the
    run has no memory service."""
    started = time.perf_counter()
    if memory is None:
        bus.emit(
            "memory.read",
            agent=agent,
            task=task,
            policy=policy,
            items=[],
            reason="memory is off in this run",
        )
        return None
    found = await memory.recall(
        policy=policy, agent=agent, query=prompt, who=who, run_id=run_id, crew=crew
    )
    bus.emit(
        "memory.read",
        agent=agent,
        task=task,
        duration_ms=(time.perf_counter() - started) * 1000,
        policy=policy,
        namespace=found.namespace,
        query=prompt,
        items=list(found.items),
        turns=len(found.history),
        stores=dict(found.stores),
        reason=found.reason,
    )
    return found


async def remember(
    memory: MemoryService,
    bus: EventBus,
    *,
    policy: str,
    crew: str | None,
    agent: str,
    task: str | None,
    prompt: str,
    answer: Any,
    who: Who,
    run_id: str,
    observations: Sequence[Observation],
    models: tuple[str, ...],
    ask: Ask,
    write_id: str | None = None,
    again: bool = False,
) -> dict[str, Any]:
    """Remember one finished agent run and say what was written (``memory.write``); returns
    the event's data. ``write_id`` and ``again``: see :meth:`MemoryService.remember`."""
    started = time.perf_counter()
    written = await memory.remember(
        policy=policy,
        agent=agent,
        task=task,
        prompt=prompt,
        answer=answer,
        who=who,
        run_id=run_id,
        crew=crew,
        observations=observations,
        models=models,
        ask=ask,
        write_id=write_id,
        again=again,
    )
    data = {
        "agent": agent,
        "task": task,
        "duration_ms": (time.perf_counter() - started) * 1000,
        **written,
    }
    bus.emit("memory.write", **data)
    return data


def failed(
    bus: EventBus,
    what: str,
    *,
    policy: str,
    agent: str,
    task: str | None,
    exc: MemoryStoreError,
) -> str:
    """Report a store that failed a read or a write; returns the task's error message."""
    error = f"memory policy {policy!r} could not {what}: {exc}"
    bus.emit(
        "memory.read" if what == "read" else "memory.write",
        agent=agent,
        task=task,
        policy=policy,
        items=[],
        error=error,
        code=exc.code,
        retryable=exc.retryable,
    )
    return error
