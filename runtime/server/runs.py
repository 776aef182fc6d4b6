"""The runs a server has in flight: each one's task (to cancel it), its events as they
happen (to stream them to any number of readers, from the start or from an event number),
and its tenant. A run that ended is read from the trace store instead."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import anyio

from runtime.events import Event

__all__ = ["Live", "LiveRuns"]


@dataclass(slots=True)
class Live:
    """One run in flight."""

    run_id: str
    tenant: str
    target: str
    scope: anyio.CancelScope = field(default_factory=anyio.CancelScope)
    events: list[Event] = field(default_factory=list)
    ended: bool = False
    _changed: anyio.Event = field(default_factory=anyio.Event)

    def emit(self, event: Event) -> None:
        self.events.append(event)
        self._changed.set()
        self._changed = anyio.Event()

    def end(self) -> None:
        self.ended = True
        self._changed.set()

    async def follow(self, after: int = 0) -> AsyncIterator[Event]:
        """Its events numbered after ``after``, then each one as it happens, until it
        ends."""
        while True:
            changed = self._changed
            for event in self.events[after:] if after < len(self.events) else ():
                if event.seq > after:
                    yield event
            after = max(after, len(self.events))
            if self.ended:
                return
            await changed.wait()


class LiveRuns:
    """Every run a server has in flight, by id."""

    def __init__(self) -> None:
        self._runs: dict[str, Live] = {}

    def start(self, run_id: str, tenant: str, target: str) -> Live:
        live = self._runs[run_id] = Live(run_id, tenant, target)
        return live

    def get(self, run_id: str) -> Live | None:
        return self._runs.get(run_id)

    def end(self, run_id: str) -> None:
        live = self._runs.pop(run_id, None)
        if live is not None:
            live.end()

    def runs(self) -> list[Live]:
        return list(self._runs.values())

    def __len__(self) -> int:
        return len(self._runs)

    def of(self, tenant: str) -> int:
        """How many runs ``tenant`` has in flight."""
        return sum(1 for live in self._runs.values() if live.tenant == tenant)

    def cancel_all(self) -> None:
        for live in list(self._runs.values()):
            live.scope.cancel()


class TokenBucket:
    """``rate`` requests a second on average, ``burst`` at once."""

    def __init__(self, rate: float, burst: int, now: float) -> None:
        self.rate, self.burst = rate, burst
        self.tokens = float(burst)
        self.at = now

    def take(self, now: float) -> float:
        """0 when a request may go ahead now (and it is counted), else the seconds to wait."""
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate if self.rate > 0 else math.inf
